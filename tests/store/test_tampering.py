"""Tampering with the store's file behind its back: the append-only history, rewritten or
removed rows, forged signatures and the hash-chain links are all caught."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from channels.core import eip712
from channels.core.model import SignedState
from channels.core.protocol import Phase
from channels.store import Store, chain_link
from channels.store.errors import CorruptStore
from tests.store._sim import DEPOSIT, Sim
from tests.store.conftest import reopen, sql_on_file, store_all


def tamper(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS states_append_only_update")
    conn.execute("DROP TRIGGER IF EXISTS states_append_only_delete")
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def test_history_is_append_only(store: Store, sim: Sim, db_path: Path) -> None:
    store_all(store, sim)
    store.close()  # another connection, as any other program on the machine would use
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        sql_on_file(db_path, "DELETE FROM states WHERE version = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        sql_on_file(db_path, "UPDATE states SET update_blob = x'00' WHERE version = 3")


def test_tampered_blob_is_detected(db_path: Path, sim: Sim) -> None:
    with reopen(db_path) as store:
        store_all(store, sim)
    other = Sim()
    other.open()
    fake = other.update(other.pay(999))  # a validly signed v2 of the same channel, other content
    from channels.core import wire

    tamper(db_path, "UPDATE states SET update_blob = ? WHERE version = 2", wire.encode_update(fake))
    with reopen(db_path) as store, pytest.raises(CorruptStore, match="v2: the stored update"):
        store.verify_history(sim.channel_id)


def test_tampered_blob_and_its_hash(db_path: Path, sim: Sim) -> None:
    """Rewriting the blob hash too does not help: the state no longer matches its link."""
    with reopen(db_path) as store:
        store_all(store, sim)
    other = Sim()
    other.open()
    fake = other.update(other.pay(999))
    from channels.core import wire
    from channels.core.hashing import keccak256

    blob = wire.encode_update(fake)
    tamper(
        db_path,
        "UPDATE states SET update_blob = ?, blob_hash = ? WHERE version = 2",
        blob,
        keccak256(blob),
    )
    with reopen(db_path) as store, pytest.raises(CorruptStore, match="does not match its hash"):
        store.verify_history(sim.channel_id)


def test_removed_middle_row(db_path: Path, sim: Sim) -> None:
    with reopen(db_path) as store:
        store_all(store, sim)
    tamper(db_path, "DELETE FROM states WHERE version = 10")
    with reopen(db_path) as store, pytest.raises(CorruptStore, match="v11: the history chain"):
        store.verify_history(sim.channel_id)


def test_truncated_history(db_path: Path, sim: Sim) -> None:
    """Losing the newest rows leaves a chain that verifies on its own: the head catches it."""
    with reopen(db_path) as store:
        store_all(store, sim)
    tamper(db_path, "DELETE FROM states WHERE version >= 40")
    with reopen(db_path) as store:
        with pytest.raises(CorruptStore, match="ends at v39"):
            store.verify_history(sim.channel_id)
        with pytest.raises(CorruptStore, match="latest state v41 is missing"):
            store.load_channels()


def test_forged_signature(db_path: Path, sim: Sim) -> None:
    """A re-signed state with a recomputed hash, link and blob hash still needs both keys."""
    with reopen(db_path) as store:
        store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        store.append_state(sim.channel_id, sim.updates[0])
    from channels.core import wire
    from channels.core.hashing import keccak256

    state = sim.updates[0].signed.state
    sigs = sim.updates[0].signed.signatures
    forged = type(sim.latest)(SignedState(state, (sigs[0], sigs[0])), ())
    blob = wire.encode_update(forged)
    tamper(db_path, "UPDATE states SET update_blob = ?, blob_hash = ?", blob, keccak256(blob))
    with reopen(db_path) as store:
        with pytest.raises(CorruptStore, match="signature 1"):
            store.verify_history(sim.channel_id)
        with pytest.raises(CorruptStore, match="signature 1"):
            store.load_channels()


def test_links(store: Store, sim: Sim, db_path: Path) -> None:
    store_all(store, sim)
    audit = store.export_audit(sim.channel_id)
    prev = bytes(32)
    for entry, update in zip(audit, sim.updates, strict=True):
        state = update.signed.state
        assert entry["version"] == state.version
        assert entry["prev_link"] == "0x" + prev.hex()
        link = chain_link(prev, eip712.state_struct_hash(state), state.version)
        assert entry["link"] == "0x" + link.hex()
        prev = link
    store.close()
    assert sql_on_file(db_path, "SELECT head_link FROM channels") == [(prev,)]
