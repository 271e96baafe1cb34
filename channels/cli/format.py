"""Output: plain lines, amounts, tables, JSON and progress dots."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Awaitable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from channels.cli.config import PRICE_DECIMALS, QUANTITY_DECIMALS, Config

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


def fmt_fixed(value: int, decimals: int) -> str:
    text = str(Decimal(value).scaleb(-decimals).normalize())
    return f"{Decimal(text):f}"


def fmt_duration(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


def short_hex(text: str, digits: int = 10) -> str:
    return text[: 2 + digits]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    right = {i for i, h in enumerate(headers) if h in ("VER", "OURS", "THEIRS", "POS")}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def status_table(rows: Sequence[Mapping[str, Any]], now: int, cfg: Config | None) -> str:
    headers = ("CHANNEL", "PEER", "PHASE", "VER", "OURS", "THEIRS", "POS", "FINALITY", "DEADLINE")
    lines = []
    for row in rows:
        peer = str(row.get("peer", ""))
        name = cfg.peer_name(peer) if cfg is not None else None
        deadline = "-"
        if isinstance(row.get("dispute_deadline"), int):
            deadline = f"dispute ends in {fmt_duration(row['dispute_deadline'] - now)}"
        elif isinstance(row.get("next_expiry"), int):
            deadline = f"expiry in {fmt_duration(row['next_expiry'] - now)}"
        lines.append(
            (
                short_hex(str(row.get("id", ""))),
                name or f"{peer[:6]}…{peer[-4:]}",
                str(row.get("phase", "")),
                str(row.get("version", "")),
                fmt_amount(row.get("our_balance")),
                fmt_amount(row.get("their_balance")),
                str(len(row.get("positions") or ())),
                str(row.get("finality", "")),
                deadline,
            )
        )
    return render_table(headers, lines)


def positions_table(rows: Sequence[Mapping[str, Any]]) -> str:
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
    for row in rows:
        for p in row.get("positions") or ():
            expiry = dt.datetime.fromtimestamp(int(p["expiry"]), dt.UTC)
            lines.append(
                (
                    short_hex(str(row["id"])),
                    str(p["id"]),
                    str(p["side"]),
                    str(p["kind"]),
                    str(p["underlying"]),
                    fmt_fixed(int(p["strike"]), PRICE_DECIMALS),
                    fmt_fixed(int(p["quantity"]), QUANTITY_DECIMALS),
                    fmt_amount(p["collateral"]),
                    expiry.strftime("%Y-%m-%d %H:%M"),
                )
            )
    return render_table(headers, lines) if lines else ""


def print_json(value: object) -> None:
    out(json.dumps(value, indent=2))


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
