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


def balances_json(state: State, our_index: int) -> dict[str, int]:
    """The two balances as every control reply shows them: ours first, each labelled (never a
    list by participant index, whose order would depend on who opened the channel)."""
    return {
        "our_balance": state.balances[our_index],
        "their_balance": state.balances[1 - our_index],
    }


def state_json(state: State, our_index: int) -> dict[str, Any]:
    """A state as the replies of the trades show it (pay, unwind, settle, top_up, withdraw; the
    option trades and fill add the position), in our view: the one reply schema."""
    return {
        "version": state.version,
        **balances_json(state, our_index),
        "locked": state.locked,
        "position_count": state.position_count,
        "is_final": state.is_final,
    }


def trade_json(channel: Channel, position: Position) -> dict[str, Any]:
    """The reply of a trade that opens a position (write_option, buy_option, fill): the channel's
    state after it, and the position."""
    return {
        **state_json(channel.state, channel.our_index),
        "position": position_json(position, channel.our_index),
    }
