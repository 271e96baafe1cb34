"""The outsourced watchtower: Alice pushes her states and goes offline; Bob registers an old
one; the tower refutes with Alice's latest and concludes; the payouts are Alice's latest."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.rpc import open_rpc
from channels.core.model import SignedState
from channels.core.signing import LocalSigner
from channels.defence.txdriver import TxPolicy
from channels.defence.watchtower import TowerRefused, open_watchtower, push_from_node, push_state
from channels.transport import TransportError

from .conftest import DEPOSIT, PERIOD, Desks, balances, desk, view, wait_for


async def test_tower_refutes_for_an_offline_desk(desks: Desks, tmp_path: Path) -> None:
    tower_key = LocalSigner.generate()
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.set_balance("0x" + tower_key.address.hex(), 10**20)  # it pays its own gas
        before = await balances(desks, rpc)
    with trio.fail_after(60):
        async with open_watchtower(
            tower_key.secret,
            tmp_path / "tower.sqlite",
            desks.url,
            desks.adjudicator,
            ("127.0.0.1", 0),
            clients=[desks.alice.address],
            poll_interval=0.05,
            policy=TxPolicy(stuck_blocks=1, stuck_seconds=1.0, deadline_margin=30),
        ) as tower:
            assert tower.listen_port is not None
            endpoint = ("127.0.0.1", tower.listen_port)
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
                async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(push_from_node, alice, endpoint, tower.address)
                        assert bob.listen_port is not None
                        ch = await alice.open_channel(
                            peer=("127.0.0.1", bob.listen_port),
                            peer_address=desks.bob.address,
                            asset=desks.token,
                            deposit=DEPOSIT,
                            peer_deposit=DEPOSIT,
                            oracle=desks.oracle.address,
                            challenge_period=PERIOD,
                        )
                        bch = bob.channel(ch.id)
                        for _ in range(3):
                            done = await bch.pay(10_000)
                        await ch.wait_version(done.version)
                        latest = ch.state
                        await wait_for(
                            lambda: (
                                ch.id in tower.held
                                and tower.held[ch.id].signed.state.version == latest.version
                            )
                        )
                        nursery.cancel_scope.cancel()
                    history = await bob.store.history(ch.id)
                    params = ch.params
            # Both desks are offline. Bob cheats with the old state in which he was richest.
            old = max(history[:-1], key=lambda u: u.signed.state.balances[1]).signed
            assert old.state.balances[1] > latest.balances[1]
            async with connect_adjudicator(desks.url, desks.adjudicator, desks.bob.secret) as bad:
                await bad.register(params, old)
            await wait_for(lambda: _version_is(desks, ch.id, latest.version))
            assert any(a.kind == "StaleRegistration" for a in tower.alarms)
            async with open_rpc(desks.url) as rpc:
                await rpc.dev.increase_time(PERIOD + 1)
                await rpc.dev.evm_mine()
            # The tower also concludes after the deadline (it holds the registered state).
            await wait_for(lambda: _concluded(desks, ch.id))
            # A stranger cannot push; a forged state is refused.
            with pytest.raises(TransportError):
                await push_state(endpoint, tower.address, desks.bob, params, old)
            sig0, _ = old.signatures
            forged = SignedState(old.state, (sig0, sig0))
            with pytest.raises(TowerRefused):
                await push_state(endpoint, tower.address, desks.alice, params, forged)
    async with open_rpc(desks.url) as rpc:
        after = await balances(desks, rpc)
    assert after[0] - before[0] == latest.balances[0] - DEPOSIT
    assert after[1] - before[1] == latest.balances[1] - DEPOSIT


async def _version_is(desks: Desks, cid: bytes, version: int) -> bool:
    return (await view(desks, cid)).version == version


async def _concluded(desks: Desks, cid: bytes) -> bool:
    return (await view(desks, cid)).status is ChannelStatus.CONCLUDED
