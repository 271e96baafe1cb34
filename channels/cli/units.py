"""Human units for the command line: amounts in the asset's decimals, ISO times and durations,
EIP-55 checked addresses.

The node and the control socket speak integers (smallest units, unix seconds); everything a
person types or reads goes through here, so one rule holds for every command: ``pay 1.5`` pays
1.5 tokens of a 6-decimal asset (1500000 smallest units; ``--raw`` takes and shows those), times
are ISO 8601 in UTC and durations are ``1h30m`` in text and ISO 8601 (``PT1H30M``) in JSON.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from channels.core.errors import LocalError
from channels.core.model import to_checksum
from channels.core.units import scale_exact


class UnitError(LocalError, ValueError):
    """A value a person typed is not what its unit needs (the message says what is)."""


# Amounts ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Amount:
    """An amount as typed: converted once the asset's decimals are known (they live on chain)."""

    text: str

    def units(self, decimals: int, *, raw: bool = False) -> int:
        """Smallest units: ``1.5`` with 6 decimals is 1500000; with ``raw`` the text already is."""
        return parse_units(self.text, 0 if raw else decimals)


def parse_amount_text(text: str) -> Amount:
    """argparse type for an amount: checked now (a number, not negative), scaled later."""
    parse_decimal(text)
    return Amount(text)


def parse_decimal(text: str) -> Decimal:
    cleaned = text.strip().replace("_", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise UnitError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise UnitError(f"must be a non-negative number: {text!r}")
    return value


def parse_units(text: str, decimals: int) -> int:
    """``text`` scaled by 10**decimals, exactly; more decimals than the asset has is refused."""
    scaled = scale_exact(parse_decimal(text), decimals)
    if scaled is None:
        if decimals == 0:
            raise UnitError(f"{text!r} is not a whole number of smallest units (--raw)")
        raise UnitError(f"{text!r} has more than the asset's {decimals} decimals")
    return scaled


# Times and durations ---------------------------------------------------------------------------
def iso_time(timestamp: int) -> str:
    """``2026-12-14T08:00:00Z``."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_TEXT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def text_duration(seconds: int) -> str:
    """``1d2h``, ``45m``, ``0s``: the two largest units, for tables and messages."""
    if seconds <= 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _TEXT_UNITS:
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


def iso_duration(seconds: int) -> str:
    """ISO 8601: ``PT1H30M``, ``P7D``, ``PT0S``."""
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time_part = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "")


_SHORT = re.compile(r"(\d+)([smhdw]?)")
_SHORT_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_ISO = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?"
)


def parse_duration_text(text: str) -> int:
    """Seconds from ``3600``, ``90m``, ``7d``, ``1d12h`` or ISO 8601 ``PT1H30M``."""
    stripped = text.strip()
    iso = _ISO.fullmatch(stripped.upper())
    if iso is not None and stripped.upper() not in ("P", "PT"):
        parts = {k: int(v) for k, v in iso.groupdict().items() if v}
        return sum(
            parts.get(k, 0) * s
            for k, s in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
        )
    pos, total = 0, 0
    for match in _SHORT.finditer(stripped):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _SHORT_UNIT[match.group(2)]
        pos = match.end()
    if pos != len(stripped) or not stripped:
        raise UnitError(f"not a duration (e.g. 3600, 90m, 7d, 1d12h, PT1H): {text!r}")
    return total


# Addresses -------------------------------------------------------------------------------------
def checked_address(text: str) -> bytes:
    """A 0x address whose EIP-55 checksum (its mixed case) is right.

    An address without a checksum (all lower or upper case) is refused too: a mistyped
    character in it could not be noticed, and a mistyped adjudicator, oracle or peer address
    is exactly what this check is for.
    """
    value = text.strip()
    if value[:2] != "0x" or len(value) != 42:
        raise UnitError(f"{text!r} is not an address (0x and 40 hex digits)")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise UnitError(f"{text!r} is not an address (0x and 40 hex digits)") from None
    if value != to_checksum(raw):
        digits = value[2:]
        if digits == digits.lower() or digits == digits.upper():
            raise UnitError(
                f"{text!r} has no EIP-55 checksum (mixed case); copy the address as "
                "`channels chain`, `channels address` or a block explorer prints it"
            )
        raise UnitError(
            f"{text!r} fails its EIP-55 checksum: a character is mistyped; copy the address again"
        )
    return raw
