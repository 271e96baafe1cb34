"""What the commands print, in one schema for text and JSON: ours first, human units.

The control socket answers in integers (smallest units, unix seconds; balances as ``our_balance``
and ``their_balance``); these views turn them into what a desk reads: amounts in the asset's
decimals (or raw integers with ``--raw``), ISO times, ISO durations, and our side before theirs
everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels.cli.config import PRICE_DECIMALS, QUANTITY_DECIMALS, Config
from channels.cli.units import iso_duration, iso_time
from channels.core.units import fmt_units


@dataclass(frozen=True, slots=True)
class Units:
    """How to show amounts of one channel's asset."""

    decimals: int
    raw: bool = False

    def amount(self, value: int) -> str | int:
        """JSON: a decimal string in the asset's units, or the integer with ``--raw``."""
        return value if self.raw else fmt_units(value, self.decimals)

    def text(self, value: object) -> str:
        if not isinstance(value, int):
            return "-"
        return str(value) if self.raw else fmt_units(value, self.decimals)


def peer_label(row: Mapping[str, Any], cfg: Config | None) -> str:
    """The peer's [peers] name, else its address."""
    peer = str(row.get("peer", ""))
    name = cfg.peer_name(peer) if cfg is not None else None
    return name or peer


def position_view(p: Mapping[str, Any], units: Units) -> dict[str, Any]:
    return {
        "id": p["id"],
        "side": p["side"],
        "kind": p["kind"],
        "underlying": p["underlying"],
        "strike": fmt_units(int(p["strike"]), PRICE_DECIMALS),
        "quantity": fmt_units(int(p["quantity"]), QUANTITY_DECIMALS),
        "collateral": units.amount(int(p["collateral"])),
        "expiry": iso_time(int(p["expiry"])),
    }


def channel_view(
    row: Mapping[str, Any], cfg: Config | None, raw: bool, *, now: int | None = None
) -> dict[str, Any]:
    """One channel as ``status``, ``open`` and ``close`` show it."""
    units = Units(int(row["asset_decimals"]), raw)
    deadline = row.get("dispute_deadline")
    next_expiry = row.get("next_expiry")
    view: dict[str, Any] = {
        "id": row["id"],
        "peer": peer_label(row, cfg),
        "peer_address": row["peer"],
        "peer_connected": bool(row.get("peer_connected")),
        "phase": row["phase"],
        "version": row["version"],
        **balances_view(row, units),
        "locked": units.amount(int(row["locked"])),
        "asset": row["asset"],
        "asset_decimals": row["asset_decimals"],
        "finality": row["finality"],
        "challenge_period": iso_duration(int(row["challenge_period"])),
        "dispute_deadline": iso_time(deadline) if isinstance(deadline, int) and deadline else None,
        "next_expiry": iso_time(next_expiry) if isinstance(next_expiry, int) else None,
        "positions": [position_view(p, units) for p in row.get("positions") or ()],
    }
    if "known_current" in row:  # status rows (an open or close answer has no such view)
        view["in_sync"] = bool(row.get("in_sync"))
        view["known_current"] = bool(row["known_current"])
        view["backed_up"] = row.get("backed_up")
    return view


def balances_view(result: Mapping[str, Any], units: Units) -> dict[str, Any]:
    """A control reply's balances as every command shows them: ours, then theirs."""
    return {
        "ours": units.amount(int(result["our_balance"])),
        "theirs": units.amount(int(result["their_balance"])),
    }


def state_view(
    result: Mapping[str, Any], row: Mapping[str, Any], cfg: Config | None, raw: bool
) -> dict[str, Any]:
    """A new state after a trade (``pay``, ``unwind``, ``top-up``, ``withdraw``): ours first."""
    units = Units(int(row["asset_decimals"]), raw)
    return {
        "channel": row["id"],
        "peer": peer_label(row, cfg),
        "version": result["version"],
        **balances_view(result, units),
        "locked": units.amount(int(result["locked"])),
        "positions": result["position_count"],
        "final": bool(result["is_final"]),
    }


def state_line(what: str, view: Mapping[str, Any]) -> str:
    locked = view.get("locked")
    return f"{what}: version {view['version']}, ours {view['ours']}, theirs {view['theirs']}" + (
        f", locked {locked}" if locked not in (None, "0", 0) else ""
    )


def short_id(channel_id: str, digits: int = 10) -> str:
    return channel_id[: 2 + digits]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    right = {
        i
        for i, h in enumerate(headers)
        if h in ("VER", "OURS", "THEIRS", "LOCKED", "POS", "STRIKE", "QTY", "COLLAT")
    }

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])
