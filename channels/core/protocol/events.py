"""The machine's inputs (what happened) and actions (what the shell must do, in order).

All are frozen dataclasses: the shell builds inputs from the outside world, and performs the
actions a step returns in order: every ``Persist...`` before any ``Send`` after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from channels.core.consent import UpdateView
from channels.core.messages import Message
from channels.core.model import ChannelId, SignedState, SignedUpdate, Version
from channels.core.options import Trade
from channels.core.positions import BookChanges, BookSnapshot
from channels.core.protocol.phases import Phase

# Inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A message from the peer."""

    message: Message


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    """Our caller wants ``trades`` in the next state."""

    trades: tuple[Trade, ...]
    request_id: int


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection to the peer is up: send our side of the reestablish."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection to the peer is gone: requests we sent are lost."""


@dataclass(frozen=True, slots=True)
class DepositsObserved:
    """Cumulative deposits per participant, confirmed on chain at the confirmation depth."""

    totals: tuple[int, int]


@dataclass(frozen=True, slots=True)
class DisputeObserved:
    """A state of this channel is registered on chain (updates stop)."""

    version: Version


@dataclass(frozen=True, slots=True)
class DisputeCleared:
    """A newer state was checkpointed on chain: the dispute is over, trading may resume."""


@dataclass(frozen=True, slots=True)
class ChainStateSeen:
    """A fully signed state of this channel carried by a chain transaction (register/checkpoint)
    or held by one of the desk's watchtowers.

    If it is valid and newer than ours we adopt it: either the peer completed a proposal we
    signed, or we lost data. Its positions are known if they match ours, or from ``book`` (a
    tower keeps a state's open positions), checked against the state's commitment.
    """

    signed: SignedState
    book: BookSnapshot | None = None


@dataclass(frozen=True, slots=True)
class ConcludedObserved:
    """The channel is concluded on chain."""

    version: Version


Input = (
    Received
    | RequestUpdate
    | Reconnected
    | Disconnected
    | DepositsObserved
    | DisputeObserved
    | DisputeCleared
    | ChainStateSeen
    | ConcludedObserved
)


# Actions ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistSignature:
    """Durably record "I signed ``version`` = ``state_hash``" before the signature leaves.

    The store may keep this with a version lease that covers ``version`` rather than a record per
    version (docs/PROTOCOL.md section 7): after a restart nothing at or below it is signed again.
    """

    channel_id: ChannelId
    version: Version
    state_hash: bytes


@dataclass(frozen=True, slots=True)
class PersistState:
    """Durably store a fully signed state; it becomes the channel's latest.

    ``book`` is the whole positions book after it when the state was adopted from the peer (its
    positions do not follow from our stored latest plus its trades). ``changes`` are the slots
    the update changed, as the machine applied its trades and checked the result against the
    signed positions root: the store writes them as they are instead of deriving them again.
    Neither is given for a state whose trades change no position (version 0, a re-stored
    latest).
    """

    channel_id: ChannelId
    update: SignedUpdate
    book: BookSnapshot | None = None
    changes: BookChanges | None = None
    #: The state's EIP-712 struct hash when the machine has it already (it hashed the state to
    #: sign or check it), so the store need not hash it again; None: the store computes it.
    state_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class Send:
    message: Message


@dataclass(frozen=True, slots=True)
class UpdateApplied:
    """A new fully signed state is the latest (tells the caller whose request it answered)."""

    channel_id: ChannelId
    update: SignedUpdate
    request_id: int | None
    ours: bool


@dataclass(frozen=True, slots=True)
class UpdateRefused:
    """Our request or proposal did not become a state."""

    channel_id: ChannelId
    request_id: int | None
    version: Version | None
    rule: str
    reason: str
    #: False when the request id is the peer's (a leader dropping a proposal it made for the
    #: follower's request): our own callers must not be woken by it.
    ours: bool = True


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    channel_id: ChannelId
    phase: Phase


@dataclass(frozen=True, slots=True)
class DataLossRecovered:
    """The peer held a newer fully signed state than we did; we verified and adopted it."""

    channel_id: ChannelId
    old_version: Version
    new_version: Version


Action = (
    PersistSignature
    | PersistState
    | Send
    | UpdateApplied
    | UpdateRefused
    | PhaseChanged
    | DataLossRecovered
)

#: A pre-trade check a bot installs: ``policy(view)`` gets the update (its channel id, the peer,
#: both states, the trades, whether we initiated it) and returns a reason to refuse, or None to
#: allow. It is a plain synchronous function of its arguments, called inside one machine step: it
#: cannot await, so it cannot re-enter the node or wait on anything the node holds (the node's
#: asynchronous callbacks, the event stream, never run under the node's locks).
Policy = Callable[[UpdateView], str | None]
