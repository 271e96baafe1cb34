"""Protocol messages between the two participants of a channel (pure data).

The wire codec (channels.core.wire) turns these into bytes and back; the state machine consumes and
produces them. Every message names its channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.core.model import ChannelId, Params, SignedUpdate, State, Version
from channels.core.options import Trade
from channels.core.positions import BookSnapshot
from channels.core.terms import CounterOffer


@dataclass(frozen=True, slots=True)
class OpenProposal:
    """The initiator's channel proposal with its signature on version 0."""

    params: Params
    deposits: tuple[int, int]
    signature: bytes


@dataclass(frozen=True, slots=True)
class OpenAccept:
    """The responder's signature on version 0: the channel exists, deposits may be sent."""

    channel_id: ChannelId
    signature: bytes


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """The follower asks the leader to propose ``trades`` (unsigned; see PROTOCOL.md section 7)."""

    channel_id: ChannelId
    request_id: int
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class Proposal:
    """The leader's signed next state, built on ``base_version`` by applying ``trades``."""

    channel_id: ChannelId
    base_version: Version
    trades: tuple[Trade, ...]
    state: State
    signature: bytes
    #: The follower's request this proposal answers, if any.
    request_id: int | None = None
    #: The leader's signature on the Withdrawal when the trades debit one.
    withdrawal_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class Accept:
    """The follower's countersignature: the proposed version is now fully signed."""

    channel_id: ChannelId
    version: Version
    signature: bytes
    withdrawal_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """A refusal naming the rule that broke: of a proposal (``version``) or a request."""

    channel_id: ChannelId
    version: Version | None
    request_id: int | None
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reestablish:
    """Sent first after every (re)connection: my latest fully signed state and its positions.

    ``recent`` is my newest fully signed updates with their trades, oldest first, ending with
    the latest itself (at most :data:`RESYNC_HISTORY`, fewer when the message would outgrow the
    wire's limit): a peer that is behind by no more than that replays them from its own latest,
    so the states it catches up on are stored with the trades that explain them.
    """

    channel_id: ChannelId
    state: State
    signatures: tuple[bytes, bytes]
    book: BookSnapshot
    recent: tuple[SignedUpdate, ...] = ()


#: The most updates a :class:`Reestablish` carries in ``recent``.
RESYNC_HISTORY = 16


@dataclass(frozen=True, slots=True)
class OpenCounter:
    """A refusal of a channel proposal with the terms the refusing side would accept instead
    (a proposal with them is accepted); ``rule`` and ``reason`` say what was refused."""

    channel_id: ChannelId
    rule: str
    reason: str
    counter: CounterOffer


Message = (
    OpenProposal
    | OpenAccept
    | UpdateRequest
    | Proposal
    | Accept
    | Reject
    | Reestablish
    | OpenCounter
)
