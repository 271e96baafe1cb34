"""Dispute transactions that land: reorged, dropped, under-priced, late and crashed refutes
(docs/THREATS.md C8, C17, section 7). Anvil runs with automine off so the test decides what gets
mined."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from adjudicator.rpc import RpcClient, open_rpc
from channels.core.model import ChannelId, SignedState
from channels.core.node_events import Alarm, Event
from channels.defence.txdriver import PendingTx, TxPolicy
from channels.runtime.node import Node
from channels.store import IntentStatus

from .conftest import Desks, cheat_setup, desk, send_register, view, wait_for

QUICK = TxPolicy(stuck_blocks=1, stuck_seconds=0.5, deadline_margin=30)


@asynccontextmanager
async def manual_mining(desks: Desks) -> AsyncIterator[RpcClient]:
    async with open_rpc(desks.url) as rpc:
        try:
            yield rpc
        finally:
            with trio.CancelScope(shield=True):
                await rpc.dev.drop_all_transactions()
                await rpc.dev.set_automine(True)


def refute_of(node: Node, cid: bytes) -> PendingTx | None:
    return node.watcher.txs.live.get(("register", ChannelId(cid)))


def finished_refute(node: Node, cid: bytes) -> PendingTx | None:
    return node.watcher.txs.finished.get(("register", ChannelId(cid)))


async def sent_refute(node: Node, cid: bytes) -> PendingTx:
    def ready() -> bool:
        tx = refute_of(node, cid)
        return tx is not None and tx.sent is not None

    await wait_for(ready)
    tx = refute_of(node, cid)
    assert tx is not None
    return tx


async def registered(desks: Desks, cid: bytes, version: int) -> bool:
    return (await view(desks, cid)).version == version


def drain(events: trio.MemoryReceiveChannel[Event]) -> list[Alarm]:
    out = []
    while True:
        try:
            event = events.receive_nowait()
        except trio.WouldBlock:
            return out
        if isinstance(event, Alarm):
            out.append(event)


async def dispute_with(
    desks: Desks, rpc: RpcClient, tmp_path: Path
) -> tuple[bytes, SignedState, SignedState]:
    """Trade, stop both nodes, switch automine off; Bob registers an old state (mined).
    Returns (channel id, old, latest)."""
    ch, old, latest = await cheat_setup(desks, tmp_path)
    await rpc.dev.set_automine(False)
    await send_register(desks, rpc, ch.params, old)
    await rpc.dev.mine(1)
    assert await registered(desks, ch.id, old.state.version)
    return ch.id, old, latest


async def test_reorged_refute_is_sent_again(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with manual_mining(desks) as rpc:
            cid, old, latest = await dispute_with(desks, rpc, tmp_path)
            snapshot = await rpc.dev.snapshot()
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                alice.watcher.txs.policy = QUICK
                first = await sent_refute(alice, cid)
                await rpc.dev.mine(1)
                await wait_for(lambda: registered(desks, cid, latest.state.version))
                await wait_for(lambda: finished_refute(alice, cid) is first)
                assert first.outcome is IntentStatus.CONFIRMED
                # A reorg takes the refute's block away: the stale registration is back.
                assert await rpc.dev.revert(snapshot)
                await rpc.dev.set_automine(False)
                assert await registered(desks, cid, old.state.version)
                again = await sent_refute(alice, cid)
                await wait_for(lambda: again.rebroadcasts + again.sends + again.bumps > 0)
                assert again.revived and again.sent is not None
                assert again.sent.nonce == first.sent.nonce  # type: ignore[union-attr]
                await rpc.dev.mine(1)
                await wait_for(lambda: registered(desks, cid, latest.state.version))
                await wait_for(lambda: again.outcome is IntentStatus.CONFIRMED)
                intents = await alice.store.run(lambda s: s.intents(channel_id=ChannelId(cid)))
                refutes = [i for i in intents if i.kind == "refute"]
                assert len(refutes) == 1 and refutes[0].status is IntentStatus.CONFIRMED


async def test_dropped_refute_is_rebroadcast_and_mined_before_the_deadline(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(60):
        async with manual_mining(desks) as rpc:
            cid, _old, latest = await dispute_with(desks, rpc, tmp_path)
            deadline = (await view(desks, cid)).deadline
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                async with alice.events() as events:
                    alice.watcher.txs.policy = QUICK
                    tx = await sent_refute(alice, cid)
                    assert tx.sent is not None
                    dropped, fee = tx.sent.hash, int(tx.sent.fields["maxFeePerGas"])
                    # The pool evicts it; the attacker's blocks keep coming.
                    await rpc.dev.drop_transaction(dropped)
                    await rpc.dev.mine(1)
                    await wait_for(lambda: len(tx.hashes) >= 2, timeout=10)
                    assert tx.sent.hash != dropped
                    assert int(tx.sent.fields["maxFeePerGas"]) > fee  # re-sent with a higher fee
                    await rpc.dev.mine(1)
                    await wait_for(lambda: registered(desks, cid, latest.state.version))
                    await wait_for(lambda: tx.outcome is IntentStatus.CONFIRMED)
                    assert tx.receipt is not None and tx.receipt.transaction_hash == tx.sent.hash
                    block = await rpc.get_block(tx.receipt.block_number)
                    assert block is not None and block.timestamp <= deadline
                    alarms = drain(events)
            assert not [a for a in alarms if a.kind == "DeadlineAtRisk"]


async def test_base_fee_spike_is_answered_with_a_fee_bump(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with manual_mining(desks) as rpc:
            cid, old, latest = await dispute_with(desks, rpc, tmp_path)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                alice.watcher.txs.policy = QUICK
                tx = await sent_refute(alice, cid)
                assert tx.sent is not None
                fee = int(tx.sent.fields["maxFeePerGas"])
                # Congestion: the next block's base fee is far above what the refute pays.
                spike = fee * 10
                await rpc.dev.set_next_block_base_fee_per_gas(spike)
                await rpc.dev.mine(1)
                assert await registered(desks, cid, old.state.version)  # priced out
                await wait_for(lambda: tx.bumps >= 1, timeout=10)
                assert int(tx.sent.fields["maxFeePerGas"]) > spike // 2
                # After the spike the base fee falls by at most 1/8 per empty block, so the
                # refute lands after as many blocks as the driver needs bumps to catch up with
                # it; how many depends on how often the driver runs, so mine until it lands.
                for _ in range(40):
                    await rpc.dev.mine(1)
                    if await registered(desks, cid, latest.state.version):
                        break
                    await trio.sleep(0.3)
                assert await registered(desks, cid, latest.state.version)
                await wait_for(lambda: tx.outcome is IntentStatus.CONFIRMED)


async def test_deadline_at_risk_alarm_then_still_lands(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with manual_mining(desks) as rpc:
            cid, _old, latest = await dispute_with(desks, rpc, tmp_path)
            deadline = (await view(desks, cid)).deadline
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                async with alice.events() as events:
                    alice.watcher.txs.policy = TxPolicy(
                        stuck_blocks=1, stuck_seconds=0.5, deadline_margin=60
                    )
                    tx = await sent_refute(alice, cid)
                    # Nothing of Alice's gets in while the chain moves to 50 s before the deadline.
                    await rpc.dev.drop_all_transactions()
                    await rpc.dev.evm_mine(deadline - 50)
                    alarms: list[Alarm] = []

                    def at_risk() -> bool:
                        alarms.extend(drain(events))
                        return any(a.kind == "DeadlineAtRisk" for a in alarms)

                    await wait_for(at_risk, timeout=10)
                    assert tx.at_risk
                    # It is re-priced on every block from now on; it lands once blocks have room.
                    await wait_for(lambda: len(tx.hashes) >= 2, timeout=10)
                    await rpc.dev.mine(1)
                    await wait_for(lambda: registered(desks, cid, latest.state.version))
                    assert tx.receipt is not None or await registered(
                        desks, cid, latest.state.version
                    )
                    head = await rpc.get_block("latest")
                    assert head is not None and head.timestamp <= deadline


async def test_restart_drives_the_open_refute_intent(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with manual_mining(desks) as rpc:
            cid, _old, latest = await dispute_with(desks, rpc, tmp_path)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                alice.watcher.txs.policy = QUICK
                tx = await sent_refute(alice, cid)
                assert tx.sent is not None
                first_hash = tx.sent.hash
            # Alice's node stops with the refute in the pool; the pool loses it too.
            await rpc.dev.drop_all_transactions()
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                alice.watcher.txs.policy = QUICK
                again = await sent_refute(alice, cid)
                assert again.hashes[0] == first_hash  # adopted from the intent, not rebuilt
                await wait_for(lambda: again.rebroadcasts + again.bumps > 0, timeout=10)
                await rpc.dev.mine(1)
                await wait_for(lambda: registered(desks, cid, latest.state.version))
                await wait_for(lambda: again.outcome is IntentStatus.CONFIRMED)
                intents = await alice.store.run(lambda s: s.intents(channel_id=ChannelId(cid)))
            refutes = [i for i in intents if i.kind == "refute"]
            assert [i.status for i in refutes] == [IntentStatus.CONFIRMED]


async def test_restart_drops_a_superseded_refute(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with manual_mining(desks) as rpc:
            cid, _old, latest = await dispute_with(desks, rpc, tmp_path)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                alice.watcher.txs.policy = QUICK
                await sent_refute(alice, cid)
            await rpc.dev.drop_all_transactions()
            # Meanwhile someone else registers the latest state (here Bob, who has it too).
            async with open_rpc(desks.url) as other:
                await send_register(desks, other, (await _params(desks, tmp_path, cid)), latest)
            await rpc.dev.mine(1)
            assert await registered(desks, cid, latest.state.version)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                await trio.sleep(0.5)
                assert refute_of(alice, cid) is None
                intents = await alice.store.run(lambda s: s.intents(channel_id=ChannelId(cid)))
            assert [i.status for i in intents if i.kind == "refute"] == [IntentStatus.CANCELLED]


async def _params(desks: Desks, tmp_path: Path, cid: bytes) -> object:
    from channels.store import open_store

    async with open_store(
        tmp_path / "a.sqlite",
        identity=desks.alice.address,
        chain_id=desks.deployment.chain_id,
        adjudicator=desks.adjudicator,
    ) as db:
        (stored,) = [c for c in await db.load_channels() if c.params.channel_id == cid]
        return stored.params
