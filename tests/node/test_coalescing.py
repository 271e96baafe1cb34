"""Coalescing of concurrent calls (channels.runtime.coalescer): many callers, few updates, exact
balances, and a bad trade among many fails only its own caller."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio

from channels.core.errors import InsufficientFunds
from channels.runtime.channel import Channel
from channels.runtime.node import UpdateRefusedError

from ._helpers import DEPOSIT, FAST, CuttableProxy, desk, open_channel, wait_until
from .conftest import Desks

CALLS = 200


async def _pay_all(ch: Channel, amounts: list[int]) -> dict[int, BaseException | int]:
    """Call ``ch.pay`` once per amount, all at once; the outcome of each call by index."""
    outcomes: dict[int, BaseException | int] = {}

    async def one(i: int, amount: int) -> None:
        try:
            state = await ch.pay(amount)
        except Exception as exc:
            outcomes[i] = exc
        else:
            outcomes[i] = state.version

    async with trio.open_nursery() as nursery:
        for i, amount in enumerate(amounts):
            nursery.start_soon(one, i, amount)
    return outcomes


@pytest.mark.parametrize("payer", ["leader", "follower"])
async def test_concurrent_pays_coalesce(desks: Desks, tmp_path: Path, payer: str) -> None:
    with trio.fail_after(90):
        async with (
            desk(desks, desks.bob, tmp_path / "bob.sqlite", listen=0) as bob,
            desk(desks, desks.alice, tmp_path / "alice.sqlite") as alice,
        ):
            ach, bch = await open_channel(alice, bob, desks)
            ch = ach if payer == "leader" else bch
            start = ch.version
            outcomes = await _pay_all(ch, [1] * CALLS)
            assert all(isinstance(v, int) for v in outcomes.values()), outcomes
            # Far fewer versions than calls: queued calls share updates.
            assert ch.version - start < CALLS // 4
            us = ch.state.balances[ch.our_index]
            assert us == DEPOSIT - CALLS
            other = bch if ch is ach else ach
            await other.wait_version(ch.version)
            assert other.state == ch.state
            assert other.state.balances[other.our_index] == DEPOSIT + CALLS


@pytest.mark.parametrize("payer", ["leader", "follower"])
async def test_one_bad_call_fails_alone(desks: Desks, tmp_path: Path, payer: str) -> None:
    with trio.fail_after(90):
        async with (
            desk(desks, desks.bob, tmp_path / "bob.sqlite", listen=0) as bob,
            desk(desks, desks.alice, tmp_path / "alice.sqlite") as alice,
        ):
            ach, bch = await open_channel(alice, bob, desks)
            ch = ach if payer == "leader" else bch
            amounts = [1] * CALLS
            bad = CALLS // 2
            amounts[bad] = DEPOSIT + 1  # more than the payer has: always refused
            outcomes = await _pay_all(ch, amounts)
            failed = {i: v for i, v in outcomes.items() if not isinstance(v, int)}
            assert list(failed) == [bad], failed
            assert isinstance(failed[bad], InsufficientFunds)
            assert ch.state.balances[ch.our_index] == DEPOSIT - (CALLS - 1)
            other = bch if ch is ach else ach
            await other.wait_version(ch.version)
            assert other.state == ch.state


async def test_queued_call_times_out_when_never_proposed(desks: Desks, tmp_path: Path) -> None:
    """A call queued behind a full pipeline on a channel that then loses its peer for good is
    failed by the coalescer's own timeout (not left waiting for a resync that never comes), and
    its trades are never proposed afterwards."""
    settings = replace(FAST, update_timeout=4.0)
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "bob.sqlite", listen=0) as bob,
            trio.open_nursery() as net,
        ):
            assert bob.listen_port is not None
            proxy = CuttableProxy(bob.listen_port)
            proxy_scope = trio.CancelScope()

            async def run_proxy(task_status: trio.TaskStatus[int]) -> None:
                with proxy_scope:
                    await proxy.run(task_status=task_status)

            port = await net.start(run_proxy)
            async with desk(desks, desks.alice, tmp_path / "alice.sqlite", settings=settings) as a:
                ch, _ = await open_channel(a, bob, desks, port=port)
                balance = ch.state.balances[ch.our_index]
                proxy.hold_back = True  # Bob's accepts never reach Alice: nothing completes
                outcomes: dict[int, object] = {}
                started: set[int] = set()

                async def pay(amount: int) -> None:
                    started.add(amount)  # pay() queues or proposes before its first yield
                    try:
                        outcomes[amount] = await ch.pay(amount)
                    except (UpdateRefusedError, trio.TooSlowError) as exc:
                        outcomes[amount] = exc

                async with trio.open_nursery() as calls:
                    for amount in (1, 2, 4, 8):  # the leader's whole pipeline
                        calls.start_soon(pay, amount)
                    await wait_until(lambda: len(ch.in_flight) == 4)
                    calls.start_soon(pay, 1000)  # no room: queued in the coalescer
                    await wait_until(lambda: 1000 in started)
                    proxy_scope.cancel()  # the peer is gone for good: the channel stays paused
                queued = outcomes[1000]
                assert isinstance(queued, trio.TooSlowError), outcomes
                assert "not proposed" in str(queued)
                for amount in (1, 2, 4, 8):
                    assert isinstance(outcomes[amount], trio.TooSlowError | UpdateRefusedError)
                assert len(ch.in_flight) <= 4  # the queued trade was never proposed
                assert ch.state.balances[ch.our_index] == balance
            net.cancel_scope.cancel()
