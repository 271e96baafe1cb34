"""JSON views of a node's channels, positions and states, as control responses show them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channels.core.model import Position, State, symbol_text
from channels.core.node_events import Finality
from channels.core.protocol import Phase

if TYPE_CHECKING:
    from channels.runtime.channel import Channel


def finality_of(channel: Channel, seen: Finality | None) -> str:
    if seen is not None:
        return seen.value
    if channel.phase is Phase.CLOSED:
        return Finality.CONCLUDED.value
    if channel.phase is Phase.DISPUTED:
        return Finality.REGISTERED.value
    if channel.phase is Phase.OPENING:
        return "pending"
    return Finality.OFF_CHAIN_FINAL.value


def position_json(position: Position, our_index: int) -> dict[str, Any]:
    return {
        "id": position.id,
        "kind": position.kind.name.lower(),
        "underlying": symbol_text(position.underlying),
        "strike": position.strike,
        "expiry": position.expiry,
        "quantity": position.quantity,
        "collateral": position.collateral,
        "writer": position.writer,
        "side": "written" if position.writer == our_index else "held",
    }


def state_json(state: State) -> dict[str, Any]:
    return {
        "version": state.version,
        "balances": list(state.balances),
        "locked": state.locked,
        "position_count": state.position_count,
        "is_final": state.is_final,
    }
