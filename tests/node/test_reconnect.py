"""Link faults while trades are in flight (real nodes, TCP on 127.0.0.1, real anvil).

Covers docs/THREATS.md P4 (peer silent / link lost mid-update: every in-flight call ends completed
or refused, never left hanging, never two different states), T4's "reconnect + reestablish
recovers", S1-adjacent restart of a node on its own store and port, and §7 property 6
(liveness: trading continues after the fault).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import trio

from channels.core.errors import IllegalCall, TooManyPending
from channels.core.model import State
from channels.runtime.channel import Channel
from channels.runtime.node import UpdateRefusedError

from ._helpers import (
    FAST,
    CuttableProxy,
    desk,
    open_channel,
    wait_until,
)
from .conftest import Desks

#: Rules a call cut off by a link fault may end with (besides completing).
LINK_RULES = {"NotCountersigned", "BaseRefused", "Disconnected"}
SHORT = replace(FAST, update_timeout=5.0)


async def _agree(a: Channel, b: Channel) -> None:
    """Both sides reestablished, nothing in flight, the same latest state."""
    await wait_until(
        lambda: a.in_sync and b.in_sync and not a.in_flight and a.state == b.state,
        timeout=15,
    )


async def test_accepts_lost_in_flight_complete_after_reconnect(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            trio.open_nursery() as net,
        ):
            assert bob.listen_port is not None
            proxy = CuttableProxy(bob.listen_port)
            port = await net.start(proxy.run)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", settings=SHORT) as alice:
                ch, bch = await open_channel(alice, bob, desks, port=port)
                start = ch.version
                # Bob's answers stop reaching Alice: three pipelined proposals get countersigned
                # by Bob, but Alice sees none of the Accepts before the link dies.
                proxy.hold_back = True
                outcomes: dict[int, object] = {}

                async def pay(amount: int) -> None:
                    try:
                        outcomes[amount] = await ch.pay(amount)
                    except (UpdateRefusedError, trio.TooSlowError) as exc:
                        outcomes[amount] = exc

                async with trio.open_nursery() as calls:
                    for amount in (1, 2, 3):
                        calls.start_soon(pay, amount)
                        await wait_until(lambda a=amount: bch.version == start + a)
                    proxy.cut()  # the Accepts in flight are lost
                await _agree(ch, bch)
                assert bch.version == start + 3
                for amount, outcome in outcomes.items():
                    # Completed (it is in the agreed state) or refused; never a timeout.
                    assert isinstance(outcome, State | UpdateRefusedError), (amount, outcome)
                assert all(isinstance(o, State) for o in outcomes.values()), outcomes
                done = await bch.pay(10)
                await ch.wait_version(done.version)
                assert ch.state == bch.state
            net.cancel_scope.cancel()


async def test_link_cut_while_both_sides_trade(desks: Desks, tmp_path: Path) -> None:
    """The link is cut (through a proxy) three times while both sides pipeline trades: every
    call completes or is refused (never hangs), no node dies, and both sides agree."""
    await _link_cut_while_both_sides_trade(desks, tmp_path)


async def _link_cut_while_both_sides_trade(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            trio.open_nursery() as net,
        ):
            assert bob.listen_port is not None
            proxy = CuttableProxy(bob.listen_port)
            port = await net.start(proxy.run)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", settings=SHORT) as alice:
                ch, bch = await open_channel(alice, bob, desks, port=port)
                stats = {"done": 0, "refused": 0, "busy": 0}
                bad: list[BaseException] = []
                stop = trio.Event()

                async def trader(c: Channel, seed: int) -> None:
                    rng = random.Random(seed)
                    while not stop.is_set():
                        try:
                            await c.pay(rng.randrange(1, 100))
                            stats["done"] += 1
                        except UpdateRefusedError as exc:
                            if exc.rule not in LINK_RULES:
                                bad.append(exc)
                            stats["refused"] += 1
                        except (IllegalCall, TooManyPending):  # resynchronising: try again
                            stats["busy"] += 1
                            await trio.sleep(0.01)
                        except trio.TooSlowError as exc:  # a call left hanging
                            bad.append(exc)

                async with trio.open_nursery() as traders:
                    for i in range(4):
                        traders.start_soon(trader, ch, i)
                        traders.start_soon(trader, bch, 100 + i)
                    for _ in range(3):
                        await wait_until(lambda n=stats["done"]: stats["done"] >= n + 40)
                        proxy.cut()
                        await wait_until(lambda c=proxy.connections: proxy.connections > c)
                    await wait_until(lambda n=stats["done"]: stats["done"] >= n + 40)
                    stop.set()
                assert not bad, bad[:3]
                await _agree(ch, bch)
                assert proxy.connections >= 4
                done = await ch.pay(5)
                await bch.wait_version(done.version)
                done = await bch.pay(6)
                await ch.wait_version(done.version)
                assert ch.state == bch.state
                assert await alice.store.verify_history(ch.id) >= 2
                assert await bob.store.verify_history(ch.id) >= 2
            net.cancel_scope.cancel()


async def test_follower_restarts_on_same_store_and_port_mid_stream(
    desks: Desks, tmp_path: Path
) -> None:
    """Bob's node stops (its own calls go with it) while Alice keeps pipelining trades, then
    comes back on the same store and listen port; each of Alice's calls ends completed or
    refused with a link rule, and both sides agree."""
    await _follower_restarts(desks, tmp_path)


async def _follower_restarts(desks: Desks, tmp_path: Path) -> None:
    outcomes: list[object] = []
    started = 0
    with trio.fail_after(60):
        async with (
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
            trio.open_nursery() as calls,
        ):

            async def one(i: int) -> None:
                try:
                    outcomes.append(await ch.pay(1 + i))
                except (UpdateRefusedError, IllegalCall, trio.TooSlowError) as exc:
                    outcomes.append(exc)

            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
                port = bob.listen_port
                assert port is not None
                ch, bch = await open_channel(alice, bob, desks)
                async with trio.open_nursery() as bobs:
                    while len(outcomes) < 10:
                        calls.start_soon(one, started)
                        started += 1
                        bobs.start_soon(bch.pay, 1)
                        await trio.sleep(0.01)
                    bobs.cancel_scope.cancel()  # Bob's own calls go with his node
            # Bob is down: Alice's calls in flight wait; new ones are proposed into the void.
            for _ in range(5):
                calls.start_soon(one, started)
                started += 1
            await trio.sleep(0.3)
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=port) as bob2:
                bch2 = bob2.channel(ch.id)
                await _agree(ch, bch2)
                await wait_until(lambda: len(outcomes) == started, timeout=15)
                for outcome in outcomes:
                    if isinstance(outcome, UpdateRefusedError):
                        assert outcome.rule in LINK_RULES, outcome
                    elif not isinstance(outcome, IllegalCall):  # "resynchronising"
                        assert isinstance(outcome, State), outcome
                done = await bch2.pay(11)
                await ch.wait_version(done.version)
                done = await ch.pay(12)
                await bch2.wait_version(done.version)
                assert ch.state == bch2.state
                assert await bob2.store.verify_history(ch.id) >= 2
