"""Output: plain lines, amounts, tables, JSON and progress dots."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from channels.cli.units import text_duration
from channels.cli.views import render_table, short_id
from channels.core.units import fmt_units

if TYPE_CHECKING:
    pass

T = TypeVar("T")


# Output ----------------------------------------------------------------------------------------
def out(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fmt_amount(value: object) -> str:
    return f"{value:_}" if isinstance(value, int) else "-"


#: The older name of :func:`channels.core.units.fmt_units` (the same rule), kept in exports.
fmt_fixed = fmt_units


#: The older name of :func:`channels.cli.units.text_duration`, kept in ``channels.cli``'s exports.
fmt_duration = text_duration


def short_hex(text: str, digits: int = 10) -> str:
    return text[: 2 + digits]


def status_table(views: Sequence[Mapping[str, Any]], now: int) -> str:
    """The channels table from :func:`channels.cli.views.channel_view` rows: ours first."""
    headers = (
        "CHANNEL",
        "PEER",
        "ONLINE",
        "PHASE",
        "VER",
        "OURS",
        "THEIRS",
        "LOCKED",
        "POS",
        "FINALITY",
        "NEXT",
    )
    lines = []
    for view in views:
        deadline = "-"
        if view.get("dispute_deadline"):
            deadline = f"dispute ends {view['dispute_deadline']}"
        elif view.get("next_expiry"):
            deadline = f"expiry {view['next_expiry']}"
        peer = str(view["peer"])
        if peer.startswith("0x") and len(peer) == 42:
            peer = f"{peer[:6]}…{peer[-4:]}"
        lines.append(
            (
                short_id(str(view["id"])),
                peer,
                "yes" if view.get("peer_connected") else "no",
                str(view["phase"]),
                str(view["version"]),
                str(view["ours"]),
                str(view["theirs"]),
                str(view["locked"]),
                str(len(view.get("positions") or ())),
                str(view["finality"]),
                deadline,
            )
        )
    return render_table(headers, lines)


def currency_notes(views: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line for each channel whose version the node does not know to be the newest (after a
    start, until the peer, a tower or the chain has shown it): a restored old copy looks so."""
    return [
        f"{short_id(str(v['id']))}: v{v['version']} not known current (the peer and the towers "
        "not heard since the start): nothing is registered on its own; `dispute` needs --force"
        for v in views
        if v.get("known_current") is False and v["phase"] != "closed"
    ]


def positions_table(views: Sequence[Mapping[str, Any]]) -> str:
    headers = (
        "CHANNEL",
        "POSITION",
        "SIDE",
        "KIND",
        "UNDERLYING",
        "STRIKE",
        "QTY",
        "COLLAT",
        "EXPIRY",
    )
    lines = []
    for view in views:
        for p in view.get("positions") or ():
            lines.append(
                (
                    short_id(str(view["id"])),
                    str(p["id"]),
                    str(p["side"]),
                    str(p["kind"]),
                    str(p["underlying"]),
                    str(p["strike"]),
                    str(p["quantity"]),
                    str(p["collateral"]),
                    str(p["expiry"]),
                )
            )
    return render_table(headers, lines) if lines else ""


def print_json(value: object) -> None:
    out(json.dumps(value, indent=2))


__all__ = [
    "currency_notes",
    "fmt_amount",
    "fmt_duration",
    "fmt_fixed",
    "note",
    "out",
    "positions_table",
    "print_json",
    "render_table",
    "short_hex",
    "status_table",
    "with_progress",
]


async def with_progress(label: str, work: Awaitable[T], *, interval: float = 1.0) -> T:
    """Await ``work`` while showing that something is happening: dots on a terminal."""
    tty = sys.stderr.isatty()
    if tty:
        print(f"{label}…", end="", file=sys.stderr, flush=True)
    else:
        note(f"{label}…")
    result: list[T] = []

    async def run(cancel: trio.CancelScope) -> None:
        result.append(await work)
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, nursery.cancel_scope)
        if tty:
            while True:
                await trio.sleep(interval)
                print(".", end="", file=sys.stderr, flush=True)
    if tty:
        print(" done", file=sys.stderr, flush=True)
    return result[0]
