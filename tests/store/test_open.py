"""Opening a store: durability settings, binding to one identity and chain, refusing bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from channels.store import APPLICATION_ID, SCHEMA_VERSION, Store
from channels.store.errors import CorruptStore, ForeignStore, SchemaTooNew, StoreError, StoreInUse
from tests.store._sim import ADJUDICATOR, ALICE, BOB, CHAIN_ID, OTHER_ADJUDICATOR, Sim
from tests.store.conftest import store_all


def open_alice(path: Path, **kw: object) -> Store:
    return Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR, **kw)  # type: ignore[arg-type]


def test_pragmas_are_wal_and_full(db_path: Path) -> None:
    """THREATS S3: every commit is fsynced (FULL) on a WAL journal; foreign keys are enforced."""
    with open_alice(db_path) as store:
        settings = store.settings()
        assert settings["journal_mode"] == "wal"
        assert settings["synchronous"] == 2  # FULL
        assert settings["foreign_keys"] == 1
        assert settings["locking_mode"] == "exclusive"
        assert settings["user_version"] == SCHEMA_VERSION
        assert settings["application_id"] == APPLICATION_ID
    # The journal mode is a property of the file, seen by any connection.
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_synchronous_normal_on_request(db_path: Path) -> None:
    with open_alice(db_path, synchronous="normal") as store:
        assert store.settings()["synchronous"] == 1
    with pytest.raises(StoreError, match="synchronous"):
        open_alice(db_path, synchronous="OFF")


def test_new_store_is_created_whole(db_path: Path) -> None:
    with open_alice(db_path) as store:
        assert store.created
        assert store.previous_clean_shutdown
    assert not db_path.with_name(db_path.name + ".creating").exists()
    with open_alice(db_path) as store:
        assert not store.created


def test_clean_shutdown_flag(db_path: Path) -> None:
    """THREATS 4.4 step 5: after a crash the node knows it may be behind."""
    open_alice(db_path).close()
    store = open_alice(db_path)
    assert store.previous_clean_shutdown  # closed cleanly last time
    store.close(clean=False)  # what a crash leaves behind: the flag cleared at open stays cleared
    store = open_alice(db_path)
    assert not store.previous_clean_shutdown
    store.close()
    with open_alice(db_path) as store:
        assert store.previous_clean_shutdown


def test_flag_cleared_durably_at_open(db_path: Path) -> None:
    store = open_alice(db_path)
    store.close(clean=False)  # the process dies without closing: nothing more is written
    with open_alice(db_path) as again:
        assert not again.previous_clean_shutdown


def test_second_open_is_refused(db_path: Path) -> None:
    with open_alice(db_path):
        with pytest.raises(StoreInUse, match="in use"):
            open_alice(db_path)


def test_another_identity(db_path: Path) -> None:
    open_alice(db_path).close()
    with pytest.raises(ForeignStore, match="belongs to 0x") as info:
        Store.open(db_path, BOB.address, CHAIN_ID, ADJUDICATOR)
    assert "not to this node" in str(info.value)


def test_another_chain(db_path: Path) -> None:
    open_alice(db_path).close()
    with pytest.raises(ForeignStore, match="chain 31337, the node is on chain 1"):
        Store.open(db_path, ALICE.address, 1, ADJUDICATOR)


def test_another_adjudicator(db_path: Path) -> None:
    open_alice(db_path).close()
    with pytest.raises(ForeignStore, match="adjudicator"):
        Store.open(db_path, ALICE.address, CHAIN_ID, OTHER_ADJUDICATOR)


def test_another_programs_database(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ForeignStore, match="not an option-channels store"):
        open_alice(db_path)


def test_future_schema(db_path: Path) -> None:
    open_alice(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}"):
        open_alice(db_path)


def test_garbage_file(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database at all\n" * 1000)
    with pytest.raises(CorruptStore, match="not a SQLite database"):
        open_alice(db_path)
    assert db_path.read_bytes().startswith(b"this is not")  # left as it was


def test_garbage_after_a_valid_header(db_path: Path) -> None:
    open_alice(db_path).close()
    data = bytearray(db_path.read_bytes())
    data[100:] = bytes(range(256)) * ((len(data) - 100) // 256) + bytes((len(data) - 100) % 256)
    db_path.write_bytes(bytes(data))
    with pytest.raises(CorruptStore):
        open_alice(db_path)


def test_empty_file(db_path: Path) -> None:
    db_path.write_bytes(b"")
    with pytest.raises(CorruptStore, match="empty"):
        open_alice(db_path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 30 / 4096])
def test_truncated_file(db_path: Path, sim: Sim, keep: float) -> None:
    with open_alice(db_path) as store:
        store_all(store, sim)
    size = db_path.stat().st_size
    assert size > 8 * 4096
    with db_path.open("r+b") as f:
        f.truncate(int(size * keep) + 123)  # mid-page
    with pytest.raises(CorruptStore):
        open_alice(db_path)


def test_missing_meta_is_corrupt(db_path: Path) -> None:
    open_alice(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM meta WHERE key = 'identity'")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptStore, match="identity"):
        open_alice(db_path)


def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = open_alice(db_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.load_channels()
