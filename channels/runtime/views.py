"""Read-only views of a node, as ``status`` shows them: frozen, so a caller can keep them."""

from __future__ import annotations

from dataclasses import dataclass

from channels.core.model import Address, ChannelId
from channels.core.protocol import ChannelMachine, Phase


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One channel at one moment: what a desk's status table shows."""

    channel_id: ChannelId
    peer: Address
    our_index: int
    phase: Phase
    version: int
    our_balance: int
    their_balance: int
    positions: int
    locked: int
    #: The dispute deadline the watcher last read from the chain (0: none known).
    deadline: int
    #: Whether the peer is connected now.
    connected: bool
    #: False from a lost link (or a restart) until the peer's reestablish has arrived.
    in_sync: bool
    #: Whether the node knows its latest state is the newest signed: false after a start until
    #: the peer, a tower or the chain has shown it (channels/runtime/currency.py).
    known_current: bool
    #: Versions proposed and not yet countersigned.
    in_flight: tuple[int, ...]


def channel_info(machine: ChannelMachine, deadline: int, connected: bool) -> ChannelInfo:
    """The view of one channel machine (``deadline`` and ``connected`` come from the watcher
    and the links)."""
    state = machine.state
    return ChannelInfo(
        channel_id=machine.channel_id,
        peer=machine.peer_address,
        our_index=machine.index,
        phase=machine.phase,
        version=state.version,
        our_balance=state.balances[machine.index],
        their_balance=state.balances[1 - machine.index],
        positions=state.position_count,
        locked=state.locked,
        deadline=deadline,
        connected=connected,
        in_sync=not machine.reestablishing,
        known_current=machine.synced,
        in_flight=tuple(machine.pending_versions),
    )
