"""The store's records (what it returns) and operations (what :meth:`Store.apply` takes)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from channels.core.model import ChannelId, Params, SignedUpdate
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.protocol import PersistSignature, PersistState, Phase, PhaseChanged
from channels.store.errors import CorruptStore
from channels.store.lease import LeaseVersions

# Records and operations ------------------------------------------------------------------------


class IntentStatus(enum.Enum):
    PENDING = "pending"  # persisted, maybe not broadcast yet: rebroadcast after a restart
    SENT = "sent"  # broadcast; tx_hash known
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Intents still to be driven to an outcome after a restart.
OPEN_INTENTS: Final = (IntentStatus.PENDING, IntentStatus.SENT)


@dataclass(frozen=True, slots=True)
class Intent:
    id: int
    channel_id: ChannelId | None
    kind: str
    payload: bytes
    raw_tx: bytes | None
    tx_hash: bytes | None
    nonce: int | None
    status: IntentStatus
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Cursor:
    name: str
    block_number: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredChannel:
    """Everything :meth:`ChannelMachine.restore` needs, as the store holds it.

    ``latest`` is the latest fully signed state. A channel that has none yet (we signed version 0
    and crashed before the peer's signature arrived) gets the unsigned opening state with no
    signatures; ``highest_signed`` then says whether we signed it (0) or not (-1).
    ``book`` is a fresh :class:`PositionBook` whose root was checked against ``latest``.
    """

    params: Params
    our_index: int
    deposits: tuple[int, int]
    phase: Phase
    latest: SignedUpdate
    book: PositionBook
    highest_signed: int
    endpoint: tuple[str, int] | None
    created_at: int
    #: The newest fully signed updates, oldest first, ending with ``latest`` (what a peer that
    #: is behind replays from our Reestablish; channels/core/protocol/resync.py).
    recent: tuple[SignedUpdate, ...] = ()

    @property
    def channel_id(self) -> ChannelId:
        return self.params.channel_id

    @property
    def fully_signed(self) -> bool:
        return self.latest.signed.fully_signed

    @property
    def signed_ahead(self) -> bool:
        """We signed a version above the latest fully signed state: its countersignature may
        exist at the peer, so we may be behind (docs/THREATS.md section 5.3)."""
        version = self.latest.signed.state.version if self.fully_signed else -1
        return self.highest_signed > version


@dataclass(frozen=True, slots=True)
class AddChannel:
    """W1: the channel's parameters, before we sign version 0."""

    params: Params
    our_index: int
    deposits: tuple[int, int]
    phase: Phase
    endpoint: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class AppendState:
    """A fully signed state. ``book`` is the complete book after it, when the book did not come
    from applying the update's trades to the stored latest; otherwise None and the store derives
    the changed slots itself. The shell passes ``book=msg.book`` for the ``PersistState`` that
    handling a peer's ``Reestablish`` produces (an adopted state, or our own proposal completed
    by it): that state is not the stored latest plus its trades."""

    channel_id: ChannelId
    update: SignedUpdate
    book: BookSnapshot | None = None


@dataclass(frozen=True, slots=True)
class AddIntent:
    """W3/W7: a chain transaction we are about to send. The operation's result is its id."""

    kind: str
    payload: bytes
    channel_id: ChannelId | None = None
    raw_tx: bytes | None = None
    tx_hash: bytes | None = None
    nonce: int | None = None
    status: IntentStatus = IntentStatus.PENDING


@dataclass(frozen=True, slots=True)
class UpdateIntent:
    """Change an intent; fields left None keep their value."""

    intent_id: int
    status: IntentStatus | None = None
    raw_tx: bytes | None = None
    tx_hash: bytes | None = None
    nonce: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteIntent:
    intent_id: int


@dataclass(frozen=True, slots=True)
class SetCursor:
    name: str
    block_number: int
    block_hash: bytes


#: What :meth:`Store.apply` takes. The machine's own actions are operations as they are:
#: ``PersistSignature`` records a signature, ``PersistState`` appends a state (book derived from
#: its trades), ``PhaseChanged`` sets the phase; ``LeaseVersions`` records a version lease
#: (channels/store/lease.py).
Op = (
    PersistSignature
    | LeaseVersions
    | PersistState
    | PhaseChanged
    | AddChannel
    | AppendState
    | AddIntent
    | UpdateIntent
    | DeleteIntent
    | SetCursor
)
#: One result per operation: the new id for :class:`AddIntent`, None otherwise.
Results = list[int | None]


@dataclass(slots=True)
class StoreStats:
    transactions: int = 0
    groups: int = 0
    ops: int = 0


INTENT_COLUMNS = (
    "id, channel_id, kind, payload, raw_tx, tx_hash, nonce, status, created_at, updated_at"
)


def intent_from_row(row: tuple[Any, ...]) -> Intent:
    try:
        status = IntentStatus(row[7])
    except ValueError as exc:  # pragma: no cover - the CHECK constraint prevents it
        raise CorruptStore(f"chain intent {row[0]} has status {row[7]!r}") from exc
    return Intent(
        id=int(row[0]),
        channel_id=None if row[1] is None else ChannelId(bytes(row[1])),
        kind=str(row[2]),
        payload=bytes(row[3]),
        raw_tx=None if row[4] is None else bytes(row[4]),
        tx_hash=None if row[5] is None else bytes(row[5]),
        nonce=None if row[6] is None else int(row[6]),
        status=status,
        created_at=int(row[8]),
        updated_at=int(row[9]),
    )
