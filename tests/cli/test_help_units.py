"""Every help text names its unit: a walk over the whole ``channels`` parser fails on any option
or argument of an amount, price, quantity, time or duration whose help does not say in what unit
it is given.

An argument is a value of some kind by what parses it (its ``type``, unwrapped from the parser's
error wrapper); a number parsed by ``int`` or ``float`` is a length of time (in seconds) unless
the list below says what else it is; an argument parsed as a plain string must not be named like
a value (it would be taken without any unit at all)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable

import pytest

from channels.cli.parser import ChannelsParser, build_parser, walk_arguments
from channels.cli.units import parse_amount_text, parse_duration_text
from channels.cli.values import parse_duration, parse_expiry, parse_price, parse_quantity

#: What the help of each kind of value must say (every phrase, case-insensitive).
UNIT_PHRASES: dict[str, tuple[str, ...]] = {
    "amount": ("units", "--raw"),  # the asset's (or the test token's) units; raw with --raw
    "price": ("quote currency",),
    "quantity": ("units of the underlying",),
    "time": ("ISO 8601", "seconds"),  # an ISO time, or unix seconds
    "duration": ("seconds", "ISO 8601"),
    "seconds": ("seconds",),
}

#: The kind of value each parser reads.
KIND_OF_PARSER: dict[Callable[[str], object], str] = {
    parse_amount_text: "amount",
    parse_price: "price",
    parse_quantity: "quantity",
    parse_expiry: "time",
    parse_duration: "duration",
    parse_duration_text: "duration",
    int: "seconds",
    float: "seconds",
}

#: Parsers of things that are not measured in any unit (names and ids); found by name, because
#: they are private to the modules that build the parser.
NOT_MEASURES = {
    "_address_arg": "an EIP-55 address",
    "_position_id": "a position id as status shows it",
    "_alarm_id": "an alarm id as alarms shows it",
    "_request_id": "a request id as quotes shows it",
}

#: Number arguments that are not lengths of time, with the reason.
NUMBERS_WITHOUT_UNIT = {
    ("chain", "port"): "a TCP port number",
    ("init", "listen_port"): "a TCP port number",
    ("keygen", "scrypt_n"): "hidden (tests only): scrypt's work factor, a count",
    ("init", "scrypt_n"): "hidden (tests only): scrypt's work factor, a count",
    ("dispute", "poll"): "hidden (tests only): the countdown's poll interval",
}

#: Names that say an argument is a value with a unit.
VALUE_NAME = re.compile(
    r"amount|deposit|premium|collateral|price|strike|quantity|share|limit|mint|expiry|time|"
    r"period|valid|poll|interval|delay|duration|balance|fee|gas"
)


def _parser_of(action: argparse.Action) -> object:
    return getattr(action.type, "__wrapped__", action.type)


def _label(command: str, action: argparse.Action) -> str:
    name = "/".join(action.option_strings) or action.dest
    return f"channels {command} {name}".replace("  ", " ")


def unit_problems(arguments: Iterable[tuple[str, argparse.Action]]) -> list[str]:
    """Every argument that takes a value with a unit and whose help does not name the unit."""
    problems: list[str] = []
    for command, action in arguments:
        if action.nargs == 0:
            continue  # flags (--help and --version too) take no value
        parser = _parser_of(action)
        label = _label(command, action)
        if parser is None:
            if VALUE_NAME.search(action.dest):
                problems.append(f"{label}: named like a value but taken as plain text")
            continue
        if getattr(parser, "__name__", "") in NOT_MEASURES:
            continue
        if (command, action.dest) in NUMBERS_WITHOUT_UNIT:
            assert parser in (int, float), f"{label}: no longer a plain number; update the list"
            continue
        kind = KIND_OF_PARSER.get(parser)  # type: ignore[call-overload]
        if kind is None:
            problems.append(f"{label}: parsed by {parser!r}, which this test does not know")
            continue
        text = (action.help or "").lower()
        missing = [p for p in UNIT_PHRASES[kind] if p.lower() not in text]
        if action.help == argparse.SUPPRESS or missing:
            problems.append(f"{label}: its help does not name the unit of its {kind}: {missing}")
    return problems


def test_every_value_option_names_its_unit() -> None:
    arguments = list(walk_arguments(build_parser()))
    assert unit_problems(arguments) == []
    # The walk reaches every command, the quote commands among them.
    commands = {command for command, _ in arguments}
    for name in ("open", "pay", "write", "buy", "unwind", "rfq", "offer", "answer", "fill"):
        assert name in commands
    checked = {
        (c, a.dest)
        for c, a in arguments
        if a.nargs != 0 and _parser_of(a) in KIND_OF_PARSER and a.help != argparse.SUPPRESS
    }
    assert {
        ("rfq", "strike"),
        ("rfq", "quantity"),
        ("rfq", "timeout"),
        ("offer", "max_quantity"),
        ("answer", "max_quantity"),
        ("offer", "valid_for"),
        ("write", "expiry"),
        ("pay", "amount"),
    } <= checked


def test_an_option_without_its_unit_is_caught() -> None:
    """The check can fail: the same parsers, with help texts that name no unit."""
    parser = build_parser()
    arguments = dict(((c, a.dest), a) for c, a in walk_arguments(parser))
    amount_type = arguments[("pay", "amount")].type
    quantity_type = arguments[("rfq", "quantity")].type
    extra = ChannelsParser(prog="channels extra")
    extra.add_argument("--tip", type=amount_type, help="a tip for the peer")
    extra.add_argument("--size", type=quantity_type, help="e.g. 1.5")
    extra.add_argument("--wait", type=int, help="how long to wait (default 10)")
    extra.add_argument("--max-premium", help="the most we pay")
    extra.add_argument("--port", type=int, help=argparse.SUPPRESS)
    problems = unit_problems(walk_arguments(extra, "extra"))
    assert [p.split(":")[0] for p in problems] == [
        "channels extra --tip",
        "channels extra --size",
        "channels extra --wait",
        "channels extra --max-premium",
        "channels extra --port",
    ]


@pytest.mark.parametrize("command", ["rfq", "offer", "answer", "fill", "write", "open"])
def test_the_help_shows_the_units(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from channels import cli

    assert cli.main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "units" in text
