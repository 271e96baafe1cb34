"""Coalescing of concurrent calls (channels.runtime.coalescer): many callers, few updates, exact
balances, and a bad trade among many fails only its own caller."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.core.errors import InsufficientFunds
from channels.runtime.channel import Channel

from ._helpers import DEPOSIT, desk, open_channel
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
