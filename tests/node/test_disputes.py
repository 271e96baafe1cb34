"""Disputes end to end: real nodes, real anvil, a cheating or vanished peer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import open_node
from channels.core import eip712
from channels.core.model import Attestation, symbol
from channels.core.node_events import Alarm
from channels.core.protocol import Phase
from channels.core.signing import LocalSigner
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings

from ._helpers import desk_partners, open_to
from .conftest import Desks

FAST = NodeSettings(chain_poll_interval=0.05, update_timeout=10.0, open_timeout=30.0)
PERIOD = 120


@asynccontextmanager
async def desk(
    desks: Desks, signer: LocalSigner, path: Path, *, listen: bool, settings: NodeSettings = FAST
) -> AsyncIterator[Node]:
    async with open_node(
        signer=signer,
        store=path,
        chain=desks.url,
        adjudicator=desks.adjudicator,
        listen=("127.0.0.1", 0) if listen else None,
        settings=settings,
        trust=desk_partners(desks, signer),
    ) as node:
        yield node


async def open_channel(alice: Node, bob: Node, desks: Desks) -> Channel:
    return await open_to(alice, bob, desks, deposit=1_000_000, challenge_period=PERIOD)


async def advance(desks: Desks, seconds: int) -> None:
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.increase_time(seconds)
        await rpc.dev.evm_mine()


async def balances(desks: Desks) -> tuple[int, int]:
    async with open_rpc(desks.url) as rpc:
        return (
            await balance_of(rpc, desks.token, desks.alice.address),
            await balance_of(rpc, desks.token, desks.bob.address),
        )


async def test_stale_registration_is_refuted_and_latest_paid(desks: Desks, tmp_path: Path) -> None:
    before = await balances(desks)
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                ch = await open_channel(alice, bob, desks)
                bch = bob.channel(ch.id)
                for _ in range(4):
                    done = await bch.pay(10_000)
                await ch.wait_version(done.version)
                history = await bob.store.history(ch.id)
                params = ch.params
            # Bob goes offline and registers an old state in which he was richer.
            old = max(history[:-1], key=lambda u: u.signed.state.balances[1]).signed
            assert old.state.balances[1] > ch.state.balances[1]
            latest = ch.state
            async with connect_adjudicator(desks.url, desks.adjudicator, desks.bob.secret) as bad:
                await bad.register(params, old)
                # Alice's watcher refutes with her latest within a few polls.
                while (await bad.channel(ch.id)).version != latest.version:
                    await trio.sleep(0.05)
                assert ch.phase is Phase.DISPUTED
                await advance(desks, PERIOD + 1)
                await ch.wait_phase(Phase.CLOSED)
                assert (await bad.channel(ch.id)).status is ChannelStatus.CONCLUDED
    after = await balances(desks)
    assert after[0] - before[0] == latest.balances[0] - 1_000_000
    assert after[1] - before[1] == latest.balances[1] - 1_000_000


async def test_watcher_started_after_the_registration_still_refutes(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                ch = await open_channel(alice, bob, desks)
                await ch.pay(1)
                await ch.pay(2)
                history = await bob.store.history(ch.id)
            cid, params, latest = ch.id, ch.params, ch.state
        # Alice is offline when Bob cheats; her node comes back later.
        async with connect_adjudicator(desks.url, desks.adjudicator, desks.bob.secret) as bad:
            await bad.register(params, history[-2].signed)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                while (await bad.channel(cid)).version != latest.version:
                    await trio.sleep(0.05)
                assert alice.channel(cid).phase is Phase.DISPUTED


async def test_newer_state_registered_by_peer_is_adopted_not_refuted(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                ch = await open_channel(alice, bob, desks)
                await ch.pay(5)
                bch = bob.channel(ch.id)
                newest = await bch.pay(7)  # the follower's update: Bob stores it first
                # Bob registers at once, before Alice may have seen his countersignature.
                await bob.dispute(ch.id)
                async with connect_adjudicator(desks.url, desks.adjudicator, None) as view:
                    await ch.wait_phase(Phase.DISPUTED)
                    await advance(desks, PERIOD + 1)
                    await ch.wait_phase(Phase.CLOSED)
                    record = await view.channel(ch.id)
                assert record.status is ChannelStatus.CONCLUDED
                assert ch.state.version == newest.version


async def test_funding_that_never_arrives_is_refunded(desks: Desks, tmp_path: Path) -> None:
    before = await balances(desks)
    impatient = NodeSettings(
        chain_poll_interval=0.05, update_timeout=10.0, open_timeout=5.0, funding_timeout=0.5
    )
    alarms: list[Alarm] = []
    with trio.fail_after(90):
        async with desk(
            desks, desks.alice, tmp_path / "a.sqlite", listen=False, settings=impatient
        ) as alice:
            # Bob accepts the channel but never deposits (his node refuses to fund).
            lazy = NodeSettings(chain_poll_interval=0.05, auto_fund=False)
            async with (
                alice.events() as events,
                desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True, settings=lazy) as bob,
            ):
                try:
                    await open_channel(alice, bob, desks)
                except trio.TooSlowError:
                    pass
                (entry,) = alice.channels
                assert entry.phase in (Phase.FUNDING, Phase.DISPUTED)
                with trio.fail_after(30):
                    async for event in events:
                        if isinstance(event, Alarm):
                            alarms.append(event)
                            if event.kind == "Escalated":
                                break
                await entry.wait_phase(Phase.DISPUTED)
                await advance(desks, PERIOD + 1)
                await entry.wait_phase(Phase.CLOSED)
    after = await balances(desks)
    assert after == before  # Alice got her whole deposit back; Bob never paid anything
    assert any(a.kind == "Escalated" for a in alarms)


async def test_expired_positions_settle_on_chain_after_a_dispute(
    desks: Desks, tmp_path: Path
) -> None:
    before = await balances(desks)
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                ch = await open_channel(alice, bob, desks)
                expiry = alice.now() + 3 * PERIOD
                call = await ch.write_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=3000_00000000,
                    expiry=expiry,
                    quantity=10**18,
                    premium=20_000,
                    collateral=300_000,
                )
                put = await ch.buy_option(
                    kind="put",
                    underlying="ETH-USD",
                    strike=2900_00000000,
                    expiry=expiry,
                    quantity=10**18,
                    premium=10_000,
                    collateral=200_000,
                )
                state = ch.state
            await alice.dispute(ch.id)
            await advance(desks, PERIOD + 1)
            await ch.wait_phase(Phase.CLOSED)
            # At expiry the oracle says 3,100: Bob's call pays 100 USD (capped by 300,000 units
            # = 0.3 USD at 6 decimals), Alice's put expires worthless.
            await advance(desks, 3 * PERIOD)
            attestation = Attestation(symbol("ETH-USD"), expiry, 3100_00000000)
            domain = eip712.Domain(desks.deployment.chain_id, ch.params.adjudicator)
            sig = desks.oracle.sign_digest(eip712.attestation_digest(domain, attestation))
            alice.add_attestation(attestation, sig)
            async with connect_adjudicator(desks.url, desks.adjudicator, None) as view:
                while (await view.channel(ch.id)).locked_remaining:
                    await trio.sleep(0.05)
    after = await balances(desks)
    # Alice wrote the call: Bob (holder) gets the whole 300,000 cap; Bob wrote the put: out of
    # the money, its 200,000 collateral goes back to him; Alice gets nothing more.
    assert (call.collateral, put.collateral) == (300_000, 200_000)
    assert after[0] - before[0] == state.balances[0] - 1_000_000
    assert after[1] - before[1] == state.balances[1] + 300_000 + 200_000 - 1_000_000
