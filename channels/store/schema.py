"""The store's file: schema version and DDL, creating a new store, and the checks made on a
file before it is opened."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

from channels.core.model import ZERO_HASH
from channels.store.errors import CorruptStore, StoreError, StoreInUse

SCHEMA_VERSION: Final = 1
#: ``PRAGMA application_id`` of a store ("OCHN").
APPLICATION_ID: Final = 0x4F43484E
ZERO_LINK: Final = ZERO_HASH
SYNCHRONOUS_MODES: Final = ("FULL", "EXTRA", "NORMAL")

_SQLITE_MAGIC = b"SQLite format 3\x00"


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


def create_store_file(
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


def check_header(path: Path) -> None:
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


def translate_sqlite_error(exc: sqlite3.Error, what: str) -> StoreError | CorruptStore:
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in str(exc):
        return StoreInUse(f"{what}: it is in use by another process or connection ({exc})")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return CorruptStore(f"{what}: the file is damaged ({exc})")
    return StoreError(f"{what}: {exc}")
