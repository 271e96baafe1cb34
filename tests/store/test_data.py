"""What the store keeps: channels, the hash-chained history, signatures, intents, cursors.
The position books are in test_books.py, tampering with the file in test_tampering.py."""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
from pathlib import Path

import pytest

from channels.core import eip712
from channels.core.errors import Equivocation, StaleVersion, UnknownChannel
from channels.core.model import Amount, SignedState, Version
from channels.core.options import OpenOption
from channels.core.protocol import (
    ChannelMachine,
    Config,
    PersistSignature,
    PersistState,
    Phase,
    PhaseChanged,
)
from channels.store import (
    OPEN_INTENTS,
    AddChannel,
    AddIntent,
    IntentStatus,
    Op,
    SetCursor,
    Store,
)
from channels.store.errors import ForeignStore, StoreError
from channels.store.premiums import premiums_by_payer
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID, DEPOSIT, Sim, make_params
from tests.store.conftest import reopen, sql_on_file, store_all


def state_hash(sim: Sim, index: int = -1) -> bytes:
    return eip712.state_struct_hash(sim.updates[index].signed.state)


# round trips ------------------------------------------------------------------------------------
def test_round_trip_and_reopen(db_path: Path, sim: Sim) -> None:
    with reopen(db_path) as store:
        store_all(store, sim)
        store.record_signature(sim.channel_id, 43, bytes(32))  # a proposal in flight
        before = store.load_channels()
    with reopen(db_path) as store:
        (chan,) = store.load_channels()
    for got in (before[0], chan):
        assert got.params == sim.params
        assert got.channel_id == sim.channel_id
        assert got.our_index == 0
        assert got.deposits == (DEPOSIT, DEPOSIT)
        assert got.phase is Phase.OPEN
        assert got.latest == sim.latest
        assert got.book.snapshot() == sim.book.snapshot()
        assert got.book.root == sim.latest.signed.state.positions_root
        assert got.highest_signed == 43
        assert got.signed_ahead
        assert got.endpoint is None
    with reopen(db_path) as store:
        assert list(store.history(sim.channel_id)) == sim.updates
        assert [u.signed.state.version for u in store.history(sim.channel_id, start=40)] == [
            40,
            41,
        ]
        assert store.verify_history(sim.channel_id) == len(sim.updates)


def test_restore_into_a_machine(db_path: Path, sim: Sim) -> None:
    with reopen(db_path) as store:
        store_all(store, sim)
    with reopen(db_path) as store:
        (chan,) = store.load_channels()
    machine = ChannelMachine.restore(
        chan.params,
        ALICE,
        Config(CHAIN_ID, ADJUDICATOR),
        chan.deposits,
        chan.latest,
        chan.book,
        chan.highest_signed,
        chan.phase,
    )
    assert machine.state == sim.latest.signed.state
    assert machine.book.root == machine.state.positions_root
    assert machine.deposits == (DEPOSIT, DEPOSIT)


def test_endpoint_and_phase(store: Store) -> None:
    sim = Sim()
    store.add_channel(sim.params, 0, (5, 6), Phase.OPENING, ("10.0.0.1", 9735))
    (chan,) = store.load_channels()
    assert chan.endpoint == ("10.0.0.1", 9735)
    assert chan.phase is Phase.OPENING
    assert not chan.fully_signed  # the unsigned opening state stands in for a missing v0
    assert chan.highest_signed == -1
    store.record_signature(sim.channel_id, 0, eip712.state_struct_hash(chan.latest.signed.state))
    assert store.load_channel(sim.channel_id).highest_signed == 0
    assert store.load_channel(sim.channel_id).signed_ahead
    store.set_phase(sim.channel_id, Phase.DISPUTED)
    assert store.load_channel(sim.channel_id).phase is Phase.DISPUTED
    with pytest.raises(UnknownChannel):
        store.set_phase(Sim(nonce=9).channel_id, Phase.OPEN)


def test_add_channel_is_idempotent_and_bound(store: Store) -> None:
    sim = Sim()
    store.add_channel(sim.params, 0, (1, 2), Phase.OPENING)
    store.add_channel(sim.params, 0, (1, 2), Phase.OPENING)  # retried: no-op
    with pytest.raises(StoreError, match="already stored"):
        store.add_channel(sim.params, 0, (1, 3), Phase.OPENING)
    with pytest.raises(ForeignStore, match="identity"):
        store.add_channel(Sim(nonce=2).params, 1, (1, 2), Phase.OPENING)  # index 1 is Bob
    with pytest.raises(ForeignStore, match="chain 1 "):
        store.add_channel(make_params(3, chain_id=1), 0, (1, 2), Phase.OPENING)
    assert len(store.load_channels()) == 1


# signatures and equivocation ------------------------------------------------------------------
def test_record_signature_equivocation(store: Store, sim: Sim, db_path: Path) -> None:
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
    cid = sim.channel_id
    h1, h2 = b"\x01" * 32, b"\x02" * 32
    store.record_signature(cid, 7, h1)
    store.record_signature(cid, 7, h1)  # idempotent
    with pytest.raises(Equivocation, match="version 7 was already signed"):
        store.record_signature(cid, 7, h2)
    assert store.highest_signed(cid) == 7
    with pytest.raises(UnknownChannel):
        store.record_signature(Sim(nonce=5).channel_id, 1, h1)
    # The row cannot be changed behind the store's back either (trigger and primary key).
    store.close()
    with pytest.raises(sqlite3.DatabaseError):
        sql_on_file(db_path, "UPDATE signed_versions SET state_hash = ?", h2)
    with pytest.raises(sqlite3.IntegrityError):
        sql_on_file(db_path, "INSERT INTO signed_versions VALUES (?, 7, ?, 0)", cid, h2)


def test_state_against_signature_record(store: Store) -> None:
    """A fully signed state whose version we signed with another hash is refused."""
    sim = Sim()
    sim.open()
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
    store.append_state(sim.channel_id, sim.updates[0])
    store.record_signature(sim.channel_id, 1, b"\x09" * 32)
    with pytest.raises(Equivocation):
        store.append_state(sim.channel_id, sim.updates[1])
    assert store.load_channel(sim.channel_id).latest == sim.updates[0]


def test_append_rules(store: Store, sim: Sim) -> None:
    store_all(store, sim)
    cid = sim.channel_id
    store.append_state(cid, sim.latest)  # the same state again: no-op
    other = Sim()
    other.open()
    twin = other.update(other.pay(77))  # a v2 with other content than the stored v2
    with pytest.raises(Equivocation, match="another state of version 2"):
        store.append_state(cid, twin)
    half = SignedState(sim.latest.signed.state, (sim.latest.signed.signatures[0], None))
    with pytest.raises(StoreError, match="not fully signed"):
        store.append_state(cid, type(sim.latest)(half, ()))
    with pytest.raises(StoreError, match="another channel"):
        store.append_state(Sim(nonce=4).channel_id, sim.latest)
    assert store.verify_history(cid) == len(sim.updates)


def test_burned_versions_and_stale(store: Store) -> None:
    """Refused proposals burn versions: the history may skip, but never goes back."""
    sim = Sim()
    sim.open()
    fork = Sim()
    fork.open()
    sim.skip = 2
    sim.update(sim.pay(1))  # v4
    fork.update(fork.pay(1))  # v2, never stored here
    store_all(store, sim)
    assert [u.signed.state.version for u in store.history(sim.channel_id)] == [0, 1, 4]
    with pytest.raises(StaleVersion, match="older than the stored latest version 4"):
        store.append_state(sim.channel_id, fork.latest)
    assert store.verify_history(sim.channel_id) == 3


# grouped commits --------------------------------------------------------------------------------
def test_apply_is_all_or_nothing(store: Store, sim: Sim) -> None:
    cid = sim.channel_id
    batch: list[Op] = [
        AddChannel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.FUNDING),
        PersistSignature(cid, Version(0), state_hash(sim, 0)),
        PersistState(cid, sim.updates[0]),
        PhaseChanged(cid, Phase.OPEN),
        PersistState(cid, sim.updates[1]),
        PersistSignature(cid, Version(1), b"\x05" * 32),  # equivocation: the batch fails
    ]
    with pytest.raises(Equivocation):
        store.apply(batch)
    assert store.load_channels() == []
    assert store.apply(batch[:-1]) == [None] * 5
    chan = store.load_channel(cid)
    assert chan.phase is Phase.OPEN
    assert chan.latest == sim.updates[1]


def test_groups_fail_alone(store: Store, sim: Sim) -> None:
    cid = sim.channel_id
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
    groups: list[list[Op]] = [[PersistState(cid, u)] for u in sim.updates[:3]]
    groups += [
        [PersistState(cid, sim.updates[3]), PersistSignature(cid, Version(2), b"\x01" * 32)],
        [PersistState(cid, sim.updates[3])],
        [SetCursor("head", 10, b"\xaa" * 32)],
    ]
    outcomes = store.apply_groups(groups)
    assert isinstance(outcomes[3], Equivocation)
    assert [o for i, o in enumerate(outcomes) if i != 3] == [[None]] * 5
    assert store.stats.transactions == 2  # add_channel, then one for all six groups
    assert store.load_channel(cid).latest == sim.updates[3]
    assert store.get_cursor("head") is not None
    assert store.verify_history(cid) == 4


# audit, intents, cursor -------------------------------------------------------------------------
def test_export_audit_is_json(store: Store, sim: Sim) -> None:
    store_all(store, sim)
    audit = store.export_audit(sim.channel_id)
    text = json.dumps(audit)
    assert json.loads(text) == audit
    assert len(audit) == len(sim.updates)
    v1 = audit[1]
    assert v1["trades"] == [
        {"type": "CreditDeposit", "participant": 0, "amount": str(DEPOSIT)},
        {"type": "CreditDeposit", "participant": 1, "amount": str(DEPOSIT)},
    ]
    assert v1["state_hash"] == "0x" + state_hash(sim, 1).hex()
    assert v1["signatures"] == ["0x" + s.hex() for s in sim.updates[1].signed.signatures]  # type: ignore[union-attr]
    kinds = {t["type"] for entry in audit for t in entry["trades"]}
    assert {"OpenOption", "Unwind", "Pay", "CreditDeposit"} <= kinds


def test_intents_crud(db_path: Path, sim: Sim) -> None:
    with reopen(db_path) as store:
        store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.FUNDING)
        dep = store.add_intent("deposit", b"payload", sim.channel_id, raw_tx=b"raw", nonce=4)
        reg = store.add_intent("register", b"p2", sim.channel_id)
        other = store.add_intent("withdraw", b"p3")
        store.update_intent(dep, IntentStatus.SENT, tx_hash=b"\x11" * 32)
        store.update_intent(other, IntentStatus.CONFIRMED)
        with pytest.raises(StoreError, match="no chain intent"):
            store.update_intent(999, IntentStatus.FAILED)
        with pytest.raises(UnknownChannel):
            store.add_intent("deposit", b"", Sim(nonce=8).channel_id)
    with reopen(db_path) as store:
        got = store.get_intent(dep)
        assert (got.kind, got.payload, got.raw_tx, got.nonce) == ("deposit", b"payload", b"raw", 4)
        assert got.status is IntentStatus.SENT and got.tx_hash == b"\x11" * 32
        assert got.channel_id == sim.channel_id
        assert [i.id for i in store.intents(OPEN_INTENTS)] == [dep, reg]
        assert [i.id for i in store.intents(channel_id=sim.channel_id, kind="deposit")] == [dep]
        assert [i.id for i in store.intents()] == [dep, reg, other]
        store.delete_intent(reg)
        with pytest.raises(StoreError):
            store.get_intent(reg)
        with pytest.raises(StoreError):
            store.delete_intent(reg)


def test_cursor(db_path: Path) -> None:
    with reopen(db_path) as store:
        assert store.get_cursor("adjudicator") is None
        store.set_cursor("adjudicator", 100, b"\x01" * 32)
        store.set_cursor("adjudicator", 101, b"\x02" * 32)
        with pytest.raises(StoreError):
            store.set_cursor("adjudicator", -1, b"")
    with reopen(db_path) as store:
        cur = store.get_cursor("adjudicator")
        assert cur is not None
        assert (cur.block_number, cur.block_hash) == (101, b"\x02" * 32)


def test_pair_of_machines_through_the_store(tmp_path: Path) -> None:
    """Each side of a real machine pair persists its actions; a restart restores both sides."""
    from tests.core.pair import Pair

    pair = Pair()
    rng = random.Random(11)
    helper = Sim()
    for _ in range(30):
        big = helper.option(writer=rng.randint(0, 1))
        trade = OpenOption(dataclasses.replace(big.position, collateral=Amount(5_000)), Amount(7))
        pair.request(rng.choice([pair.alice, pair.bob]), trade)
        pair.deliver_all()
    pair.assert_invariants()
    for side in (pair.alice, pair.bob):
        # Leader and follower alike hand the store the struct hash they signed or checked.
        hashed = [a for a in side.events if isinstance(a, PersistState) and a.state_hash]
        assert len(hashed) >= 30
        for a in hashed:
            assert a.state_hash == eip712.state_struct_hash(a.update.signed.state)
        path = tmp_path / f"{side.name}.db"
        params = pair.params
        store = Store.open(path, side.signer.address, params.chain_id, params.adjudicator)
        ops: list[Op] = [AddChannel(params, side.m.index, pair.deposits, Phase.OPENING)]
        ops += [
            a for a in side.events if isinstance(a, PersistSignature | PersistState | PhaseChanged)
        ]
        store.apply(ops)
        store.close()
        with Store.open(path, side.signer.address, params.chain_id, params.adjudicator) as again:
            (chan,) = again.load_channels()
            assert again.verify_history(params.channel_id) >= 2
        assert chan.latest == side.m.latest
        assert chan.phase is side.m.phase
        assert chan.book.snapshot() == side.m.book.snapshot()
        machine = ChannelMachine.restore(
            chan.params,
            side.signer,
            pair.config,
            chan.deposits,
            chan.latest,
            chan.book,
            chan.highest_signed,
            chan.phase,
        )
        assert machine.highest_signed == side.m.highest_signed
        assert machine.state == side.m.state


def test_a_state_hash_given_is_the_one_recorded(store: Store, sim: Sim) -> None:
    """A PersistState may carry the struct hash its machine computed: the store records it (the
    signature record, the history link) as it would its own, and refuses one that is no hash."""
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), sim.phase)
    for update in sim.updates:
        store.apply([sim.persist(update)])
    update = sim.update(sim.pay(5))
    good = eip712.state_struct_hash(update.signed.state)
    for bad in (good[:31], good.hex()):
        op = dataclasses.replace(sim.persist(update), state_hash=bad)
        with pytest.raises(StoreError, match="32 bytes"):
            store.apply([op])
    store.apply([dataclasses.replace(sim.persist(update), state_hash=good)])
    assert store.signed_versions(sim.channel_id)[-1] == (update.signed.state.version, good)
    assert store.verify_history(sim.channel_id) == len(sim.updates)


def test_bad_values_fail_their_group_only(store: Store) -> None:
    outcomes = store.apply_groups(
        [
            [AddIntent("deposit", object())],  # type: ignore[arg-type]
            [AddIntent("deposit", b"fine")],
        ]
    )
    assert isinstance(outcomes[0], StoreError)
    assert outcomes[1] == [1] or outcomes[1] == [2]
    assert [i.payload for i in store.intents()] == [b"fine"]


def test_each_stored_state_records_the_premiums_it_pays(db_path: Path, sim: Sim) -> None:
    """The daily premium limit's ledger (channels/store/premiums.py): one row per payer of each
    stored state with premiums, written with the state, read back after a reopen."""
    clock = [1_000_000.0]
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR, clock=lambda: clock[0]) as s:
        store_all(s, sim)
    expected = {
        (u.signed.state.version, payer): amount
        for u in sim.updates
        for payer, amount in enumerate(premiums_by_payer(u.trades))
        if amount
    }
    assert expected, "the simulated history opens options with premiums"
    assert any(isinstance(t, OpenOption) for u in sim.updates for t in u.trades)
    clock[0] += 3600
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR, clock=lambda: clock[0]) as s:
        rows = s.premiums_since(86_400)
        assert {(r.version, r.payer): r.amount for r in rows} == expected
        assert {r.age for r in rows} == {3600}
        assert s.premiums_since(1800) == []  # all older than half an hour
