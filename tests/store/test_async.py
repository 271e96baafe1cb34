"""AsyncStore: one worker thread, write-combining, each caller back only once durable."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from channels.core import eip712
from channels.core.errors import Equivocation
from channels.core.model import Version
from channels.core.protocol import PersistSignature, PersistState, Phase
from channels.store import AddChannel, IntentStatus, Op, Store, open_store
from channels.store.errors import ForeignStore, StoreError
from channels.store.lease import LEASE_SPAN
from tests.store._sim import ADJUDICATOR, ALICE, BOB, CHAIN_ID, DEPOSIT, Sim

CHANNELS = 20
PER_CHANNEL = 50  # 1,000 persist calls in all


def make_sims(channels: int, per_channel: int) -> list[Sim]:
    sims = []
    for c in range(channels):
        sim = Sim(nonce=100 + c)
        sim.open()
        rng = random.Random(c)
        while len(sim.updates) < per_channel:
            sim.random_update(rng)
        sims.append(sim)
    return sims


async def test_thousand_concurrent_persists(db_path: Path) -> None:
    sims = make_sims(CHANNELS, PER_CHANNEL)
    enqueued = [[trio.Event() for _ in range(PER_CHANNEL)] for _ in range(CHANNELS)]
    returned: list[tuple[int, int]] = []

    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:

        async def one(c: int, i: int) -> None:
            sim = sims[c]
            if i:
                await enqueued[c][i - 1].wait()
            update = sim.updates[i]
            state = update.signed.state
            ops: list[Op] = [
                PersistSignature(
                    sim.channel_id, Version(state.version), eip712.state_struct_hash(state)
                ),
                PersistState(sim.channel_id, update),
            ]
            if i == 0:
                ops.insert(0, AddChannel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.FUNDING))
            ticket = store.submit(ops)
            enqueued[c][i].set()
            assert await ticket.wait() == [None] * len(ops)
            assert store.durable_seq >= ticket.seq  # back only once its transaction committed
            returned.append((c, i))

        async with trio.open_nursery() as nursery:
            for c in range(CHANNELS):
                for i in reversed(range(PER_CHANNEL)):  # started in the worst order
                    nursery.start_soon(one, c, i)
        assert len(returned) == CHANNELS * PER_CHANNEL
        stats = store.stats
        assert stats.groups == CHANNELS * PER_CHANNEL
        assert stats.transactions < stats.groups  # calls were combined
        print(f"\n1000 persists in {stats.transactions} transactions")

    # Durable and in order per channel: every version, in version order, chain verified.
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as sync:
        assert sync.previous_clean_shutdown
        for sim in sims:
            assert list(sync.history(sim.channel_id)) == sim.updates
            assert sync.verify_history(sim.channel_id) == PER_CHANNEL
            chan = sync.load_channel(sim.channel_id)
            assert chan.book.snapshot() == sim.book.snapshot()


async def test_one_callers_error_does_not_fail_the_others(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    cid = sim.channel_id
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        await store.record_signature(cid, 5, b"\x01" * 32)
        results: dict[str, object] = {}

        async def call(name: str, ops: Sequence[Op]) -> None:
            try:
                results[name] = await store.persist(ops)
            except StoreError as exc:  # pragma: no cover - not expected
                results[name] = exc
            except Equivocation as exc:
                results[name] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "v0", [PersistState(cid, sim.updates[0])])
            nursery.start_soon(call, "bad", [PersistSignature(cid, Version(5), b"\x02" * 32)])
            nursery.start_soon(call, "intent", [])
        assert results["v0"] == [None]
        assert isinstance(results["bad"], Equivocation)
        assert results["intent"] == []
        await store.append_state(cid, sim.updates[1])
        assert (await store.load_channel(cid)).latest == sim.updates[1]
        assert [u.signed.state.version for u in await store.history(cid)] == [0, 1]
        assert await store.verify_history(cid) == 2
        assert len(await store.export_audit(cid)) == 2
        # The signature on v5 was recorded with a version lease over it (channels/store/lease.py).
        assert await store.highest_signed(cid) == 5 + LEASE_SPAN


async def test_async_intents_and_cursor(db_path: Path) -> None:
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        iid = await store.add_intent("deposit", b"x", nonce=1)
        await store.update_intent(iid, IntentStatus.SENT, tx_hash=b"\x01" * 32)
        assert (await store.get_intent(iid)).status is IntentStatus.SENT
        assert [i.id for i in await store.intents([IntentStatus.SENT])] == [iid]
        await store.delete_intent(iid)
        assert await store.intents() == []
        await store.set_cursor("c", 5, b"\x02" * 32)
        cursor = await store.get_cursor("c")
        assert cursor is not None and cursor.block_number == 5
        assert store.identity == ALICE.address
        assert store.previous_clean_shutdown


async def test_queued_batches_commit_on_normal_exit(db_path: Path) -> None:
    sims = make_sims(3, 5)
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        for sim in sims:
            store.submit([AddChannel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)])
            for update in sim.updates:
                store.submit([PersistState(sim.channel_id, update)])
        # no await: the batches are only queued when the block ends
    with pytest.raises(StoreError, match="closing"):
        store.submit([])
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as sync:
        assert sync.previous_clean_shutdown
        for sim in sims:
            assert sync.load_channel(sim.channel_id).latest == sim.latest


async def test_failure_in_the_block_closes_cleanly(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    with pytest.raises(RuntimeError, match="boom"):
        async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
            await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
            raise RuntimeError("boom")
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as sync:
        assert sync.previous_clean_shutdown
        assert len(sync.load_channels()) == 1


async def test_cancelled_caller_leaves_the_store_usable(db_path: Path) -> None:
    sims = make_sims(1, 30)
    sim = sims[0]
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        with trio.move_on_after(0):  # cancelled at once: the batch may or may not commit
            await store.persist([PersistState(sim.channel_id, sim.updates[0])])
        await store.append_state(sim.channel_id, sim.updates[0])  # idempotent either way
        for update in sim.updates[1:]:
            await store.append_state(sim.channel_id, update)
        assert (await store.load_channels())[0].latest == sim.latest


async def test_open_store_errors_are_typed(db_path: Path) -> None:
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR):
        pass
    with pytest.raises(ForeignStore):
        async with open_store(db_path, BOB.address, CHAIN_ID, ADJUDICATOR):
            pass  # pragma: no cover


async def test_commit_failure_fails_callers_and_later_calls(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)

        def broken(groups: object) -> list[object]:
            raise StoreError("disk I/O error")

        store._store.apply_groups = broken  # type: ignore[method-assign,assignment]
        with pytest.raises(StoreError, match="could not commit: disk I/O error"):
            await store.append_state(sim.channel_id, sim.updates[0])
        with pytest.raises(StoreError, match="failed earlier"):
            await store.append_state(sim.channel_id, sim.updates[0])


async def test_a_commit_is_made_in_trio_thread_only_when_nothing_else_could_run(
    db_path: Path,
) -> None:
    """With no other task ready and the writer thread idle, a commit is made at once in trio's
    own thread (no hand-off); with another task ready, in the writer thread, so that task runs
    while the disk flushes. Either way the caller returns only once the batch is committed."""
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        committed_in: list[threading.Thread] = []
        apply_groups = store._store.apply_groups

        def recording(groups: Sequence[Sequence[Op]]) -> list[object]:
            committed_in.append(threading.current_thread())
            return apply_groups(groups)  # type: ignore[return-value]

        store._store.apply_groups = recording  # type: ignore[method-assign,assignment]
        async with trio.open_nursery() as nursery:
            woken = trio.Event()
            nursery.start_soon(woken.wait)
            await trio.testing.wait_all_tasks_blocked()
            await store.append_state(sim.channel_id, sim.updates[0])  # nothing else to run
            woken.set()  # the other task is ready now
            await store.append_state(sim.channel_id, sim.updates[1])
        assert committed_in[0] is threading.current_thread()
        assert committed_in[1] is not threading.current_thread()
        assert (await store.load_channel(sim.channel_id)).latest == sim.updates[1]
