"""The help texts of the values the ``channels`` commands take, each naming its unit.

Every option of an amount, price, quantity, time or duration takes its words from here, so a
unit is described one way in every command; tests/cli/test_help_units.py walks the whole parser
and fails on a value option whose help names no unit.
"""

from __future__ import annotations

#: Amounts of the channel's asset (deposits, payments, premiums, collateral, limits).
AMOUNT = "in the asset's units, e.g. 1.5 (smallest units with --raw)"

#: Prices of the underlying (strikes, settlement prices), as the oracle quotes them.
PRICE = "in the underlying's quote currency, e.g. 3000.5 (up to 8 decimals)"

#: Sizes of an option position.
QUANTITY = "in units of the underlying, e.g. 1.5 (up to 18 decimals)"

#: A point in time: an option's expiry.
EXPIRY = (
    "an ISO 8601 time (2027-06-25T08:00Z, UTC unless given), +7d (a duration from the node's "
    "chain time) or a unix time in seconds"
)

#: A channel as the one-shot commands name it.
CHANNEL = "a [peers] name (its open channel), or a channel id or id prefix (see status)"


def duration(what: str, default: str | None = None) -> str:
    """A length of time, given in seconds or as a duration text."""
    tail = f" (default {default})" if default else ""
    return f"{what}: seconds (30), or 90m, 1h, 7d, or ISO 8601 (PT1H){tail}"
