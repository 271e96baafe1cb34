"""The terms a desk config declares for each peer: ``[peers.NAME]`` and one table per asset.

A peer's table names it (``address``, ``host``, ``port``, read by channels/cli/config.py), what we
accept with it whatever the asset, and the risk limits that are counts or times::

    [peers.desk-b]
    address = "0x3C44..."
    host = "127.0.0.1"
    port = 9402
    max_channels = 4                   # channels it may have with us (default 4)
    oracles = ["0xa0Ee..."]            # default: [chain] oracle
    min_challenge_period = "1h"        # a duration (90m, 1h, 7d, PT1H) or seconds; never below
    max_challenge_period = "7d"        # the chain's floor (defaults 1h and 7d)
    accept_channels = true             # false: it may not propose channels to us
    approve = ["buy", "write"]         # value-moving trades it may ask of us (default: none)
    # Risk limits (channels/core/risk.py) that are counts or times; unset: no limit.
    max_open_positions = 100           # in its channels of one asset
    min_time_to_expiry = "1h"          # an option opened must expire at least this late ...
    max_expiry_horizon = "90d"         # ... and at most this late

    [peers.desk-b.assets.usdc]         # one table per asset we accept with it (the label is yours)
    address = "0xe7f1..."              # the token; "ETH" for ether
    max_deposit = "1000"               # our deposit in one channel it proposes (default "0")
    max_total_deposit = "5000"         # over all its open channels in this asset (default:
                                       # max_deposit)
    # Risk limits in this asset's units; unset: no limit. They bind our own trades too.
    max_collateral_locked = "5000"     # collateral we lock as writer
    max_premium_per_day = "200"        # premium we pay in any 24 hours
    max_loss = "2000"                  # at the oracle's last prices
    max_notional = "50000"             # per underlying (strike x quantity) ...
    max_notional_by_underlying = { BTC-USD = "20000" }   # ... unless named here

Amounts are strings in the asset's units, scaled when the node starts by the decimals it reads
from the token (18 for ETH), never by what a peer's proposal claims. For smallest units write the
key with ``_raw`` and an integer (``max_deposit_raw = 1000000000``; a table
``max_notional_by_underlying_raw``). A bare number is refused: until this change these keys sat in
the peer's table and meant smallest units of every asset alike, and reading an old
``max_deposit = 1000000000`` as a billion tokens would lock far more than the operator agreed to.
Without an asset table the peer gets the ``[chain]`` asset with a deposit of 0 (it may open
channels funded by itself only).

``approve`` is the operator's consent given in advance for this peer: ``pay`` (we pay it), ``buy``
(we buy an option: we pay a premium), ``write`` (we write one: we lock collateral), ``unwind``,
``withdraw`` (a withdrawal of our own funds). Payments to us, deposit credits, the peer's own
withdrawals and settlements at the oracle's price never need it (docs/PROTOCOL.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from channels.cli.units import UnitError, checked_address, parse_decimal, parse_duration_text
from channels.core.consent import TradeClass
from channels.core.errors import ChannelError, LocalError
from channels.core.model import Address, symbol
from channels.core.risk import NO_LIMITS, SINGLE_LIMITS, RiskLimits
from channels.core.terms import AssetTerms, PeerTerms
from channels.core.units import scale_exact

APPROVALS: dict[str, TradeClass] = {
    "pay": TradeClass.WE_PAY,
    "buy": TradeClass.WE_BUY,
    "write": TradeClass.WE_WRITE,
    "unwind": TradeClass.UNWIND,
    "withdraw": TradeClass.WE_WITHDRAW,
}

#: Risk limits that are counts or times: in the peer's table, for its channels in every asset.
PEER_LIMIT_KEYS = ("max_open_positions", "min_time_to_expiry", "max_expiry_horizon")
#: Risk limits that are amounts (the others): in an asset's table, in that asset's units.
ASSET_LIMIT_KEYS = tuple(k for k in SINGLE_LIMITS if k not in PEER_LIMIT_KEYS)
#: Amount keys of an asset's table (each also as ``KEY_raw``).
_AMOUNT_KEYS = ("max_deposit", "max_total_deposit", *ASSET_LIMIT_KEYS)
_NOTIONAL_TABLE = "max_notional_by_underlying"
_ASSET_KEYS = {
    "address",
    *_AMOUNT_KEYS,
    *(f"{k}_raw" for k in _AMOUNT_KEYS),
    _NOTIONAL_TABLE,
    f"{_NOTIONAL_TABLE}_raw",
}
#: Amount keys an older config had in the peer's table (refused there, with the way to migrate).
_MOVED_KEYS = {*_AMOUNT_KEYS, *(f"{k}_raw" for k in _AMOUNT_KEYS)}

TERM_KEYS = {
    "max_channels",
    "assets",
    "oracles",
    "min_challenge_period",
    "max_challenge_period",
    "accept_channels",
    "approve",
    *PEER_LIMIT_KEYS,
    *_MOVED_KEYS,
}

MAX_AMOUNT = 2**128 - 1
_MAX_SECONDS = 2**64 - 1
_MAX_ASSETS = 64
ETH = Address(bytes(20))


class TermsError(LocalError, ValueError):
    """A peer's terms in the config are wrong; the message names the table and the key."""


@dataclass(frozen=True, slots=True)
class ConfigAmount:
    """An amount of the config: in the asset's units (scaled at start) or in smallest units."""

    where: str
    units: Decimal | None = None
    raw: int | None = None

    def resolve(self, decimals: int) -> int:
        if self.raw is not None:
            return self.raw
        assert self.units is not None
        scaled = scale_exact(self.units, decimals)
        if scaled is None:
            raise TermsError(
                f"{self.where}: {self.units:f} has more than the asset's {decimals} decimals"
            )
        if scaled > MAX_AMOUNT:
            raise TermsError(f"{self.where}: {self.units:f} is above {MAX_AMOUNT} smallest units")
        return scaled


@dataclass(frozen=True, slots=True)
class AssetConfig:
    """One ``[peers.NAME.assets.LABEL]`` table, amounts not yet scaled."""

    where: str
    address: Address
    max_deposit: ConfigAmount
    max_total_deposit: ConfigAmount
    limits: Mapping[str, ConfigAmount] = field(default_factory=dict)
    notional_by_underlying: Mapping[bytes, ConfigAmount] = field(default_factory=dict)

    @property
    def needs_decimals(self) -> bool:
        amounts = [self.max_deposit, self.max_total_deposit, *self.limits.values()]
        return any(a.units is not None for a in [*amounts, *self.notional_by_underlying.values()])


@dataclass(frozen=True, slots=True)
class PeerTermsConfig:
    """A peer's terms as the config declares them; :meth:`resolve` scales their amounts."""

    assets: tuple[AssetConfig, ...] = ()
    oracles: frozenset[Address] = frozenset()
    min_challenge_period: int = 3600
    max_challenge_period: int = 7 * 86400
    max_channels: int = 0
    accept_channels: bool = True
    approve: frozenset[TradeClass] = frozenset()
    #: The counts and times, for every asset.
    limits: RiskLimits = NO_LIMITS

    def resolve(
        self, decimals: Mapping[bytes, int]
    ) -> tuple[PeerTerms, RiskLimits, dict[Address, RiskLimits]]:
        """The terms, the limits of assets without a table, and each asset's own limits, with
        amounts in smallest units (``decimals``: each asset's, as read from the chain)."""
        assets: dict[Address, AssetTerms] = {}
        by_asset: dict[Address, RiskLimits] = {}
        for asset in self.assets:

            def scaled(amount: ConfigAmount, asset: AssetConfig = asset) -> int:
                if amount.raw is not None:
                    return amount.raw
                if asset.address not in decimals:
                    raise TermsError(f"{asset.where}: the asset's decimals are not known")
                return amount.resolve(decimals[asset.address])

            assets[asset.address] = AssetTerms(
                max_deposit=scaled(asset.max_deposit),
                max_total=scaled(asset.max_total_deposit),
            )
            by_asset[asset.address] = RiskLimits(
                max_open_positions=self.limits.max_open_positions,
                min_time_to_expiry=self.limits.min_time_to_expiry,
                max_expiry_horizon=self.limits.max_expiry_horizon,
                notional_by_underlying={
                    u: scaled(a) for u, a in asset.notional_by_underlying.items()
                },
                **{key: scaled(amount) for key, amount in asset.limits.items()},
            )
        terms = PeerTerms(
            assets=assets,
            oracles=self.oracles,
            min_challenge_period=self.min_challenge_period,
            max_challenge_period=self.max_challenge_period,
            max_channels=self.max_channels,
            accept_proposals=self.accept_channels,
        )
        return terms, self.limits, by_asset


#: A peer declared with no terms: nothing accepted.
NO_PEER_TERMS = PeerTermsConfig()


def parse_peer_terms(
    name: str, table: dict[str, Any], default_asset: bytes | None, default_oracle: bytes | None
) -> PeerTermsConfig:
    """The terms, standing approvals and risk limits of one ``[peers.NAME]`` table."""
    where = f"[peers.{name}]"

    def fail(key: str, message: str) -> TermsError:
        return TermsError(f"{where} {key}: {message}")

    moved = sorted(_MOVED_KEYS & set(table))
    if moved:
        key = moved[0]
        base = key.removesuffix("_raw")
        raise fail(
            key,
            f"amounts are per asset now, in the asset's units: move it into a table "
            f'[peers.{name}.assets.LABEL] with address = "0x..." (the asset; until now it held '
            f"for every asset of this peer, by default the [chain] asset) and {base} = "
            f'"1000" (a string, in the asset\'s units) or {base}_raw = ... (an integer in '
            "smallest units, which a bare number here used to mean)",
        )
    oracles = table.get("oracles")
    if oracles is None:
        oracle_set = frozenset([Address(default_oracle)] if default_oracle is not None else [])
    else:
        if not isinstance(oracles, list) or len(oracles) > 64:
            raise fail("oracles", "must be a list of at most 64 addresses")
        oracle_set = frozenset(Address(_address(where, "oracles", o)) for o in oracles)
    max_channels = table.get("max_channels", 4)
    if type(max_channels) is not int or not 0 <= max_channels <= 10_000:
        raise fail("max_channels", "must be an integer from 0 to 10000")
    low = _seconds(where, table, "min_challenge_period", 3600, least=1)
    high = _seconds(where, table, "max_challenge_period", 7 * 86400, least=1)
    assert low is not None and high is not None  # they have defaults
    if low > high:
        raise fail("min_challenge_period", "is above max_challenge_period")
    accept = table.get("accept_channels", True)
    if type(accept) is not bool:
        raise fail("accept_channels", "must be true or false")
    approve = table.get("approve", [])
    if not isinstance(approve, list) or any(a not in APPROVALS for a in approve):
        raise fail("approve", f"must be a list of: {', '.join(APPROVALS)}")
    positions = table.get("max_open_positions")
    if positions is not None and (type(positions) is not int or not 0 <= positions <= 10**9):
        raise fail("max_open_positions", "must be an integer from 0 to 1000000000")
    limits = RiskLimits(
        max_open_positions=positions,
        min_time_to_expiry=_seconds(where, table, "min_time_to_expiry", None, least=0),
        max_expiry_horizon=_seconds(where, table, "max_expiry_horizon", None, least=0),
    )
    return PeerTermsConfig(
        assets=_assets(name, table.get("assets"), default_asset),
        oracles=oracle_set,
        min_challenge_period=low,
        max_challenge_period=high,
        max_channels=max_channels,
        accept_channels=accept,
        approve=frozenset(APPROVALS[a] for a in approve),
        limits=limits,
    )


def _assets(name: str, tables: object, default_asset: bytes | None) -> tuple[AssetConfig, ...]:
    if tables is None:  # the [chain] asset, funded by the peer only
        if default_asset is None:
            return ()
        where = f"[peers.{name}]"
        nothing = ConfigAmount(where, raw=0)
        return (AssetConfig(where, Address(default_asset), nothing, nothing),)
    if not isinstance(tables, dict):
        raise TermsError(
            f"[peers.{name}] assets: is a table per asset now: [peers.{name}.assets.LABEL] with "
            'address = "0x..." (the asset) and its deposit terms, e.g. max_deposit = "1000" in '
            "the asset's units (see channels/cli/peer_terms.py)"
        )
    if len(tables) > _MAX_ASSETS:
        raise TermsError(f"[peers.{name}] assets: at most {_MAX_ASSETS} assets")
    out: list[AssetConfig] = []
    for label, table in tables.items():
        asset = _asset(f"[peers.{name}.assets.{label}]", table)
        if any(a.address == asset.address for a in out):
            raise TermsError(f"{asset.where} address: the asset has another table already")
        out.append(asset)
    return tuple(out)


def _asset(where: str, table: object) -> AssetConfig:
    if not isinstance(table, dict):
        raise TermsError(f"{where}: must be a table (address, max_deposit, ...)")
    unknown = sorted(set(table) - _ASSET_KEYS)
    if unknown:
        raise TermsError(f"{where}: unknown key(s): {', '.join(unknown)}")
    if "address" not in table:
        raise TermsError(f'{where} address: the asset\'s address is missing ("ETH" for ether)')
    text = table["address"]
    address = ETH if text == "ETH" else Address(_address(where, "address", text))
    deposit = _amount(where, table, "max_deposit") or ConfigAmount(f"{where} max_deposit", raw=0)
    total = _amount(where, table, "max_total_deposit") or deposit
    limits = {k: a for k in ASSET_LIMIT_KEYS if (a := _amount(where, table, k)) is not None}
    return AssetConfig(where, address, deposit, total, limits, _notional_table(where, table))


def _amount(where: str, table: dict[str, Any], key: str) -> ConfigAmount | None:
    """``key`` in the asset's units (a string), or ``key_raw`` in smallest units, or neither."""
    raw_key = f"{key}_raw"
    if key in table and raw_key in table:
        raise TermsError(f"{where} {key}: given twice (and as {raw_key}): keep one of them")
    if raw_key in table:
        return ConfigAmount(f"{where} {raw_key}", raw=_raw(f"{where} {raw_key}", table[raw_key]))
    if key not in table:
        return None
    return _units(f"{where} {key}", table[key], raw_key)


def _units(where: str, value: object, raw_key: str) -> ConfigAmount:
    if not isinstance(value, str):
        raise TermsError(
            f'{where}: write it in the asset\'s units as a string (e.g. "1000" or "0.5"), or in '
            f"smallest units as {raw_key} = (an integer); a bare number used to mean smallest "
            "units, so it is refused rather than read a million or more times too large"
        )
    try:
        units = parse_decimal(value)
    except UnitError as exc:
        raise TermsError(f"{where}: {exc}") from None
    exponent = units.as_tuple().exponent
    if units > MAX_AMOUNT or (isinstance(exponent, int) and exponent < -77):
        raise TermsError(f"{where}: too large or too fine")
    return ConfigAmount(where, units=units)


def _raw(where: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
        raise TermsError(f"{where}: must be an integer of smallest units from 0 to {MAX_AMOUNT}")
    return value


def _notional_table(where: str, table: dict[str, Any]) -> dict[bytes, ConfigAmount]:
    out: dict[bytes, ConfigAmount] = {}
    for key in (_NOTIONAL_TABLE, f"{_NOTIONAL_TABLE}_raw"):
        values = table.get(key, {})
        if not isinstance(values, dict) or len(values) > 256:
            raise TermsError(
                f'{where} {key}: must be a table of underlyings, e.g. {{ ETH-USD = "50000" }}'
            )
        for name, value in values.items():
            try:
                underlying = symbol(name)
            except ChannelError:
                raise TermsError(f"{where} {key}: {name!r} is not an underlying") from None
            if underlying in out:
                raise TermsError(f"{where} {key}: {name} is given twice")
            here = f"{where} {key}.{name}"
            out[underlying] = (
                ConfigAmount(here, raw=_raw(here, value))
                if key.endswith("_raw")
                else _units(here, value, f"{_NOTIONAL_TABLE}_raw.{name}")
            )
    return out


def _address(where: str, key: str, text: object) -> bytes:
    if not isinstance(text, str):
        raise TermsError(f"{where} {key}: addresses are strings (0x and 40 hex digits)")
    try:
        return checked_address(text)
    except UnitError as exc:
        raise TermsError(f"{where} {key}: {exc}") from None


def _seconds(
    where: str, table: dict[str, Any], key: str, default: int | None, *, least: int
) -> int | None:
    """A duration: whole seconds or a text such as ``90m``, ``7d``, ``PT1H``."""
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = parse_duration_text(value)
        except UnitError as exc:
            raise TermsError(f"{where} {key}: {exc}") from None
    if type(value) is not int or not least <= value <= _MAX_SECONDS:
        raise TermsError(
            f'{where} {key}: must be a duration ("1h", "7d") or whole seconds from {least}'
        )
    return value
