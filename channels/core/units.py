"""Amounts in an asset's own units, for messages a person reads (the CLI parses them back in
channels/cli/units.py). Pure."""

from __future__ import annotations

from decimal import Decimal


def fmt_units(value: int, decimals: int) -> str:
    """``1500000`` with 6 decimals is ``1.5``; exact, no exponent, no grouping."""
    if decimals == 0:
        return str(value)
    text = f"{Decimal(value).scaleb(-decimals):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
