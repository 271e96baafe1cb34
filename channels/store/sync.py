"""The synchronous store (:class:`Store`)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from channels.core import wire
from channels.core.errors import UnknownChannel
from channels.core.model import ChannelId, Params, SignedState, SignedUpdate, Version
from channels.core.options import opening_state
from channels.core.positions import BookSnapshot
from channels.core.protocol import PersistSignature, Phase, PhaseChanged
from channels.store.errors import CorruptStore, ForeignStore, SchemaTooNew, StoreError
from channels.store.history import HistoryReads
from channels.store.ops import (
    INTENT_COLUMNS,
    AddChannel,
    AddIntent,
    AppendState,
    Cursor,
    DeleteIntent,
    Intent,
    IntentStatus,
    Op,
    Results,
    SetCursor,
    StoredChannel,
    UpdateIntent,
    intent_from_row,
)
from channels.store.quotes import QuoteRecords
from channels.store.rows import address_text, decoded, lease_key
from channels.store.schema import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SYNCHRONOUS_MODES,
    check_header,
    create_store_file,
    translate_sqlite_error,
)
from channels.store.transact import Transactions

#: sqlite3 errors caused by an operation's values (a constraint, an unbindable value); any other
#: sqlite3 error is the database's and fails the whole transaction.
_BAD_DATA = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
)


# The store -------------------------------------------------------------------------------------


class Store(HistoryReads, Transactions, QuoteRecords):
    """The synchronous store. Use it from one thread at a time (:class:`AsyncStore` does)."""

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
            create_store_file(target, identity, chain_id, adjudicator, clock)
            created = True
        else:
            created = False
        check_header(target)
        try:
            conn = sqlite3.connect(
                str(target), isolation_level=None, check_same_thread=False, timeout=0
            )
        except sqlite3.Error as exc:  # pragma: no cover - depends on the file system
            raise StoreError(f"cannot open {target}: {exc}") from exc
        try:
            store = cls(conn, target, identity, chain_id, adjudicator, clock, sync)
        except sqlite3.Error as exc:
            conn.close()
            raise translate_sqlite_error(exc, f"cannot open the store {target}") from exc
        except BaseException:
            conn.close()
            raise
        store.created = created
        return store

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        identity: bytes,
        chain_id: int,
        adjudicator: bytes,
        clock: Callable[[], float],
        synchronous: str,
    ) -> None:
        """Take over ``conn`` (use :meth:`open`, which checks the file first): lock it, check
        its schema and owner, and mark the run as not yet shut down cleanly."""
        super().__init__(conn, path, identity, chain_id, adjudicator, clock)
        self._start(synchronous)

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
                f"{self.path} belongs to {address_text(meta['identity'])}, "
                f"not to this node ({address_text(self.identity)})"
            )
        if meta["chain_id"] != str(self.chain_id):
            raise ForeignStore(
                f"{self.path} is for chain {meta['chain_id']!s}, the node is on chain "
                f"{self.chain_id}"
            )
        if meta["adjudicator"] != self.adjudicator:
            raise ForeignStore(
                f"{self.path} is for adjudicator {address_text(meta['adjudicator'])}, "
                f"the node uses {address_text(self.adjudicator)}"
            )
        self.previous_clean_shutdown = meta["last_clean_shutdown"] == "1"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'last_clean_shutdown'")
        self._create_premiums()
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
        # One batch alone needs no savepoint: if it fails, the transaction is rolled back whole
        # (two statements fewer per commit on the sequential path).
        grouped = len(groups) > 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            for ops in groups:
                self._touched = set()
                if grouped:
                    conn.execute("SAVEPOINT grp")
                try:
                    results = [self._apply_op(op) for op in ops]
                except _BAD_DATA as exc:  # the batch's own data, not the database, is at fault
                    self._undo_group(grouped)
                    error = StoreError(f"the store refused the operation: {exc}")
                    error.__cause__ = exc
                    outcomes.append(error)
                except sqlite3.Error:
                    raise  # I/O error, disk full, corruption: the whole transaction fails
                except Exception as exc:
                    self._undo_group(grouped)
                    outcomes.append(exc)
                else:
                    if grouped:
                        conn.execute("RELEASE grp")
                    outcomes.append(results)
                touched |= self._touched
            if conn.in_transaction:  # not when the only batch failed and was rolled back
                conn.execute("COMMIT")
        except BaseException as exc:
            self._forget(touched | self._touched)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:  # pragma: no cover - the transaction is gone already
                    pass
            if isinstance(exc, sqlite3.Error):
                raise translate_sqlite_error(exc, "the store could not commit") from exc
            raise
        self.stats.transactions += 1
        self.stats.groups += len(groups)
        self.stats.ops += sum(len(ops) for ops in groups)
        return outcomes

    def _undo_group(self, grouped: bool) -> None:
        """Undo the batch that just failed: its savepoint, or the whole transaction if it is
        the only batch in it."""
        if grouped:
            self._conn.execute("ROLLBACK TO grp")
            self._conn.execute("RELEASE grp")
        else:
            self._conn.execute("ROLLBACK")
        self._forget(self._touched)

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
        params = decoded("channel parameters", wire.decode_params, pblob)
        if params.channel_id != channel_id:
            raise CorruptStore(f"channel 0x{channel_id.hex()}: its parameters hash to another id")
        try:
            phase_value = Phase(phase)
            deposits = (int(d0), int(d1))
        except ValueError as exc:
            raise CorruptStore(f"channel 0x{channel_id.hex()}: bad phase or deposits") from exc
        signed_max = self.highest_signed(channel_id)
        highest = -1 if signed_max is None else signed_max
        if head_version is None:
            if self._conn.execute(
                "SELECT 1 FROM states WHERE channel_id = ? LIMIT 1", (channel_id,)
            ).fetchone():
                raise CorruptStore(f"channel 0x{channel_id.hex()}: states exist but no head")
            latest = SignedUpdate(SignedState(opening_state(params), (None, None)), ())
            recent: tuple[SignedUpdate, ...] = ()
        else:
            latest = self._latest_update(channel_id, params, head_version, bytes(head_link))
            highest = max(highest, head_version)
            recent = (*self._updates_before(channel_id, head_version), latest)
        book = self._book_from_rows(channel_id, high_water)
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
            recent=recent,
        )

    def highest_signed(self, channel_id: ChannelId) -> int | None:
        """The highest version we may have signed: the highest signature record or the version
        lease (channels/store/lease.py), whichever is higher; None if neither exists."""
        self._check_open()
        value = self._conn.execute(
            "SELECT MAX(version) FROM signed_versions WHERE channel_id = ?", (channel_id,)
        ).fetchone()[0]
        lease = self.lease(channel_id)
        if value is None:
            return lease
        return int(value) if lease is None else max(int(value), lease)

    def lease(self, channel_id: ChannelId) -> int | None:
        """The channel's version lease, if one was recorded."""
        self._check_open()
        row = self._conn.execute(
            "SELECT value FROM meta WHERE key = ?", (lease_key(channel_id),)
        ).fetchone()
        return None if row is None else int(row[0])

    def leases(self) -> dict[ChannelId, int]:
        """Every channel's durable lease, or highest signature record if it has no lease."""
        return {
            cid: value
            for cid in self.channel_ids()
            if (value := self.highest_signed(cid)) is not None
        }

    def signed_versions(self, channel_id: ChannelId) -> list[tuple[int, bytes]]:
        """Every (version, state hash) we ever signed on the channel, oldest first."""
        self._check_open()
        rows = self._conn.execute(
            "SELECT version, state_hash FROM signed_versions WHERE channel_id = ? ORDER BY version",
            (channel_id,),
        ).fetchall()
        return [(int(v), bytes(h)) for v, h in rows]

    def get_intent(self, intent_id: int) -> Intent:
        self._check_open()
        row = self._conn.execute(
            f"SELECT {INTENT_COLUMNS} FROM chain_intents WHERE id = ?", (intent_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no chain intent with id {intent_id}")
        return intent_from_row(row)

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
        sql = f"SELECT {INTENT_COLUMNS} FROM chain_intents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [intent_from_row(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def get_cursor(self, name: str) -> Cursor | None:
        self._check_open()
        row = self._conn.execute(
            "SELECT block_number, block_hash FROM chain_cursor WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else Cursor(name, int(row[0]), bytes(row[1]))
