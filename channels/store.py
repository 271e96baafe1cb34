"""The node's durable store: SQLite in WAL mode behind the write-before-send rule.

One database file belongs to ONE identity (the node's address) on ONE chain (chain id and
adjudicator); :meth:`Store.open` refuses any other file with a typed error and never touches it:

* not SQLite, truncated, failing ``PRAGMA quick_check``   -> :class:`CorruptStore`
* another program's database, another identity or chain   -> :class:`ForeignStore`
* written by a newer version of this program              -> :class:`SchemaTooNew`
* already open in another process                         -> :class:`StoreInUse`

Durability (THREATS.md S3): ``journal_mode=WAL`` and ``synchronous=FULL`` by default, so a commit
survives a power loss, not only a crash of the process. ``NORMAL`` is accepted for benchmarks.
The file is held with ``locking_mode=EXCLUSIVE``: two nodes can never write one store.

Tables (schema version 1, ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file):

``meta``            key/value: identity, chain_id, adjudicator, created_at, last_clean_shutdown
``channels``        one row per channel: params (wire blob), our index, deposits, phase, endpoint,
                    and the head of its history (version, link) and of its book (high water)
``states``          append-only, hash-chained history of every fully signed state:
                    ``link = keccak(prev_link ‖ state_hash ‖ version as 8 bytes)``, the first
                    ``prev_link`` is 32 zero bytes, ``state_hash`` is the EIP-712 struct hash;
                    ``blob_hash = keccak(update blob)`` covers trades and signatures too.
                    The channel row names the head link, so a lost tail is detected as well.
``signed_versions`` "I signed version n = hash H": one hash per (channel, version), forever.
``book_positions``  the open positions of the latest state, one row per slot.
``chain_intents``   transactions we intend to send / sent (W3, W7), rebroadcast after a restart.
``chain_cursor``    how far the chain follower got (block number and hash), by name.

UPDATE and DELETE on ``states`` and ``signed_versions`` are refused by triggers.

Book persistence (the design choice)
------------------------------------
The positions of the latest state are rows ``(channel_id, slot, position)``, changed in the SAME
transaction as the state that changed them. Only the changed slots are written, so an update
costs the same at 1,000 open positions as at none (a full snapshot per update would rewrite every
position; replaying trades from a periodic snapshot would need the rules' clock and deposit
context, which cannot be reproduced faithfully later).

The changed slots are derived inside the store: it keeps, per channel, a mirror
:class:`PositionBook` and applies the update's trades to it the way the rules do
(``OpenOption`` adds in the lowest free slot, ``Unwind``/``Settle`` remove). Then it checks the
mirror's root, count and locked collateral against the state before anything is written, so a
book that does not match its signed commitment is never committed. When the book did not come
from the trades on top of the stored latest (a state adopted on reestablish), the caller passes
the book snapshot instead (:class:`AppendState` with ``book=``); the rows are then replaced.
:meth:`Store.load_channels` rebuilds the book from the rows and checks its root again.

Grouped commits
---------------
:meth:`Store.apply` commits a batch of operations in one transaction; :meth:`Store.apply_groups`
commits several callers' batches in one transaction, each in its own savepoint, so one caller's
refused operation (an :class:`Equivocation`, say) does not fail the others. :class:`AsyncStore`
(from :func:`open_store`) runs every call in one worker thread at a time and combines concurrent
:meth:`AsyncStore.persist` calls into the next transaction; each caller returns only once its
operations are durable.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import trio

from channels.core import eip712, wire
from channels.core.errors import (
    BadSignature,
    ChannelError,
    CorruptStore,
    Equivocation,
    ForeignStore,
    SchemaTooNew,
    StaleVersion,
    StoreError,
    StoreInUse,
    UnknownChannel,
)
from channels.core.hashing import keccak256
from channels.core.machine import (
    PersistSignature,
    PersistState,
    Phase,
    PhaseChanged,
    SignedUpdate,
)
from channels.core.model import (
    ZERO_HASH,
    ChannelId,
    Params,
    Position,
    SignedState,
    Version,
    symbol_text,
    to_checksum,
)
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Trade,
    Unwind,
    opening_state,
)
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.signing import verify

SCHEMA_VERSION: Final = 1
#: ``PRAGMA application_id`` of a store ("OCHN").
APPLICATION_ID: Final = 0x4F43484E
ZERO_LINK: Final = ZERO_HASH
SYNCHRONOUS_MODES: Final = ("FULL", "EXTRA", "NORMAL")

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: sqlite3 errors caused by an operation's values (a constraint, an unbindable value); any other
#: sqlite3 error is the database's and fails the whole transaction.
_BAD_DATA = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
)
_INT64_MAX = 2**63 - 1
_PAGE = 256  # rows read per query when walking a history

T = TypeVar("T")


def chain_link(prev_link: bytes, state_hash: bytes, version: int) -> bytes:
    """The history link of a state: ``keccak(prev_link ‖ state_hash ‖ uint64 version)``."""
    return keccak256(prev_link + state_hash + version.to_bytes(8, "big"))


# Schema ----------------------------------------------------------------------------------------

_SCHEMA: Final = (
    """CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE channels (
        channel_id    BLOB PRIMARY KEY CHECK (length(channel_id) = 32),
        params        BLOB NOT NULL,
        our_index     INTEGER NOT NULL CHECK (our_index IN (0, 1)),
        deposit0      TEXT NOT NULL,
        deposit1      TEXT NOT NULL,
        phase         TEXT NOT NULL CHECK (phase IN
                          ('opening', 'funding', 'open', 'final', 'disputed', 'closed')),
        endpoint_host TEXT,
        endpoint_port INTEGER,
        head_version  INTEGER,
        head_link     BLOB NOT NULL CHECK (length(head_link) = 32),
        high_water    INTEGER NOT NULL DEFAULT 0 CHECK (high_water >= 0),
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE states (
        id          INTEGER PRIMARY KEY,
        channel_id  BLOB NOT NULL REFERENCES channels (channel_id),
        version     INTEGER NOT NULL CHECK (version >= 0),
        state_hash  BLOB NOT NULL CHECK (length(state_hash) = 32),
        update_blob BLOB NOT NULL,
        blob_hash   BLOB NOT NULL CHECK (length(blob_hash) = 32),
        prev_link   BLOB NOT NULL CHECK (length(prev_link) = 32),
        link        BLOB NOT NULL CHECK (length(link) = 32),
        stored_at   INTEGER NOT NULL,
        UNIQUE (channel_id, version)
    )""",
    """CREATE TABLE signed_versions (
        channel_id BLOB NOT NULL REFERENCES channels (channel_id),
        version    INTEGER NOT NULL CHECK (version >= 0),
        state_hash BLOB NOT NULL CHECK (length(state_hash) = 32),
        signed_at  INTEGER NOT NULL,
        PRIMARY KEY (channel_id, version)
    ) WITHOUT ROWID""",
    """CREATE TABLE book_positions (
        channel_id  BLOB NOT NULL REFERENCES channels (channel_id),
        slot        INTEGER NOT NULL CHECK (slot >= 0),
        position_id BLOB NOT NULL CHECK (length(position_id) = 8),
        position    BLOB NOT NULL,
        PRIMARY KEY (channel_id, slot),
        UNIQUE (channel_id, position_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE chain_intents (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        channel_id BLOB REFERENCES channels (channel_id),
        kind       TEXT NOT NULL,
        payload    BLOB NOT NULL,
        raw_tx     BLOB,
        tx_hash    BLOB,
        nonce      INTEGER,
        status     TEXT NOT NULL
                   CHECK (status IN ('pending', 'sent', 'confirmed', 'failed', 'cancelled')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX chain_intents_by_status ON chain_intents (status, id)",
    "CREATE INDEX chain_intents_by_channel ON chain_intents (channel_id, kind)",
    """CREATE TABLE chain_cursor (
        name         TEXT PRIMARY KEY,
        block_number INTEGER NOT NULL CHECK (block_number >= 0),
        block_hash   BLOB NOT NULL,
        updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TRIGGER states_append_only_update BEFORE UPDATE ON states
       BEGIN SELECT RAISE(ABORT, 'states are append-only'); END""",
    """CREATE TRIGGER states_append_only_delete BEFORE DELETE ON states
       BEGIN SELECT RAISE(ABORT, 'states are append-only'); END""",
    """CREATE TRIGGER signed_versions_update BEFORE UPDATE ON signed_versions
       BEGIN SELECT RAISE(ABORT, 'a signature record is permanent'); END""",
    """CREATE TRIGGER signed_versions_delete BEFORE DELETE ON signed_versions
       BEGIN SELECT RAISE(ABORT, 'a signature record is permanent'); END""",
)


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

    @property
    def channel_id(self) -> ChannelId:
        return self.params.channel_id

    @property
    def fully_signed(self) -> bool:
        return self.latest.signed.fully_signed

    @property
    def signed_ahead(self) -> bool:
        """We signed a version above the latest fully signed state: its countersignature may
        exist at the peer, so we may be behind (THREATS.md 4.4 step 5)."""
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
#: its trades), ``PhaseChanged`` sets the phase.
Op = (
    PersistSignature
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


@dataclass(slots=True)
class _Live:
    """What appending to a channel needs, cached between transactions."""

    head_version: int | None
    head_link: bytes
    high_water: int
    book: PositionBook
    slot_of: dict[int, int]


# The store -------------------------------------------------------------------------------------


class Store:
    """The synchronous store. Use it from one thread at a time (:class:`AsyncStore` does)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        identity: bytes,
        chain_id: int,
        adjudicator: bytes,
        clock: Callable[[], float],
    ) -> None:
        self._conn = conn
        self.path = path
        self.identity = identity
        self.chain_id = chain_id
        self.adjudicator = adjudicator
        self._clock = clock
        self._live_cache: dict[bytes, _Live] = {}
        self._touched: set[bytes] = set()
        self._closed = False
        self.stats = StoreStats()
        #: False when the previous run did not close the store (it crashed or was killed): the
        #: node may be behind its peer and must not register anything before it has heard from
        #: the peer or the chain (THREATS.md 4.4 step 5). True for a new store.
        self.previous_clean_shutdown = True
        self.created = False

    # opening -----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        identity: bytes,
        chain_id: int,
        adjudicator: bytes,
        synchronous: str = "FULL",
        *,
        clock: Callable[[], float] = time.time,
    ) -> Store:
        """Open (or create) the store of ``identity`` on (``chain_id``, ``adjudicator``)."""
        if type(identity) is not bytes or len(identity) != 20:
            raise StoreError("identity must be a 20-byte address")
        if type(adjudicator) is not bytes or len(adjudicator) != 20:
            raise StoreError("adjudicator must be a 20-byte address")
        if type(chain_id) is not int or chain_id < 0:
            raise StoreError("chain_id must be a non-negative int")
        sync = synchronous.upper()
        if sync not in SYNCHRONOUS_MODES:
            raise StoreError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        target = Path(path)
        if not target.exists():
            _create(target, identity, chain_id, adjudicator, clock)
            created = True
        else:
            created = False
        _check_header(target)
        try:
            conn = sqlite3.connect(
                str(target), isolation_level=None, check_same_thread=False, timeout=0
            )
        except sqlite3.Error as exc:  # pragma: no cover - depends on the file system
            raise StoreError(f"cannot open {target}: {exc}") from exc
        store = cls(conn, target, identity, chain_id, adjudicator, clock)
        store.created = created
        try:
            store._start(sync)
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc, f"cannot open the store {target}") from exc
        except BaseException:
            conn.close()
            raise
        return store

    def _start(self, synchronous: str) -> None:
        conn = self._conn
        # Exclusive before the first read: the lock is then held until close (no other process).
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL (journal_mode is {mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(20)")]
        if problems != ["ok"]:
            raise CorruptStore(
                f"{self.path} fails its integrity check: " + "; ".join(map(str, problems))
            )
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise ForeignStore(
                f"{self.path} is not an option-channels store (application_id {app_id:#x})"
            )
        if user_version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {user_version}; this program knows up to "
                f"{SCHEMA_VERSION}: upgrade the program (the file was not changed)"
            )
        if user_version < 1:
            raise CorruptStore(f"{self.path} has no schema version")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        for key in ("identity", "chain_id", "adjudicator", "last_clean_shutdown"):
            if key not in meta:
                raise CorruptStore(f"{self.path}: the meta table lacks {key!r}")
        if meta["identity"] != self.identity:
            raise ForeignStore(
                f"{self.path} belongs to {_addr(meta['identity'])}, "
                f"not to this node ({_addr(self.identity)})"
            )
        if meta["chain_id"] != str(self.chain_id):
            raise ForeignStore(
                f"{self.path} is for chain {meta['chain_id']!s}, the node is on chain "
                f"{self.chain_id}"
            )
        if meta["adjudicator"] != self.adjudicator:
            raise ForeignStore(
                f"{self.path} is for adjudicator {_addr(meta['adjudicator'])}, "
                f"the node uses {_addr(self.adjudicator)}"
            )
        self.previous_clean_shutdown = meta["last_clean_shutdown"] == "1"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'last_clean_shutdown'")
        conn.execute("COMMIT")

    def close(self, *, clean: bool = True) -> None:
        """Record a clean shutdown (unless ``clean`` is False) and close the file."""
        if self._closed:
            return
        self._closed = True
        try:
            if clean:
                if self._conn.in_transaction:  # pragma: no cover - only after a failed write
                    self._conn.execute("ROLLBACK")
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("UPDATE meta SET value = '1' WHERE key = 'last_clean_shutdown'")
                self._conn.execute("COMMIT")
        finally:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def settings(self) -> dict[str, Any]:
        """The connection's effective PRAGMA values (for checks and diagnostics)."""
        self._check_open()
        out: dict[str, Any] = {}
        for name in (
            "journal_mode",
            "synchronous",
            "foreign_keys",
            "locking_mode",
            "user_version",
            "application_id",
        ):
            out[name] = self._conn.execute(f"PRAGMA {name}").fetchone()[0]
        return out

    # writing -----------------------------------------------------------------------------------
    def apply(self, batch: Sequence[Op]) -> Results:
        """Commit ``batch`` in one transaction, all or nothing; raise the first error."""
        outcome = self.apply_groups([batch])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def apply_groups(self, groups: Sequence[Sequence[Op]]) -> list[Results | Exception]:
        """Commit several batches in ONE transaction; each batch is all or nothing on its own.

        A batch that breaks a rule is rolled back alone and its error is returned in its place.
        A database failure (disk full, I/O error) aborts the whole transaction and is raised.
        """
        self._check_open()
        conn = self._conn
        outcomes: list[Results | Exception] = []
        touched: set[bytes] = set()
        self._touched = set()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for ops in groups:
                self._touched = set()
                conn.execute("SAVEPOINT grp")
                try:
                    results = [self._apply_op(op) for op in ops]
                except _BAD_DATA as exc:  # the batch's own data, not the database, is at fault
                    conn.execute("ROLLBACK TO grp")
                    conn.execute("RELEASE grp")
                    self._forget(self._touched)
                    error = StoreError(f"the store refused the operation: {exc}")
                    error.__cause__ = exc
                    outcomes.append(error)
                except sqlite3.Error:
                    raise  # I/O error, disk full, corruption: the whole transaction fails
                except Exception as exc:
                    conn.execute("ROLLBACK TO grp")
                    conn.execute("RELEASE grp")
                    self._forget(self._touched)
                    outcomes.append(exc)
                else:
                    conn.execute("RELEASE grp")
                    outcomes.append(results)
                touched |= self._touched
            conn.execute("COMMIT")
        except BaseException as exc:
            self._forget(touched | self._touched)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:  # pragma: no cover - the transaction is gone already
                    pass
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, "the store could not commit") from exc
            raise
        self.stats.transactions += 1
        self.stats.groups += len(groups)
        self.stats.ops += sum(len(ops) for ops in groups)
        return outcomes

    def add_channel(
        self,
        params: Params,
        our_index: int,
        deposits: tuple[int, int],
        phase: Phase,
        endpoint: tuple[str, int] | None = None,
    ) -> None:
        self.apply([AddChannel(params, our_index, deposits, phase, endpoint)])

    def record_signature(self, channel_id: ChannelId, version: int, state_hash: bytes) -> None:
        """Record "I signed ``version`` = ``state_hash``"; idempotent for the same hash, and
        :class:`Equivocation` for another one."""
        self.apply([PersistSignature(channel_id, Version(version), state_hash)])

    def append_state(
        self, channel_id: ChannelId, update: SignedUpdate, book_changes: BookSnapshot | None = None
    ) -> None:
        """Append a fully signed state (see :class:`AppendState` for ``book_changes``)."""
        self.apply([AppendState(channel_id, update, book_changes)])

    def set_phase(self, channel_id: ChannelId, phase: Phase) -> None:
        self.apply([PhaseChanged(channel_id, phase)])

    def add_intent(
        self,
        kind: str,
        payload: bytes,
        channel_id: ChannelId | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
        status: IntentStatus = IntentStatus.PENDING,
    ) -> int:
        op = AddIntent(kind, payload, channel_id, raw_tx, tx_hash, nonce, status)
        result = self.apply([op])[0]
        assert result is not None
        return result

    def update_intent(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None:
        self.apply([UpdateIntent(intent_id, status, raw_tx, tx_hash, nonce)])

    def delete_intent(self, intent_id: int) -> None:
        self.apply([DeleteIntent(intent_id)])

    def set_cursor(self, name: str, block_number: int, block_hash: bytes) -> None:
        self.apply([SetCursor(name, block_number, block_hash)])

    # reading -----------------------------------------------------------------------------------
    def channel_ids(self) -> list[ChannelId]:
        self._check_open()
        rows = self._conn.execute("SELECT channel_id FROM channels ORDER BY created_at, channel_id")
        return [ChannelId(bytes(r[0])) for r in rows]

    def load_channels(self) -> list[StoredChannel]:
        """Every channel, ready for :meth:`ChannelMachine.restore` (each latest state and book
        checked; :class:`CorruptStore` if anything does not match)."""
        return [self.load_channel(cid) for cid in self.channel_ids()]

    def load_channel(self, channel_id: ChannelId) -> StoredChannel:
        self._check_open()
        row = self._conn.execute(
            "SELECT params, our_index, deposit0, deposit1, phase, endpoint_host, endpoint_port, "
            "head_version, head_link, high_water, created_at FROM channels WHERE channel_id = ?",
            (channel_id,),
        ).fetchone()
        if row is None:
            raise UnknownChannel(f"no stored channel 0x{channel_id.hex()}")
        pblob, index, d0, d1, phase, host, port, head_version, head_link, high_water, created = row
        params = _decoded("channel parameters", wire.decode_params, pblob)
        if params.channel_id != channel_id:
            raise CorruptStore(f"channel 0x{channel_id.hex()}: its parameters hash to another id")
        try:
            phase_value = Phase(phase)
            deposits = (int(d0), int(d1))
        except ValueError as exc:
            raise CorruptStore(f"channel 0x{channel_id.hex()}: bad phase or deposits") from exc
        signed_max = self._conn.execute(
            "SELECT MAX(version) FROM signed_versions WHERE channel_id = ?", (channel_id,)
        ).fetchone()[0]
        highest = -1 if signed_max is None else int(signed_max)
        if head_version is None:
            if self._conn.execute(
                "SELECT 1 FROM states WHERE channel_id = ? LIMIT 1", (channel_id,)
            ).fetchone():
                raise CorruptStore(f"channel 0x{channel_id.hex()}: states exist but no head")
            latest = SignedUpdate(SignedState(opening_state(params), (None, None)), ())
        else:
            latest = self._latest_update(channel_id, params, head_version, bytes(head_link))
            highest = max(highest, head_version)
        book = self._book_from_rows(channel_id, high_water)[0]
        state = latest.signed.state
        if (book.root, len(book), book.locked) != (
            state.positions_root,
            state.position_count,
            state.locked,
        ):
            raise CorruptStore(
                f"channel 0x{channel_id.hex()}: the stored positions do not match the positions "
                f"root of version {state.version}"
            )
        endpoint = (str(host), int(port)) if host is not None and port is not None else None
        return StoredChannel(
            params=params,
            our_index=int(index),
            deposits=deposits,
            phase=phase_value,
            latest=latest,
            book=book,
            highest_signed=highest,
            endpoint=endpoint,
            created_at=int(created),
        )

    def highest_signed(self, channel_id: ChannelId) -> int | None:
        self._check_open()
        value = self._conn.execute(
            "SELECT MAX(version) FROM signed_versions WHERE channel_id = ?", (channel_id,)
        ).fetchone()[0]
        return None if value is None else int(value)

    def history(self, channel_id: ChannelId, start: int = 0) -> Iterator[SignedUpdate]:
        """The stored fully signed states of a channel, oldest first, from version ``start``."""
        for row in self._history_rows(channel_id, start):
            yield _decoded("a stored update", wire.decode_update, row[2])

    def verify_history(self, channel_id: ChannelId, *, signatures: bool = True) -> int:
        """Check the whole history of a channel; return the number of states.

        Raises :class:`CorruptStore` naming the first version that does not verify: a broken or
        re-ordered chain, a missing tail, an altered state or update blob, a bad signature, or a
        stored state that disagrees with our own signature record.
        """
        self._check_open()
        row = self._conn.execute(
            "SELECT params, head_version, head_link FROM channels WHERE channel_id = ?",
            (channel_id,),
        ).fetchone()
        if row is None:
            raise UnknownChannel(f"no stored channel 0x{channel_id.hex()}")
        params = _decoded("channel parameters", wire.decode_params, row[0])
        head_version, head_link = row[1], bytes(row[2])
        domain = eip712.Domain(params.chain_id, params.adjudicator)
        prev = ZERO_LINK
        count = 0
        last: int | None = None
        where = f"channel 0x{channel_id.hex()[:16]}"
        for version, state_hash, blob, blob_hash, prev_link, link in self._history_rows(
            channel_id, 0
        ):
            if bytes(prev_link) != prev:
                raise CorruptStore(f"{where} v{version}: the history chain is broken before it")
            if chain_link(prev, bytes(state_hash), version) != bytes(link):
                raise CorruptStore(f"{where} v{version}: its link does not match")
            if keccak256(bytes(blob)) != bytes(blob_hash):
                raise CorruptStore(f"{where} v{version}: the stored update bytes were altered")
            update = _decoded(f"{where} v{version}", wire.decode_update, blob)
            self._check_update(update, channel_id, version, bytes(state_hash), where)
            if signatures:
                digest = eip712.state_digest(domain, update.signed.state)
                for who, sig in enumerate(update.signed.signatures):
                    if sig is None:
                        raise CorruptStore(f"{where} v{version}: signature {who} is missing")
                    try:
                        verify(digest, sig, params.participants[who])
                    except BadSignature as exc:
                        raise CorruptStore(f"{where} v{version}: signature {who}: {exc}") from exc
            prev = bytes(link)
            last = version
            count += 1
        if last != head_version or prev != (head_link if last is not None else ZERO_LINK):
            raise CorruptStore(
                f"{where}: the history ends at v{last}, but the channel's head is v{head_version}"
                " (states were removed or added behind the store's back)"
            )
        mismatch = self._conn.execute(
            "SELECT s.version FROM states s LEFT JOIN signed_versions g "
            "ON g.channel_id = s.channel_id AND g.version = s.version "
            "WHERE s.channel_id = ? AND (g.state_hash IS NULL OR g.state_hash != s.state_hash) "
            "LIMIT 1",
            (channel_id,),
        ).fetchone()
        if mismatch is not None:
            raise CorruptStore(
                f"{where} v{mismatch[0]}: the stored state is not the one our signature record "
                "names"
            )
        return count

    def export_audit(self, channel_id: ChannelId) -> list[dict[str, Any]]:
        """The history as JSON-friendly dicts (amounts as decimal strings, bytes as 0x hex)."""
        out: list[dict[str, Any]] = []
        rows = self._history_rows(channel_id, 0, with_time=True)
        for version, state_hash, blob, _bh, prev_link, link, stored_at in rows:
            update = _decoded(f"v{version}", wire.decode_update, blob)
            state = update.signed.state
            out.append(
                {
                    "version": version,
                    "state_hash": _hex(state_hash),
                    "prev_link": _hex(prev_link),
                    "link": _hex(link),
                    "stored_at": stored_at,
                    "signatures": [
                        None if s is None else _hex(s) for s in update.signed.signatures
                    ],
                    "balances": [str(b) for b in state.balances],
                    "deposited": [str(d) for d in state.deposited],
                    "withdrawn": [str(w) for w in state.withdrawn],
                    "locked": str(state.locked),
                    "positions_root": _hex(state.positions_root),
                    "position_count": state.position_count,
                    "is_final": state.is_final,
                    "trades": [trade_summary(t) for t in update.trades],
                    "withdrawal": None
                    if update.withdrawal is None
                    else {
                        "participant": update.withdrawal.participant,
                        "amount": str(update.withdrawal.amount),
                        "recipient": to_checksum(update.withdrawal.recipient),
                    },
                }
            )
        return out

    def get_intent(self, intent_id: int) -> Intent:
        self._check_open()
        row = self._conn.execute(
            f"SELECT {_INTENT_COLUMNS} FROM chain_intents WHERE id = ?", (intent_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no chain intent with id {intent_id}")
        return _intent(row)

    def intents(
        self,
        statuses: Sequence[IntentStatus] | None = None,
        channel_id: ChannelId | None = None,
        kind: str | None = None,
    ) -> list[Intent]:
        """Intents matching every filter given, oldest first (``statuses=OPEN_INTENTS`` gives
        what to rebroadcast after a restart)."""
        self._check_open()
        where: list[str] = []
        args: list[object] = []
        if statuses is not None:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(s.value for s in statuses)
        if channel_id is not None:
            where.append("channel_id = ?")
            args.append(channel_id)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = f"SELECT {_INTENT_COLUMNS} FROM chain_intents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_intent(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def get_cursor(self, name: str) -> Cursor | None:
        self._check_open()
        row = self._conn.execute(
            "SELECT block_number, block_hash FROM chain_cursor WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else Cursor(name, int(row[0]), bytes(row[1]))

    # operations (inside a transaction) ----------------------------------------------------------
    def _apply_op(self, op: Op) -> int | None:
        if isinstance(op, PersistState):
            self._append(op.channel_id, op.update, op.book)
        elif isinstance(op, AppendState):
            self._append(op.channel_id, op.update, op.book)
        elif isinstance(op, PersistSignature):
            self._record_signature(op.channel_id, op.version, op.state_hash)
        elif isinstance(op, PhaseChanged):
            self._set_phase(op.channel_id, op.phase)
        elif isinstance(op, AddChannel):
            self._add_channel(op)
        elif isinstance(op, AddIntent):
            return self._add_intent(op)
        elif isinstance(op, UpdateIntent):
            self._update_intent(op)
        elif isinstance(op, DeleteIntent):
            cur = self._conn.execute("DELETE FROM chain_intents WHERE id = ?", (op.intent_id,))
            if cur.rowcount != 1:
                raise StoreError(f"no chain intent with id {op.intent_id}")
        elif isinstance(op, SetCursor):
            self._set_cursor(op)
        else:
            raise StoreError(f"unknown store operation {type(op).__name__}")
        return None

    def _add_channel(self, op: AddChannel) -> None:
        params = op.params
        if params.chain_id != self.chain_id or params.adjudicator != self.adjudicator:
            raise ForeignStore(
                f"channel 0x{params.channel_id.hex()} is for chain {params.chain_id} / "
                f"{_addr(params.adjudicator)}; this store is bound to chain {self.chain_id} / "
                f"{_addr(self.adjudicator)}"
            )
        if op.our_index not in (0, 1) or params.participants[op.our_index] != self.identity:
            raise ForeignStore(
                f"channel 0x{params.channel_id.hex()} does not name this store's identity "
                f"{_addr(self.identity)} as participant {op.our_index}"
            )
        for amount in op.deposits:
            if type(amount) is not int or amount < 0:
                raise StoreError("deposits must be non-negative ints")
        blob = wire.encode_params(params)
        existing = self._conn.execute(
            "SELECT params, our_index, deposit0, deposit1 FROM channels WHERE channel_id = ?",
            (params.channel_id,),
        ).fetchone()
        if existing is not None:
            same = (bytes(existing[0]), existing[1], existing[2], existing[3])
            if same == (blob, op.our_index, str(op.deposits[0]), str(op.deposits[1])):
                return  # the same channel again (a retried call)
            raise StoreError(f"channel 0x{params.channel_id.hex()} is already stored differently")
        host, port = op.endpoint if op.endpoint is not None else (None, None)
        now = self._now()
        self._conn.execute(
            "INSERT INTO channels (channel_id, params, our_index, deposit0, deposit1, phase, "
            "endpoint_host, endpoint_port, head_version, head_link, high_water, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 0, ?, ?)",
            (
                params.channel_id,
                blob,
                op.our_index,
                str(op.deposits[0]),
                str(op.deposits[1]),
                op.phase.value,
                host,
                port,
                ZERO_LINK,
                now,
                now,
            ),
        )

    def _record_signature(self, channel_id: ChannelId, version: int, state_hash: bytes) -> None:
        if type(state_hash) is not bytes or len(state_hash) != 32:
            raise StoreError("a state hash is 32 bytes")
        _check_version(version)
        self._live(channel_id)  # the channel must exist
        self._claim_version(channel_id, version, state_hash)

    def _claim_version(self, channel_id: ChannelId, version: int, state_hash: bytes) -> None:
        row = self._conn.execute(
            "SELECT state_hash FROM signed_versions WHERE channel_id = ? AND version = ?",
            (channel_id, version),
        ).fetchone()
        if row is not None:
            if bytes(row[0]) == state_hash:
                return
            raise Equivocation(
                f"channel 0x{channel_id.hex()[:16]}: version {version} was already signed as "
                f"0x{bytes(row[0]).hex()}, refusing 0x{state_hash.hex()}"
            )
        self._conn.execute(
            "INSERT INTO signed_versions (channel_id, version, state_hash, signed_at) "
            "VALUES (?, ?, ?, ?)",
            (channel_id, version, state_hash, self._now()),
        )

    def _append(
        self, channel_id: ChannelId, update: SignedUpdate, book: BookSnapshot | None
    ) -> None:
        signed = update.signed
        state = signed.state
        if state.channel_id != channel_id:
            raise StoreError("the update belongs to another channel")
        version = int(state.version)
        _check_version(version)
        if not signed.fully_signed:
            raise StoreError(f"version {version} is not fully signed; only such states are stored")
        live = self._live(channel_id)
        state_hash = eip712.state_struct_hash(state)
        if live.head_version is not None and version <= live.head_version:
            row = self._conn.execute(
                "SELECT state_hash FROM states WHERE channel_id = ? AND version = ?",
                (channel_id, version),
            ).fetchone()
            if row is not None and bytes(row[0]) == state_hash:
                return  # already stored (a retried call)
            if row is not None:
                raise Equivocation(
                    f"channel 0x{channel_id.hex()[:16]}: another state of version {version} is "
                    "already stored"
                )
            raise StaleVersion(
                f"version {version} is older than the stored latest version {live.head_version}"
            )
        self._claim_version(channel_id, version, state_hash)
        blob = wire.encode_update(update)
        self._touched.add(channel_id)
        changes = self._change_book(live, update, book)
        if (live.book.root, len(live.book), live.book.locked) != (
            state.positions_root,
            state.position_count,
            state.locked,
        ):
            how = "the snapshot given" if book is not None else "the update's trades"
            raise StoreError(
                f"channel 0x{channel_id.hex()[:16]} v{version}: the book from {how} does not "
                "match the state's positions commitment (for a state adopted from the peer, "
                "pass its book snapshot)"
            )
        conn = self._conn
        if changes is None:
            conn.execute("DELETE FROM book_positions WHERE channel_id = ?", (channel_id,))
            assert book is not None
            rows = [(channel_id, s, _pid(p), _position_blob(s, p)) for s, p in book.slots]
            conn.executemany("INSERT INTO book_positions VALUES (?, ?, ?, ?)", rows)
        else:
            for slot, position in changes.items():
                if position is None:
                    conn.execute(
                        "DELETE FROM book_positions WHERE channel_id = ? AND slot = ?",
                        (channel_id, slot),
                    )
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO book_positions VALUES (?, ?, ?, ?)",
                        (channel_id, slot, _pid(position), _position_blob(slot, position)),
                    )
        link = chain_link(live.head_link, state_hash, version)
        now = self._now()
        conn.execute(
            "INSERT INTO states (channel_id, version, state_hash, update_blob, blob_hash, "
            "prev_link, link, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (channel_id, version, state_hash, blob, keccak256(blob), live.head_link, link, now),
        )
        conn.execute(
            "UPDATE channels SET head_version = ?, head_link = ?, high_water = ?, updated_at = ? "
            "WHERE channel_id = ?",
            (version, link, live.high_water, now, channel_id),
        )
        live.head_version = version
        live.head_link = link

    def _change_book(
        self, live: _Live, update: SignedUpdate, book: BookSnapshot | None
    ) -> dict[int, Position | None] | None:
        """Bring the mirror book to the state after ``update``; return the changed slots (None
        when the whole book was replaced by ``book``)."""
        if book is not None:
            try:
                live.book = PositionBook.from_snapshot(book)
            except ChannelError as exc:
                raise StoreError(f"the book snapshot is invalid: {exc}") from exc
            live.slot_of = {p.id: s for s, p in book.slots}
            live.high_water = book.high_water
            return None
        changes: dict[int, Position | None] = {}
        try:
            for trade in update.trades:
                if isinstance(trade, OpenOption):
                    slot = live.book.add(trade.position)
                    live.slot_of[trade.position.id] = slot
                    live.high_water = max(live.high_water, slot + 1)
                    changes[slot] = trade.position
                elif isinstance(trade, Unwind | Settle):
                    slot = live.slot_of.pop(trade.position_id)
                    live.book.remove(trade.position_id)
                    changes[slot] = None
        except (ChannelError, KeyError) as exc:
            raise StoreError(
                f"the update's trades do not apply to the stored book ({exc!r}); for a state "
                "adopted from the peer, pass its book snapshot"
            ) from exc
        return changes

    def _set_phase(self, channel_id: ChannelId, phase: Phase) -> None:
        if not isinstance(phase, Phase):
            raise StoreError("phase must be a Phase")
        cur = self._conn.execute(
            "UPDATE channels SET phase = ?, updated_at = ? WHERE channel_id = ?",
            (phase.value, self._now(), channel_id),
        )
        if cur.rowcount != 1:
            raise UnknownChannel(f"no stored channel 0x{channel_id.hex()}")

    def _add_intent(self, op: AddIntent) -> int:
        if not isinstance(op.status, IntentStatus):
            raise StoreError("status must be an IntentStatus")
        if op.channel_id is not None:
            self._live(op.channel_id)
        now = self._now()
        cur = self._conn.execute(
            "INSERT INTO chain_intents (channel_id, kind, payload, raw_tx, tx_hash, nonce, "
            "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                op.channel_id,
                op.kind,
                op.payload,
                op.raw_tx,
                op.tx_hash,
                op.nonce,
                op.status.value,
                now,
                now,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _update_intent(self, op: UpdateIntent) -> None:
        sets: list[str] = []
        args: list[object] = []
        if op.status is not None:
            if not isinstance(op.status, IntentStatus):
                raise StoreError("status must be an IntentStatus")
            sets.append("status = ?")
            args.append(op.status.value)
        for name in ("raw_tx", "tx_hash", "nonce"):
            value = getattr(op, name)
            if value is not None:
                sets.append(f"{name} = ?")
                args.append(value)
        sets.append("updated_at = ?")
        args.append(self._now())
        cur = self._conn.execute(
            f"UPDATE chain_intents SET {', '.join(sets)} WHERE id = ?", (*args, op.intent_id)
        )
        if cur.rowcount != 1:
            raise StoreError(f"no chain intent with id {op.intent_id}")

    def _set_cursor(self, op: SetCursor) -> None:
        if type(op.block_number) is not int or not 0 <= op.block_number <= _INT64_MAX:
            raise StoreError("block_number must be a non-negative int64")
        if type(op.block_hash) is not bytes:
            raise StoreError("block_hash must be bytes")
        self._conn.execute(
            "INSERT INTO chain_cursor (name, block_number, block_hash, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "block_number = excluded.block_number, block_hash = excluded.block_hash, "
            "updated_at = excluded.updated_at",
            (op.name, op.block_number, op.block_hash, self._now()),
        )

    # internals ---------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _now(self) -> int:
        return int(self._clock())

    def _forget(self, channel_ids: set[bytes]) -> None:
        """Drop cached channel data that a rollback made stale (reloaded on next use)."""
        for cid in channel_ids:
            self._live_cache.pop(cid, None)

    def _live(self, channel_id: ChannelId) -> _Live:
        live = self._live_cache.get(channel_id)
        if live is not None:
            return live
        row = self._conn.execute(
            "SELECT head_version, head_link, high_water FROM channels WHERE channel_id = ?",
            (channel_id,),
        ).fetchone()
        if row is None:
            raise UnknownChannel(f"no stored channel 0x{bytes(channel_id).hex()}")
        book, slot_of = self._book_from_rows(channel_id, int(row[2]))
        live = _Live(
            head_version=None if row[0] is None else int(row[0]),
            head_link=bytes(row[1]),
            high_water=int(row[2]),
            book=book,
            slot_of=slot_of,
        )
        self._live_cache[channel_id] = live
        return live

    def _book_from_rows(
        self, channel_id: ChannelId, high_water: int
    ) -> tuple[PositionBook, dict[int, int]]:
        slots: list[tuple[int, Position]] = []
        for slot, pid, blob in self._conn.execute(
            "SELECT slot, position_id, position FROM book_positions WHERE channel_id = ? "
            "ORDER BY slot",
            (channel_id,),
        ):
            snap = _decoded(f"the position in slot {slot}", wire.decode_book, blob)
            if len(snap.slots) != 1 or snap.slots[0][0] != slot:
                raise CorruptStore(f"channel 0x{channel_id.hex()[:16]}: slot {slot} is damaged")
            position = snap.slots[0][1]
            if _pid(position) != bytes(pid):
                raise CorruptStore(f"channel 0x{channel_id.hex()[:16]}: slot {slot} is damaged")
            slots.append((slot, position))
        try:
            book = PositionBook.from_snapshot(BookSnapshot(high_water, tuple(slots)))
        except ChannelError as exc:
            raise CorruptStore(
                f"channel 0x{channel_id.hex()[:16]}: the stored book is invalid: {exc}"
            ) from exc
        return book, {p.id: s for s, p in slots}

    def _latest_update(
        self, channel_id: ChannelId, params: Params, version: int, head_link: bytes
    ) -> SignedUpdate:
        where = f"channel 0x{channel_id.hex()[:16]}"
        row = self._conn.execute(
            "SELECT state_hash, update_blob, blob_hash, link FROM states "
            "WHERE channel_id = ? AND version = ?",
            (channel_id, version),
        ).fetchone()
        if row is None:
            raise CorruptStore(f"{where}: its latest state v{version} is missing")
        newest = self._conn.execute(
            "SELECT MAX(version) FROM states WHERE channel_id = ?", (channel_id,)
        ).fetchone()[0]
        if newest != version:
            raise CorruptStore(f"{where}: a state v{newest} exists beyond the head v{version}")
        state_hash, blob, blob_hash, link = (bytes(x) for x in row)
        if link != head_link or keccak256(blob) != blob_hash:
            raise CorruptStore(f"{where}: the latest state v{version} was altered")
        update = _decoded(f"{where} v{version}", wire.decode_update, blob)
        self._check_update(update, channel_id, version, state_hash, where)
        domain = eip712.Domain(params.chain_id, params.adjudicator)
        digest = eip712.state_digest(domain, update.signed.state)
        for who, sig in enumerate(update.signed.signatures):
            try:
                if sig is None:
                    raise BadSignature("missing")
                verify(digest, sig, params.participants[who])
            except BadSignature as exc:
                raise CorruptStore(f"{where} v{version}: signature {who}: {exc}") from exc
        return update

    @staticmethod
    def _check_update(
        update: SignedUpdate, channel_id: bytes, version: int, state_hash: bytes, where: str
    ) -> None:
        state = update.signed.state
        if state.channel_id != channel_id or state.version != version:
            raise CorruptStore(f"{where} v{version}: the stored update is for another state")
        if eip712.state_struct_hash(state) != state_hash:
            raise CorruptStore(f"{where} v{version}: the stored state does not match its hash")

    def _history_rows(
        self, channel_id: ChannelId, start: int, *, with_time: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``states`` in version order, read a page at a time (no open cursor held
        between pages, so writes may happen while a caller walks the history)."""
        self._check_open()
        columns = "version, state_hash, update_blob, blob_hash, prev_link, link"
        if with_time:
            columns += ", stored_at"
        after = start - 1
        while True:
            rows = self._conn.execute(
                f"SELECT {columns} FROM states WHERE channel_id = ? AND version > ? "
                "ORDER BY version LIMIT ?",
                (channel_id, after, _PAGE),
            ).fetchall()
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]


# Async wrapper -----------------------------------------------------------------------------------


class PersistTicket:
    """A batch of operations waiting for the combiner; :meth:`wait` returns once it is durable."""

    __slots__ = ("_done", "_error", "_results", "ops", "seq")

    def __init__(self, ops: Sequence[Op], seq: int) -> None:
        self.ops = tuple(ops)
        self.seq = seq
        self._done = trio.Event()
        self._results: Results | None = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _finish(self, outcome: Results | BaseException) -> None:
        if self._done.is_set():
            return
        if isinstance(outcome, BaseException):
            self._error = outcome
        else:
            self._results = outcome
        self._done.set()

    async def wait(self) -> Results:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._results is not None
        return self._results


class AsyncStore:
    """Runs a :class:`Store` in one worker thread at a time; combines concurrent writes.

    Build it with :func:`open_store`. Writes go through :meth:`persist` (or :meth:`submit`):
    every batch submitted while a commit is running joins the next transaction (each batch in its
    own savepoint), and its caller wakes up only after that transaction is durable. Batches are
    committed in the order they were submitted. A cancelled caller does not withdraw its batch: it
    may still become durable (which is the safe direction for write-before-send). Reads see what
    has been committed.
    """

    def __init__(self, store: Store, limiter: trio.CapacityLimiter, max_batch: int) -> None:
        self._store = store
        self._limiter = limiter
        self._max_batch = max_batch
        self._queue: list[PersistTicket] = []
        self._wakeup = trio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self._next_seq = 0
        #: Highest ticket sequence number known to be durable.
        self.durable_seq = -1

    @property
    def stats(self) -> StoreStats:
        return self._store.stats

    @property
    def previous_clean_shutdown(self) -> bool:
        return self._store.previous_clean_shutdown

    @property
    def identity(self) -> bytes:
        return self._store.identity

    # writing -----------------------------------------------------------------------------------
    def submit(self, ops: Sequence[Op]) -> PersistTicket:
        """Queue ``ops`` for the next transaction (synchronously: submission order is commit
        order) and return a ticket to wait on."""
        if self._failure is not None:
            raise StoreError(f"the store failed earlier: {self._failure}") from self._failure
        if self._closing:
            raise StoreError("the store is closing")
        ticket = PersistTicket(ops, self._next_seq)
        self._next_seq += 1
        self._queue.append(ticket)
        self._wakeup.set()
        return ticket

    async def persist(self, ops: Sequence[Op]) -> Results:
        """Make ``ops`` durable (all or nothing); returns once they are committed."""
        return await self.submit(ops).wait()

    async def add_channel(
        self,
        params: Params,
        our_index: int,
        deposits: tuple[int, int],
        phase: Phase,
        endpoint: tuple[str, int] | None = None,
    ) -> None:
        await self.persist([AddChannel(params, our_index, deposits, phase, endpoint)])

    async def record_signature(
        self, channel_id: ChannelId, version: int, state_hash: bytes
    ) -> None:
        await self.persist([PersistSignature(channel_id, Version(version), state_hash)])

    async def append_state(
        self, channel_id: ChannelId, update: SignedUpdate, book_changes: BookSnapshot | None = None
    ) -> None:
        await self.persist([AppendState(channel_id, update, book_changes)])

    async def set_phase(self, channel_id: ChannelId, phase: Phase) -> None:
        await self.persist([PhaseChanged(channel_id, phase)])

    async def add_intent(
        self,
        kind: str,
        payload: bytes,
        channel_id: ChannelId | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
        status: IntentStatus = IntentStatus.PENDING,
    ) -> int:
        op = AddIntent(kind, payload, channel_id, raw_tx, tx_hash, nonce, status)
        result = (await self.persist([op]))[0]
        assert result is not None
        return result

    async def update_intent(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None:
        await self.persist([UpdateIntent(intent_id, status, raw_tx, tx_hash, nonce)])

    async def delete_intent(self, intent_id: int) -> None:
        await self.persist([DeleteIntent(intent_id)])

    async def set_cursor(self, name: str, block_number: int, block_hash: bytes) -> None:
        await self.persist([SetCursor(name, block_number, block_hash)])

    # reading -----------------------------------------------------------------------------------
    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` in the store's thread (for reads; writes go through persist)."""
        return await trio.to_thread.run_sync(fn, self._store, limiter=self._limiter)

    async def load_channels(self) -> list[StoredChannel]:
        return await self.run(Store.load_channels)

    async def load_channel(self, channel_id: ChannelId) -> StoredChannel:
        return await self.run(lambda s: s.load_channel(channel_id))

    async def history(self, channel_id: ChannelId, start: int = 0) -> list[SignedUpdate]:
        return await self.run(lambda s: list(s.history(channel_id, start)))

    async def verify_history(self, channel_id: ChannelId) -> int:
        return await self.run(lambda s: s.verify_history(channel_id))

    async def export_audit(self, channel_id: ChannelId) -> list[dict[str, Any]]:
        return await self.run(lambda s: s.export_audit(channel_id))

    async def highest_signed(self, channel_id: ChannelId) -> int | None:
        return await self.run(lambda s: s.highest_signed(channel_id))

    async def get_intent(self, intent_id: int) -> Intent:
        return await self.run(lambda s: s.get_intent(intent_id))

    async def intents(
        self,
        statuses: Sequence[IntentStatus] | None = None,
        channel_id: ChannelId | None = None,
        kind: str | None = None,
    ) -> list[Intent]:
        return await self.run(lambda s: s.intents(statuses, channel_id, kind))

    async def get_cursor(self, name: str) -> Cursor | None:
        return await self.run(lambda s: s.get_cursor(name))

    # the combiner ------------------------------------------------------------------------------
    async def _combine(self) -> None:
        try:
            while True:
                while not self._queue:
                    if self._closing:
                        return
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                batch = self._queue[: self._max_batch]
                del self._queue[: len(batch)]
                # A commit in progress is finished and reported even if we are cancelled.
                with trio.CancelScope(shield=True):
                    try:
                        outcomes = await trio.to_thread.run_sync(
                            self._store.apply_groups,
                            [t.ops for t in batch],
                            limiter=self._limiter,
                        )
                    except Exception as exc:
                        self._failure = exc
                        for ticket in batch:
                            error = StoreError(f"the store could not commit: {exc}")
                            error.__cause__ = exc
                            ticket._finish(error)
                        return
                for ticket, outcome in zip(batch, outcomes, strict=True):
                    ticket._finish(outcome)
                self.durable_seq = batch[-1].seq
                await trio.lowlevel.checkpoint()
        finally:
            self._closing = True
            for ticket in self._queue:
                ticket._finish(StoreError("the store closed before this batch was committed"))
            self._queue.clear()

    def _begin_close(self) -> None:
        self._closing = True
        self._wakeup.set()


@asynccontextmanager
async def open_store(
    path: str | os.PathLike[str],
    identity: bytes,
    chain_id: int,
    adjudicator: bytes,
    synchronous: str = "FULL",
    *,
    max_batch: int = 1000,
) -> AsyncIterator[AsyncStore]:
    """``async with open_store(...) as store:`` opens the store, runs its write combiner for the
    duration of the block, then commits what is queued (on a normal exit) and closes cleanly."""
    limiter = trio.CapacityLimiter(1)
    store = await trio.to_thread.run_sync(
        partial(Store.open, path, identity, chain_id, adjudicator, synchronous), limiter=limiter
    )
    astore = AsyncStore(store, limiter, max_batch)
    raised: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(astore._combine)
            try:
                yield astore
            except BaseException as exc:
                raised = exc
                raise
            finally:
                astore._begin_close()
    except BaseExceptionGroup as group:
        # The combiner reports its failures to the callers and never raises, so a group holds
        # the block's own exception: give it back as it was raised.
        if raised is not None and group.exceptions == (raised,):
            raise raised from None
        raise
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close, limiter=limiter)


# Helpers ---------------------------------------------------------------------------------------


def trade_summary(trade: Trade) -> dict[str, Any]:
    """A JSON-friendly description of a trade (amounts as decimal strings)."""
    if isinstance(trade, Pay):
        return {"type": "Pay", "payer": trade.payer, "amount": str(trade.amount)}
    if isinstance(trade, OpenOption):
        p = trade.position
        return {
            "type": "OpenOption",
            "position_id": p.id,
            "underlying": symbol_text(p.underlying),
            "kind": p.kind.name.lower(),
            "strike": str(p.strike),
            "expiry": p.expiry,
            "quantity": str(p.quantity),
            "writer": p.writer,
            "collateral": str(p.collateral),
            "premium": str(trade.premium),
        }
    if isinstance(trade, Unwind):
        return {
            "type": "Unwind",
            "position_id": trade.position_id,
            "holder_share": str(trade.holder_share),
        }
    if isinstance(trade, Settle):
        return {
            "type": "Settle",
            "position_id": trade.position_id,
            "price": str(trade.attestation.price),
            "expiry": trade.attestation.expiry,
        }
    if isinstance(trade, CreditDeposit):
        return {
            "type": "CreditDeposit",
            "participant": trade.participant,
            "amount": str(trade.amount),
        }
    if isinstance(trade, DebitWithdrawal):
        return {
            "type": "DebitWithdrawal",
            "participant": trade.participant,
            "amount": str(trade.amount),
            "recipient": to_checksum(trade.recipient),
        }
    if isinstance(trade, Finalize):
        return {"type": "Finalize"}
    return {"type": type(trade).__name__}  # pragma: no cover - every trade type is listed


_INTENT_COLUMNS = (
    "id, channel_id, kind, payload, raw_tx, tx_hash, nonce, status, created_at, updated_at"
)


def _intent(row: tuple[Any, ...]) -> Intent:
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


def _create(
    path: Path,
    identity: bytes,
    chain_id: int,
    adjudicator: bytes,
    clock: Callable[[], float],
) -> None:
    """Build a new store under a temporary name, then rename it into place: the store's path
    either does not exist or holds a complete store (an empty file there is damage, not new)."""
    tmp = path.with_name(path.name + ".creating")
    for leftover in (
        tmp,
        Path(str(tmp) + "-wal"),
        Path(str(tmp) + "-shm"),
        Path(str(tmp) + "-journal"),
    ):
        leftover.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot create {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("identity", identity),
                ("chain_id", str(chain_id)),
                ("adjudicator", adjudicator),
                ("created_at", str(int(clock()))),
                ("last_clean_shutdown", "1"),
            ],
        )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot create {path}: {exc}") from exc
    conn.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not head:
        raise CorruptStore(
            f"{path} is empty: a store is created complete, so the file was truncated "
            "(restore it from a backup; remove it only to start a new store from nothing)"
        )
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise CorruptStore(f"{path} is not a SQLite database (bad header)")


def _translate(exc: sqlite3.Error, what: str) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in str(exc):
        return StoreInUse(f"{what}: it is in use by another process or connection ({exc})")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return CorruptStore(f"{what}: the file is damaged ({exc})")
    return StoreError(f"{what}: {exc}")


def _decoded(what: str, decode: Callable[[bytes], T], blob: bytes) -> T:
    try:
        return decode(bytes(blob))
    except Exception as exc:
        raise CorruptStore(f"cannot decode {what}: {exc}") from exc


def _check_version(version: int) -> None:
    if type(version) is not int or not 0 <= version <= _INT64_MAX:
        raise StoreError(f"version {version!r} cannot be stored (must be an int in [0, 2**63))")


def _pid(position: Position) -> bytes:
    return int(position.id).to_bytes(8, "big")


def _position_blob(slot: int, position: Position) -> bytes:
    return wire.encode_book(BookSnapshot(slot + 1, ((slot, position),)))


def _addr(raw: object) -> str:
    if isinstance(raw, bytes) and len(raw) == 20:
        return to_checksum(raw)
    return repr(raw)


def _hex(raw: object) -> str:
    return "0x" + bytes(raw).hex() if isinstance(raw, bytes | bytearray | memoryview) else str(raw)


__all__ = [
    "APPLICATION_ID",
    "OPEN_INTENTS",
    "SCHEMA_VERSION",
    "AddChannel",
    "AddIntent",
    "AppendState",
    "AsyncStore",
    "Cursor",
    "DeleteIntent",
    "Intent",
    "IntentStatus",
    "Op",
    "PersistTicket",
    "Results",
    "SetCursor",
    "Store",
    "StoreStats",
    "StoredChannel",
    "UpdateIntent",
    "chain_link",
    "open_store",
    "trade_summary",
]
