"""What a node tells the bot that embeds it: an async stream of these events.

Finality, as the node reports it (docs/PROTOCOL.md section 10): a state is *off-chain final* once
both signatures are stored; then, if the channel goes on chain, *registered*, *concluded* and
finally *withdrawn*.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channels.core.model import Address, ChannelId, State
from channels.core.options import Trade
from channels.core.protocol import Phase


class Finality(enum.Enum):
    OFF_CHAIN_FINAL = "off-chain final"
    REGISTERED = "registered"
    CONCLUDED = "concluded"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Event:
    channel_id: ChannelId | None


@dataclass(frozen=True, slots=True)
class StateUpdated(Event):
    """A new fully signed state is stored (off-chain final); ``trades`` produced it and ``ours``
    says whether we asked for them."""

    state: State
    ours: bool
    trades: tuple[Trade, ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateRefusedEvent(Event):
    request_id: int | None
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class PhaseChangedEvent(Event):
    phase: Phase


@dataclass(frozen=True, slots=True)
class PeerConnected(Event):
    peer: Address


@dataclass(frozen=True, slots=True)
class PeerLost(Event):
    peer: Address


@dataclass(frozen=True, slots=True)
class ChainEventSeen(Event):
    """An adjudicator event for one of our channels (name and decoded arguments)."""

    name: str
    args: dict[str, object]
    block_number: int


@dataclass(frozen=True, slots=True)
class FinalityChanged(Event):
    finality: Finality
    version: int


@dataclass(frozen=True, slots=True)
class Alarm(Event):
    """Something needs a human: data loss recovered, a deadline at risk, a misbehaving peer."""

    kind: str
    detail: str
