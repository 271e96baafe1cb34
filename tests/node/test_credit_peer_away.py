"""A deposit credit while the peer is away must not stop our node.

Crediting a deposit the chain measured is a trade the peer countersigns; the node submits it from a
background task. When the peer stays away longer than ``update_timeout`` the submission times out.
Before the fix that ``TooSlowError`` escaped the background task into the node's task group and
stopped the whole node (every channel, the watcher with it). Now the credit is retried on the next
poll and lands once the peer is back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from ._helpers import DEPOSIT, FAST, desk, open_channel
from .conftest import Desks

# The peer stays away longer than a trade may take, but not longer than a top-up waits.
SHORT_UPDATES = dataclasses.replace(FAST, update_timeout=0.5, open_timeout=4.0)


async def test_credit_timing_out_while_the_peer_is_away_keeps_the_node(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(120):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", settings=SHORT_UPDATES) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
                port = bob.listen_port
                ch, _ = await open_channel(alice, bob, desks)
            await alice.wait_connected(desks.bob.address, connected=False)
            # The top-up lands on chain; its credit needs Bob, who is away for several
            # update timeouts: the top-up fails to its caller, and the node carries on.
            with pytest.raises(trio.TooSlowError):
                await ch.top_up(1_000)
            assert ch.state.deposited[0] == DEPOSIT
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=port) as bob:
                # Bob is back: the credit is retried and signed by both.
                await ch.wait_version(ch.version + 1)
                while ch.state.deposited[0] != DEPOSIT + 1_000:
                    await ch.wait_version(ch.version + 1)
                await bob.channel(ch.id).wait_version(ch.version)
                await ch.pay(1)
