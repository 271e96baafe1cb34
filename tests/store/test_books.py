"""The position books the store keeps with each update: slots as in PositionBook, the changes
the machine hands over, snapshots of adopted states, and a book that must match its root."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.core.model import SignedUpdate
from channels.core.positions import BookChanges, PositionBook
from channels.core.protocol import PersistState, Phase
from channels.store import Store
from channels.store.errors import CorruptStore, StoreError
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID, DEPOSIT, Sim
from tests.store.conftest import reopen, store_all


# books ------------------------------------------------------------------------------------------
def test_book_rows_follow_each_update(db_path: Path) -> None:
    """Slots freed by an unwind are reused by the next open, exactly as in PositionBook."""
    sim = Sim()
    sim.open()
    with reopen(db_path) as store:
        store_all(store, sim)
        for _ in range(6):
            store.append_state(sim.channel_id, sim.update(sim.option()))
        store.append_state(sim.channel_id, sim.update(sim.unwind(2), sim.unwind(4)))
        store.append_state(sim.channel_id, sim.update(sim.option(writer=1)))  # takes slot 1
        store.append_state(sim.channel_id, sim.update(sim.unwind(1), sim.option(), sim.pay(3)))
        slots = store.load_channel(sim.channel_id).book.snapshot().slots
        assert [slot for slot, _ in slots] == [0, 1, 2, 4, 5]
    with reopen(db_path) as store:
        assert store.load_channel(sim.channel_id).book.snapshot() == sim.book.snapshot()


def test_changes_from_the_machine_are_written_as_given(tmp_path: Path, sim: Sim) -> None:
    """The machine hands the store the slots each update changed (no re-derivation from the
    trades): the rows come out as the ones derived from the trades, and reload with the root."""
    stores = [
        Store.open(tmp_path / f"{name}.db", ALICE.address, CHAIN_ID, ADJUDICATOR)
        for name in ("given", "derived")
    ]
    given, derived = stores
    for store in stores:
        store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), sim.phase)
    for update in sim.updates:
        given.apply([sim.persist(update)])
        derived.append_state(sim.channel_id, update)
    assert any(c is not None and c.slots for c in sim.changes.values())
    books = [s.load_channel(sim.channel_id).book.snapshot() for s in stores]
    assert books == [sim.book.snapshot()] * 2
    for store in stores:
        store.close()
    with Store.open(tmp_path / "given.db", ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        chan = store.load_channel(sim.channel_id)
        assert chan.latest == sim.latest and chan.book.snapshot() == sim.book.snapshot()
        assert store.verify_history(sim.channel_id) == len(sim.updates)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ("keep_unwound", "does not match the state's positions commitment"),
        ("beyond_high_water", "is not an int in"),
        ("shrink", "it never shrinks"),
        ("open_twice", "is open in slot"),
        ("fill_twice", "is filled twice"),
        ("with_snapshot", "not both"),
    ],
)
def test_wrong_changes_are_refused_and_nothing_is_written(
    store: Store, spoil: str, message: str
) -> None:
    sim = Sim()
    sim.open()
    sim.update(*(sim.option() for _ in range(3)))  # slots 0, 1, 2
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), sim.phase)
    for update in sim.updates:
        store.apply([sim.persist(update)])
    before = sim.latest
    update = sim.update(sim.unwind(2), sim.option())  # frees slot 1, opens in slot 1 again
    good = sim.changes[update.signed.state.version]
    assert good is not None and good.high_water == 3
    in_slot_0 = sim.book.snapshot().slots[0][1]
    spoiled = {
        "keep_unwound": BookChanges(3, ()),
        "beyond_high_water": BookChanges(3, (*good.slots, (3, in_slot_0))),
        "shrink": BookChanges(2, good.slots),
        "open_twice": BookChanges(3, (*good.slots, (2, in_slot_0))),
        "fill_twice": BookChanges(3, (*good.slots, *good.slots)),
    }
    if spoil == "with_snapshot":
        op = PersistState(sim.channel_id, update, sim.book.snapshot(), good)
    else:
        op = PersistState(sim.channel_id, update, changes=spoiled[spoil])
    with pytest.raises(StoreError, match=message):
        store.apply([op])
    assert store.load_channel(sim.channel_id).latest == before
    store.apply([sim.persist(update)])  # the right changes still go in
    chan = store.load_channel(sim.channel_id)
    assert chan.latest == update and chan.book.snapshot() == sim.book.snapshot()


def test_adopted_state_needs_its_snapshot(store: Store) -> None:
    """A state adopted from the peer (reestablish) jumps versions and brings its own book."""
    ahead = Sim()
    ahead.open()
    rng = random.Random(3)
    for _ in range(10):
        ahead.random_update(rng)
    store.add_channel(ahead.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
    for update in ahead.updates[:4]:
        store.append_state(ahead.channel_id, update)
    adopted = type(ahead.latest)(ahead.latest.signed, ())  # DataLossRecovered: no trades
    with pytest.raises(StoreError, match="pass its book snapshot"):
        store.append_state(ahead.channel_id, adopted)
    # Nothing of the refused call is left: the cache and the rows are as before.
    assert store.load_channel(ahead.channel_id).latest == ahead.updates[3]
    store.append_state(ahead.channel_id, adopted, ahead.book.snapshot())
    chan = store.load_channel(ahead.channel_id)
    assert chan.latest == adopted
    assert chan.book.snapshot() == ahead.book.snapshot()
    # Trading goes on from the adopted book, slots derived again.
    nxt = ahead.update(ahead.option(), ahead.unwind(next(iter(ahead.book)).id))
    store.append_state(ahead.channel_id, nxt)
    assert store.load_channel(ahead.channel_id).book.snapshot() == ahead.book.snapshot()
    assert store.verify_history(ahead.channel_id) == 6


def test_wrong_snapshot_is_refused(store: Store, sim: Sim) -> None:
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
    store.append_state(sim.channel_id, sim.updates[0])
    with pytest.raises(StoreError, match="does not match"):
        store.append_state(sim.channel_id, sim.latest, PositionBook().snapshot())


@pytest.mark.parametrize("given", [True, False], ids=["changes-given", "derived"])
def test_many_rows_in_one_update(db_path: Path, given: bool) -> None:
    """Updates that open, unwind and refill more slots than one multi-row statement holds
    (channels/store/bulk.py): whole chunks, a remainder, exactly one chunk; the rows reload as
    the reference book, slot for slot, after a restart too."""
    sim = Sim()
    sim.open()

    def store_update(store: Store, update: SignedUpdate) -> None:
        if given:
            store.apply([sim.persist(update)])
        else:
            store.append_state(sim.channel_id, update)

    with reopen(db_path) as store:
        store_all(store, sim)
        opened = [sim.option(writer=i % 2) for i in range(37)]  # inserts: 2 chunks and 5
        store_update(store, sim.update(*opened))
        ids = [t.position.id for t in opened]
        # 17 unwound, 20 opened: the first 17 refill the freed slots, 3 are inserted.
        fresh = [sim.option() for _ in range(20)]
        store_update(store, sim.update(*(sim.unwind(p) for p in ids[:17]), *fresh))
        store_update(store, sim.update(*(sim.unwind(p) for p in ids[17:34])))  # deletes: 16+1
        fresh_ids = [t.position.id for t in fresh]
        store_update(store, sim.update(*(sim.unwind(p) for p in fresh_ids[:16])))  # 1 chunk
        assert store.load_channel(sim.channel_id).book.snapshot() == sim.book.snapshot()
    with reopen(db_path) as store:
        chan = store.load_channel(sim.channel_id)
        assert chan.book.snapshot() == sim.book.snapshot() and chan.latest == sim.latest
        assert len(chan.book) == 37 - 17 + 20 - 17 - 16


def test_tampered_book_row_is_detected_at_load(db_path: Path, sim: Sim) -> None:
    with reopen(db_path) as store:
        store_all(store, sim)
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM book_positions WHERE slot = (SELECT MIN(slot) FROM book_positions)")
    conn.commit()
    conn.close()
    with reopen(db_path) as store, pytest.raises(CorruptStore, match="positions root"):
        store.load_channels()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 60), reopen_at=st.integers(0, 60))
def test_book_matches_reference(tmp_path: Path, seed: int, steps: int, reopen_at: int) -> None:
    """Any sequence of opens/unwinds/payments, with a restart anywhere: the stored book is the
    reference book, slot for slot."""
    path = tmp_path / f"h{seed}-{steps}-{reopen_at}.db"
    rng = random.Random(seed)
    sim = Sim()
    sim.open()
    store = Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR, synchronous="NORMAL")
    try:
        store_all(store, sim)
        for step in range(steps):
            if step == reopen_at:
                store.close()
                store = Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR, "NORMAL")
            store.append_state(sim.channel_id, sim.random_update(rng))
        chan = store.load_channel(sim.channel_id)
        assert chan.book.snapshot() == sim.book.snapshot()
        assert chan.latest == sim.latest
    finally:
        store.close()
    path.unlink()
