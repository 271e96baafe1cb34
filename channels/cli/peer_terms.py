"""The terms a desk config declares for each peer (``[peers.NAME]``), and the node's Trust.

A peer's table names it (``address``, ``host``, ``port``) and what we accept with it::

    [peers.desk-b]
    address = "0x3C44..."
    host = "127.0.0.1"
    port = 9402
    max_deposit = 1_000_000            # our deposit in one channel it proposes (default 0: none)
    max_total_deposit = 5_000_000      # over all its channels (default: max_deposit)
    max_channels = 4                   # channels it may have with us (default 4)
    assets = ["0xe7f1..."]             # default: [chain] asset
    oracles = ["0xa0Ee..."]            # default: [chain] oracle
    min_challenge_period = 3600        # seconds (never below the chain's floor)
    max_challenge_period = 604800
    approve = ["buy", "write"]         # value-moving trades it may ask of us (default: none)
    # Risk limits with this peer (channels/core/risk.py); unset: no limit. Amounts in the asset's
    # smallest unit, times in seconds. They bind our own trades too.
    max_collateral_locked = 5_000_000
    max_open_positions = 100
    max_notional = 50_000_000          # per underlying (strike x quantity)
    max_premium_per_day = 200_000
    min_time_to_expiry = 3600
    max_expiry_horizon = 7776000
    max_loss = 2_000_000               # at the oracle's last prices

``approve`` is the operator's consent given in advance for this peer: ``pay`` (we pay it), ``buy``
(we buy an option: we pay a premium), ``write`` (we write one: we lock collateral), ``unwind``,
``withdraw`` (a withdrawal of our own funds). Payments to us, deposit credits, the peer's own
withdrawals and settlements at the oracle's price never need it (docs/PROTOCOL.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from channels.core.consent import TradeClass
from channels.core.model import Address
from channels.core.risk import SINGLE_LIMITS, RiskLimits
from channels.core.terms import AssetTerms, PeerTerms

APPROVALS: dict[str, TradeClass] = {
    "pay": TradeClass.WE_PAY,
    "buy": TradeClass.WE_BUY,
    "write": TradeClass.WE_WRITE,
    "unwind": TradeClass.UNWIND,
    "withdraw": TradeClass.WE_WITHDRAW,
}


TERM_KEYS = {
    "max_deposit",
    "max_total_deposit",
    "max_channels",
    "assets",
    "oracles",
    "min_challenge_period",
    "max_challenge_period",
    "accept_channels",
    "approve",
    *SINGLE_LIMITS,
}

_MAX_AMOUNT = 2**128 - 1
_MAX_PERIOD = 2**64 - 1


def parse_peer_terms(
    table: dict[str, Any],
    fail: Callable[[str, str], NoReturn],
    parse_address: Callable[[str, object], bytes],
    default_asset: bytes | None,
    default_oracle: bytes | None,
) -> tuple[PeerTerms, frozenset[TradeClass], RiskLimits]:
    """The terms, standing approvals and risk limits of one ``[peers.NAME]`` table."""

    def amount(key: str, default: int) -> int:
        value = table.get(key, default)
        if type(value) is not int or not 0 <= value <= _MAX_AMOUNT:
            fail(key, f"must be an integer from 0 to {_MAX_AMOUNT}")
        return int(value)

    def addresses(key: str, default: bytes | None) -> list[Address]:
        value = table.get(key)
        if value is None:
            return [Address(default)] if default is not None else []
        if not isinstance(value, list) or len(value) > 64:
            fail(key, "must be a list of at most 64 addresses")
        return [Address(parse_address(key, item)) for item in value]

    max_deposit = amount("max_deposit", 0)
    max_total = amount("max_total_deposit", max_deposit)
    max_channels = table.get("max_channels", 4)
    if type(max_channels) is not int or not 0 <= max_channels <= 10_000:
        fail("max_channels", "must be an integer from 0 to 10000")
    periods = []
    for key, default in (("min_challenge_period", 3600), ("max_challenge_period", 7 * 86400)):
        value = table.get(key, default)
        if type(value) is not int or not 1 <= value <= _MAX_PERIOD:
            fail(key, f"must be an integer number of seconds from 1 to {_MAX_PERIOD}")
        periods.append(int(value))
    if periods[0] > periods[1]:
        fail("min_challenge_period", "is above max_challenge_period")
    accept = table.get("accept_channels", True)
    if type(accept) is not bool:
        fail("accept_channels", "must be true or false")
    approve = table.get("approve", [])
    if not isinstance(approve, list) or any(a not in APPROVALS for a in approve):
        fail("approve", f"must be a list of: {', '.join(APPROVALS)}")
    asset_terms = AssetTerms(max_deposit=max_deposit, max_total=max_total)
    terms = PeerTerms(
        assets={a: asset_terms for a in addresses("assets", default_asset)},
        oracles=frozenset(addresses("oracles", default_oracle)),
        min_challenge_period=periods[0],
        max_challenge_period=periods[1],
        max_channels=int(max_channels),
        accept_proposals=accept,
    )
    figures: dict[str, Any] = {key: amount(key, 0) for key in SINGLE_LIMITS if key in table}
    limits = RiskLimits(**figures)
    return terms, frozenset(APPROVALS[a] for a in approve), limits
