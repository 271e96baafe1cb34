"""The public read-only views of a node and its channels, and the testing hooks, over two real
nodes: what ``status`` shows, connectivity, the latest signed state, batched option trades."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import trio

from channels import ChannelInfo
from channels.core import eip712
from channels.core.messages import Message, Proposal
from channels.core.model import Address, Amount
from channels.core.options import OpenOption
from channels.core.protocol import Phase
from channels.core.signing import recover
from channels.testing.faults import clear, tap_received

from ._helpers import DEPOSIT, WEEK, desk, open_channel
from .conftest import Desks


async def test_status_connectivity_and_latest(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks)
            done = await ch.pay(250)
            await bch.wait_version(done.version)

            (info,) = alice.status()
            assert isinstance(info, ChannelInfo)
            assert info.channel_id == ch.id and info.peer == desks.bob.address
            assert (info.phase, info.version, info.our_index) == (Phase.OPEN, done.version, 0)
            assert (info.our_balance, info.their_balance) == (DEPOSIT - 250, DEPOSIT + 250)
            assert info.connected and info.in_sync and info.in_flight == ()
            with pytest.raises(FrozenInstanceError):
                info.version = 0  # type: ignore[misc]

            # The latest state carries both signatures, each recoverable to its signer.
            latest = ch.latest
            assert latest.fully_signed and latest.state == done == bch.latest.state
            digest = eip712.state_digest(ch.domain, latest.state)
            signers = [recover(digest, sig) for sig in latest.signatures if sig is not None]
            assert signers == [desks.alice.address, desks.bob.address]

            assert alice.peers == (desks.bob.address,)
            assert alice.is_connected(desks.bob.address)
            await alice.disconnect(desks.bob.address)
            await bob.wait_connected(desks.alice.address, connected=False)
            # Alice dialled, so Alice redials; both sides resync before trading again.
            await alice.wait_connected(desks.bob.address)
            await bob.wait_connected(desks.alice.address)
            again = await ch.pay(1)
            await bch.wait_version(again.version)
            assert alice.status()[0].connected


async def test_batched_options_with_the_position_builder(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks)
            received: list[Message] = []
            tap_received(bob, lambda _peer, message: received.append(message))
            trades = [
                OpenOption(
                    ch.new_position(
                        kind="call",
                        underlying="ETH-USD",
                        strike=3_000 * 10**8,
                        expiry=alice.now() + WEEK,
                        quantity=10**18,
                        collateral=1_000,
                        writer=ch.our_index,
                    ),
                    Amount(10),
                )
                for _ in range(5)
            ]
            ids = {t.position.id for t in trades}
            assert len(ids) == 5  # fresh ids from one builder
            state = await ch.trade(*trades)
            await bch.wait_version(state.version)
            clear(bob)
            assert {p.id for p in bch.positions} == ids
            assert state.position_count == 5
            # One signature round for the whole batch: a single proposal reached Bob.
            proposals = [m for m in received if isinstance(m, Proposal)]
            assert len(proposals) == 1 and len(proposals[0].trades) == 5
            assert Address(bch.peer_address) == desks.alice.address
