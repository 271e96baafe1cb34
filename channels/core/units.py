"""Amounts in an asset's own units, both ways, exactly: shown for a person to read, and read
from what a person wrote (the CLI, a desk's TOML, a quote table). Pure.

Exact integer arithmetic, never ``Decimal.scaleb`` in the default context: that rounds to 28
significant digits (an amount of 2**128 smallest units would be shown, or read, with its last
digits changed) and raises ``decimal.Overflow`` for an exponent like ``1e999999``.
"""

from __future__ import annotations

from decimal import Decimal

#: A value read with more digits than this (as a whole number of smallest units) is taken as
#: ``10**MAX_DIGITS``: above every bound an amount has (2**256 < 10**78), so the reader's own
#: bound refuses it, without building a huge integer from a hostile exponent.
MAX_DIGITS = 78


def fmt_units(value: int, decimals: int) -> str:
    """``1500000`` with 6 decimals is ``1.5``; exact at any size, no exponent, no grouping."""
    if decimals == 0:
        return str(value)
    whole, fraction = divmod(abs(value), 10**decimals)
    text = f"{'-' if value < 0 else ''}{whole}"
    if fraction:
        text += "." + f"{fraction:0{decimals}d}".rstrip("0")
    return text


def scale_exact(value: Decimal, decimals: int) -> int | None:
    """``value`` x 10**decimals as an int, or None when that is not a whole number (more
    decimals than ``decimals``, or not finite). Beyond :data:`MAX_DIGITS` digits the result is
    ``10**MAX_DIGITS`` (with the value's sign)."""
    if not value.is_finite():
        return None
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    exponent += decimals
    if exponent < 0:
        if any(digits[exponent:]):
            return None  # a non-zero digit below the smallest unit
        digits, exponent = digits[:exponent], 0
    magnitude: int = 10**MAX_DIGITS
    if len(digits) + exponent <= MAX_DIGITS:
        magnitude = int("".join(map(str, digits)) or "0") * 10**exponent
    return -magnitude if sign else magnitude
