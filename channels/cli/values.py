"""The parsers of command-line values (argparse types): amounts, prices, quantities, durations,
expiries and endpoints."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from channels.cli.units import UnitError, parse_duration_text
from channels.core.model import PRICE_DECIMALS, QUANTITY_DECIMALS
from channels.core.units import scale_exact


def parse_amount(text: str) -> int:
    """A non-negative integer in the asset's smallest unit; underscores may group digits."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def parse_fixed(text: str, decimals: int) -> int:
    """A decimal number scaled by 10**decimals, exactly (``3000.5`` -> 300050000000 for 8)."""
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number: {text!r}")
    scaled = scale_exact(value, decimals)
    if scaled is None:
        raise argparse.ArgumentTypeError(f"{text!r} has more than {decimals} decimals")
    return scaled


def parse_price(text: str) -> int:
    return parse_fixed(text, PRICE_DECIMALS)


def parse_quantity(text: str) -> int:
    return parse_fixed(text, QUANTITY_DECIMALS)


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90m``, ``7d``, ``1d12h`` or ISO 8601 ``PT1H``."""
    try:
        return parse_duration_text(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Expiry:
    absolute: int | None = None
    relative: int | None = None


def parse_expiry(text: str) -> Expiry:
    """``+7d`` (from the node's chain time), a unix time, or an ISO time (UTC unless given)."""
    if text.startswith("+"):
        return Expiry(relative=parse_duration(text[1:]))
    if text.isdigit():
        return Expiry(absolute=int(text))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an expiry (+7d, a unix time, or 2025-06-27T08:00Z): {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return Expiry(absolute=int(when.timestamp()))


def parse_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)
