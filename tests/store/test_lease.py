"""The version lease (channels/store/lease.py): one durable record per many signatures, and
still never two different states of one version, across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.core import eip712
from channels.core.errors import Equivocation
from channels.core.hashing import keccak256
from channels.core.model import Version
from channels.core.protocol import PersistSignature, PersistState, Phase
from channels.store import Store, open_store
from channels.store.lease import LEASE_SPAN, RENEW_WITHIN
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID, DEPOSIT, Sim


def sig(sim: Sim, version: int, tag: bytes = b"") -> PersistSignature:
    return PersistSignature(
        sim.channel_id, Version(version), keccak256(tag + version.to_bytes(8, "big"))
    )


async def test_one_commit_per_lease_not_per_signature(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        await store.persist([sig(sim, 1)])  # above any lease: waits for one
        after_first = store.stats.transactions
        assert await store.highest_signed(sim.channel_id) == 1 + LEASE_SPAN
        for v in range(2, 2 + LEASE_SPAN - RENEW_WITHIN):
            assert await store.persist([sig(sim, v)]) == [None]
        # Inside the lease and not yet near its end: not one commit more.
        assert store.stats.transactions == after_first


async def test_a_covered_signature_returns_without_waiting(db_path: Path) -> None:
    """A signature the durable lease covers is durable when submitted: persist returns its
    result at once, without a trip through the scheduler (it does not even see a cancellation
    that is pending), and one above the lease still waits for its commit (made in the writer
    thread here: a commit with nothing else to run is made at once in trio's thread, see
    tests/store/test_async.py)."""
    sim = Sim()
    sim.open()
    async with open_store(
        db_path, ALICE.address, CHAIN_ID, ADJUDICATOR, inline_when_idle=False
    ) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        await store.persist([sig(sim, 1)])
        returned = []
        with trio.CancelScope() as scope:
            scope.cancel()
            returned.append(await store.persist([sig(sim, 2)]))
            returned.append(await store.persist([]))
            await store.persist([sig(sim, 2 + LEASE_SPAN)])  # above the lease: must wait
            pytest.fail("a signature above the lease returned before its commit")
        assert returned == [[None], []] and scope.cancelled_caught
        # The cancelled caller's lease still commits (a batch is never withdrawn).
        with trio.fail_after(30):
            while store.lease(sim.channel_id) < 2 + 2 * LEASE_SPAN:
                await trio.sleep(0.01)


async def test_renewal_is_committed_without_a_waiting_caller(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        await store.persist([sig(sim, 1)])
        near_end = 1 + LEASE_SPAN - RENEW_WITHIN + 1
        for v in range(2, near_end + 1):
            await store.persist([sig(sim, v)])
        with trio.fail_after(30):
            while await store.highest_signed(sim.channel_id) != near_end + LEASE_SPAN:
                await trio.sleep(0.01)


async def test_after_a_restart_nothing_inside_the_lease_is_signed_again(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    with pytest.raises(RuntimeError, match="crash"):  # not a clean shutdown: the lease stays
        async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
            await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
            for v in range(1, 11):
                await store.persist([sig(sim, v)])
            raise RuntimeError("crash")
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as sync:
        # The machine restores its highest signed version from here and signs above it.
        assert sync.load_channel(sim.channel_id).highest_signed >= 10
        assert sync.highest_signed(sim.channel_id) == 1 + LEASE_SPAN
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        # A version the lease covers has no record of its hash: signing it (with any hash) is
        # refused, and nothing is stored.
        before = store.stats.transactions
        for v in (5, 10, LEASE_SPAN):
            with pytest.raises(Equivocation, match="within the version lease"):
                await store.persist([sig(sim, v, b"other")])
        assert store.stats.transactions == before + 3
        assert await store.highest_signed(sim.channel_id) == 1 + LEASE_SPAN
        # Above the lease: a new lease, as at the start.
        await store.persist([sig(sim, 2 + LEASE_SPAN)])
        assert await store.highest_signed(sim.channel_id) == 2 + 2 * LEASE_SPAN


async def test_a_lower_version_than_this_run_signed_is_refused(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        for v in (1, 2, 3):
            await store.persist([sig(sim, v)])
        assert await store.persist([sig(sim, 3)]) == [None]  # the same again is harmless
        with pytest.raises(Equivocation):
            await store.persist([sig(sim, 3, b"other")])
        with pytest.raises(Equivocation):
            await store.persist([sig(sim, 2, b"other")])


async def test_a_lease_rides_along_with_other_writes(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        before = store.stats.transactions
        # A signature and a state in one batch: one transaction, one result per operation.
        first = sim.updates[0]
        version = int(first.signed.state.version)
        ops = [
            PersistSignature(
                sim.channel_id, Version(version), eip712.state_struct_hash(first.signed.state)
            ),
            PersistState(sim.channel_id, first),
        ]
        assert await store.persist(ops) == [None, None]
        assert store.stats.transactions == before + 1
        assert await store.highest_signed(sim.channel_id) == version + LEASE_SPAN
        assert (await store.load_channel(sim.channel_id)).latest == first


async def test_a_clean_shutdown_cuts_the_lease_back_to_what_was_signed(db_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
        for v in range(1, 11):
            await store.persist([sig(sim, v)])
        assert await store.highest_signed(sim.channel_id) == 1 + LEASE_SPAN
    with Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as sync:
        # Every signature of that run went through the store: none above v10 exists, so a
        # restart after a clean shutdown burns no version.
        assert sync.highest_signed(sim.channel_id) == 10
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        with pytest.raises(Equivocation, match="within the version lease"):
            await store.persist([sig(sim, 10, b"other")])
        await store.persist([sig(sim, 11)])
        assert await store.highest_signed(sim.channel_id) == 11 + LEASE_SPAN


async def test_a_lease_extended_ahead_covers_this_runs_signatures_only(db_path: Path) -> None:
    """``extend_lease`` (the tower gate makes the lease durable before the signature it covers):
    the next signatures of this run inside it need no commit and are not refused, each new
    lease is told to ``on_lease``; after a restart the extended lease is one from before like
    any other."""
    sim = Sim()
    sim.open()
    told: list[tuple[bytes, int]] = []
    with pytest.raises(RuntimeError, match="crash"):
        async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
            store.on_lease = lambda cid, up_to: told.append((cid, up_to))
            await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
            await store.extend_lease(sim.channel_id, 1000)
            assert store.lease(sim.channel_id) == 1000
            before = store.stats.transactions
            for v in (700, 701):  # a jump ahead (a tower's figure taken back), then the next
                assert await store.persist([sig(sim, v)]) == [None]
            assert store.stats.transactions == before
            assert told == [(sim.channel_id, 1000)]
            raise RuntimeError("crash")
    async with open_store(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        with pytest.raises(Equivocation, match="within the version lease"):
            await store.persist([sig(sim, 702, b"other")])
