"""The desk config's quote table: firm quotes the node answers on its own.

::

    [quotes]
    valid_for = 30                 # seconds of chain time each quote stays firm (default 30)
    max_requests_per_peer = 16     # requests of one peer waiting for an answer (default 16)

    [[quotes.table]]
    underlying = "ETH-USD"
    kind = "call"                  # call | put
    strike = "3000"                # a price (8 decimals), as a string or a number
    side = "buy"                   # the REQUESTER's side this row answers: buy (we write) | sell
    price = "1.5"                  # premium per whole option, in the asset's units (1.5 USDC)
    collateral = "10"              # collateral per whole option (the writer locks it)
    max_quantity = "10"            # optional: largest size quoted (whole options; default: asked)

``price`` and ``collateral`` are strings in the units of the channel's asset, scaled by its
decimals when a request comes in (a row finer than the asset's decimals declines). For smallest
units write ``price_raw = 1500000`` / ``collateral_raw = 10000000`` (integers) instead. A bare
number for ``price`` or ``collateral`` is refused: until this change they meant smallest units,
and reading an old config's ``price = 1500000`` as 1.5 million USDC would quote a price nobody
agreed to.

A request that matches no row is declined ("no quote for this option"); with no table at all the
requests wait for the operator (``channels answer``) until they time out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from channels.core.errors import ChannelError, LocalError
from channels.core.model import PRICE_DECIMALS, QUANTITY_DECIMALS, OptionKind, symbol
from channels.core.quote_book import QuoteLimits
from channels.core.quotes import Side
from channels.core.units import scale_exact
from channels.runtime.quoting import Decline, IncomingRequest, QuoteTerms

_SECTION_KEYS = {"valid_for", "max_requests_per_peer", "table"}
_ROW_KEYS = {
    "underlying",
    "kind",
    "strike",
    "side",
    "price",
    "price_raw",
    "collateral",
    "collateral_raw",
    "max_quantity",
}
#: Keys a row may leave out: each amount is given once, in asset units or in smallest units.
_OPTIONAL_KEYS = {"max_quantity", "price", "price_raw", "collateral", "collateral_raw"}
#: Rows a table may have (the file is ours, but a typo should not build a huge table).
MAX_ROWS = 1000


class QuoteTableError(LocalError):
    """The [quotes] section of the config is wrong (the message names the key)."""


@dataclass(frozen=True, slots=True)
class TableAmount:
    """An amount of a row: in the asset's units (scaled per request) or in smallest units."""

    units: Decimal | None = None
    raw: int | None = None

    def in_smallest_units(self, decimals: int) -> int | None:
        """The amount for an asset of ``decimals``; None when it is finer than the asset."""
        if self.raw is not None:
            return self.raw
        assert self.units is not None
        scaled = scale_exact(self.units, decimals)
        if scaled is None or scaled >= 2**128:
            return None
        return scaled


@dataclass(frozen=True, slots=True)
class QuoteRow:
    underlying: bytes
    kind: OptionKind
    strike: int
    side: Side
    price: TableAmount
    collateral: TableAmount
    max_quantity: int | None


@dataclass(frozen=True, slots=True)
class QuoteTable:
    rows: tuple[QuoteRow, ...]
    valid_for: int = 30
    max_requests_per_peer: int = 16

    def limits(self) -> QuoteLimits:
        return QuoteLimits(max_requests_per_peer=self.max_requests_per_peer)

    def price(self, request: IncomingRequest) -> QuoteTerms | Decline:
        """The pricer of a desk run from its config."""
        r = request.request
        for row in self.rows:
            if (row.underlying, row.kind, row.strike, row.side) == (
                r.underlying,
                r.kind,
                r.strike,
                r.side,
            ):
                size = r.quantity if row.max_quantity is None else min(r.quantity, row.max_quantity)
                price = row.price.in_smallest_units(request.asset_decimals)
                collateral = row.collateral.in_smallest_units(request.asset_decimals)
                if price is None or collateral is None or collateral == 0:
                    return Decline("the quote table's amounts do not fit this asset's decimals")
                return QuoteTerms(
                    price=price,
                    collateral=collateral,
                    max_quantity=size,
                    valid_for=self.valid_for,
                )
        return Decline("no quote for this option")


def _fixed(where: str, value: object, decimals: int) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuoteTableError(f"{where}: must be a number or a string of one")
    try:
        number = Decimal(str(value).replace("_", ""))
    except InvalidOperation:
        raise QuoteTableError(f"{where}: not a number: {value!r}") from None
    scaled = scale_exact(number, decimals)
    if scaled is None or scaled <= 0:
        raise QuoteTableError(f"{where}: must be above zero with at most {decimals} decimals")
    if scaled >= 2**128:  # bounds a typo, as for the amounts
        raise QuoteTableError(f"{where}: too large")
    return scaled


def _whole(where: str, value: object, *, positive: bool = True) -> int:
    if type(value) is not int or value < (1 if positive else 0) or value >= 2**128:
        raise QuoteTableError(
            f"{where}: must be a whole number {'above' if positive else 'from'} 0"
        )
    return value


def _amount(where: str, row: dict[str, Any], key: str, *, positive: bool) -> TableAmount:
    """``key`` in the asset's units (a string) or ``key_raw`` in smallest units, exactly one."""
    raw_key = f"{key}_raw"
    if (key in row) == (raw_key in row):
        raise QuoteTableError(
            f'{where}: give {key} in the asset\'s units (e.g. {key} = "40") or {raw_key} in '
            "smallest units, exactly one of them"
        )
    if raw_key in row:
        return TableAmount(raw=_whole(f"{where} {raw_key}", row[raw_key], positive=positive))
    value = row[key]
    if not isinstance(value, str):
        raise QuoteTableError(
            f'{where} {key}: write it in the asset\'s units as a string ({key} = "40"), or in '
            f"smallest units as {raw_key} = ... (a bare number used to mean smallest units)"
        )
    try:
        units = Decimal(value.replace("_", ""))
    except InvalidOperation:
        raise QuoteTableError(f"{where} {key}: not a number: {value!r}") from None
    if not units.is_finite() or units < 0 or (positive and units == 0):
        raise QuoteTableError(f"{where} {key}: must be {'above' if positive else 'from'} 0")
    exponent = units.as_tuple().exponent  # an int: the value is finite (checked above)
    if units >= 2**128 or (isinstance(exponent, int) and exponent < -77):  # bounds a typo
        raise QuoteTableError(f"{where} {key}: too large or too fine")
    return TableAmount(units=units)


def parse_quote_table(path: Path, section: object) -> QuoteTable:
    """Read ``[quotes]`` of the config at ``path``."""
    if not isinstance(section, dict):
        raise QuoteTableError(f"{path}: [quotes] must be a table")
    unknown = sorted(set(section) - _SECTION_KEYS)
    if unknown:
        raise QuoteTableError(f"{path}: [quotes] has unknown key(s): {', '.join(unknown)}")
    valid_for = section.get("valid_for", 30)
    if type(valid_for) is not int or not 1 <= valid_for <= 86400:
        raise QuoteTableError(f"{path}: [quotes] valid_for: must be 1 to 86400 seconds")
    max_requests = section.get("max_requests_per_peer", 16)
    if type(max_requests) is not int or not 1 <= max_requests <= 1024:
        raise QuoteTableError(f"{path}: [quotes] max_requests_per_peer: must be 1 to 1024")
    table: Any = section.get("table", [])
    if not isinstance(table, list) or len(table) > MAX_ROWS:
        raise QuoteTableError(f"{path}: [[quotes.table]] must be at most {MAX_ROWS} rows")
    rows = []
    for i, row in enumerate(table):
        where = f"{path}: [[quotes.table]] row {i + 1}"
        if not isinstance(row, dict):
            raise QuoteTableError(f"{where}: must be a table")
        unknown = sorted(set(row) - _ROW_KEYS)
        missing = sorted(_ROW_KEYS - _OPTIONAL_KEYS - set(row))
        if unknown or missing:
            raise QuoteTableError(f"{where}: unknown key(s) {unknown}, missing key(s) {missing}")
        try:
            underlying = symbol(str(row["underlying"]))
            kind = OptionKind[str(row["kind"]).upper()]
            side = Side.parse(str(row["side"]))
        except (ChannelError, KeyError):
            raise QuoteTableError(
                f"{where}: underlying must be 1-32 ASCII characters, kind call|put, side buy|sell"
            ) from None
        rows.append(
            QuoteRow(
                underlying=underlying,
                kind=kind,
                strike=_fixed(f"{where} strike", row["strike"], PRICE_DECIMALS),
                side=side,
                price=_amount(where, row, "price", positive=False),
                collateral=_amount(where, row, "collateral", positive=True),
                max_quantity=(
                    _fixed(f"{where} max_quantity", row["max_quantity"], QUANTITY_DECIMALS)
                    if "max_quantity" in row
                    else None
                ),
            )
        )
    return QuoteTable(tuple(rows), valid_for, max_requests)
