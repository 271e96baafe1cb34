"""The node streams every fully signed state to the desk's watchtower, counts a state as backed
up only once the tower acked it, and at start learns from the tower that its store is an old
copy: it adopts the newer state instead of staying unsure (or, before, publishing the old one)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from channels.cli.config import load_config
from channels.core.errors import ChannelError
from channels.core.model import State, to_checksum
from channels.core.node_events import Alarm
from channels.core.signing import LocalSigner
from channels.defence.watchtower import Watchtower
from channels.runtime.channel import Channel
from channels.runtime.currency import NotKnownCurrent
from channels.runtime.towerclient import TowerEndpoint
from tests.crash.harness import free_port

from .conftest import Desks, desk
from .towers import (
    alice_with,
    backed_up,
    open_channel_to,
    restore_store,
    tower_for,
    wipe_store,
)


async def test_old_copy_is_brought_current_by_the_tower(desks: Desks, tmp_path: Path) -> None:
    store = tmp_path / "a.sqlite"
    with trio.fail_after(120):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                async with alice_with(desks, store, tower) as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    cid = ch.id
                    bch = bob.channel(cid)
                    while ch.version < 4:
                        await ch.wait_version((await bch.pay(1_000)).version)
                    await backed_up(alice, cid, ch.version)
                    v_old = ch.version
                shutil.copy2(store, tmp_path / "old.sqlite")  # a clean copy
                async with alice_with(desks, store, tower) as alice:
                    ch = alice.channel(cid)
                    while not alice.status()[0].connected:
                        await trio.sleep(0.05)
                    for _ in range(5):
                        await ch.wait_version((await bch.pay(1_000)).version)
                    await backed_up(alice, cid, ch.version)
                    latest = ch.state
            # Bob is gone; Alice's store goes back to the old copy.
            restore_store(tmp_path / "old.sqlite", store)
            async with alice_with(desks, store, tower) as alice:
                ch = alice.channel(cid)
                await ch.wait_version(latest.version)
                assert ch.state == latest
                assert alice.towers.restored == {cid: (v_old, latest.version)}
                # Known current now: a dispute needs no --force and registers the newest state.
                await alice.dispute(cid)
                async with connect_adjudicator(desks.url, desks.adjudicator, None) as view:
                    record = await view.channel(cid)
                assert (record.status, record.version) == (ChannelStatus.DISPUTED, latest.version)


async def test_channels_tower_process_from_toml_acks_a_desks_states(
    desks: Desks, tmp_path: Path
) -> None:
    tower_key = LocalSigner.generate()
    workdir = Path(tempfile.mkdtemp(prefix="octw-", dir="/tmp"))
    port = free_port()
    config = workdir / "tower.toml"
    config.write_text(
        f"""
[tower]
key_env = "OC_TOWER_KEY"
store = "tower.sqlite"
listen_host = "127.0.0.1"
listen_port = {port}
clients = ["{to_checksum(desks.alice.address)}"]
poll_interval = 0.2

[chain]
rpc_url = "{desks.url}"
adjudicator = "{to_checksum(desks.adjudicator)}"
"""
    )
    desk_cfg = workdir / "alice.toml"
    desk_cfg.write_text(
        f"""
[node]
key_env = "OC_ALICE_KEY"
store = "alice.sqlite"

[chain]
rpc_url = "{desks.url}"
adjudicator = "{to_checksum(desks.adjudicator)}"

[[watchtower]]
address = "{to_checksum(tower_key.address)}"
host = "127.0.0.1"
port = {port}
"""
    )
    towers = load_config(desk_cfg).watchtowers
    assert towers == (TowerEndpoint("127.0.0.1", port, tower_key.address),)
    env = {**os.environ, "OC_TOWER_KEY": "0x" + tower_key.secret.hex()}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "channels.cli", "tower", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(workdir),
    )
    try:
        with trio.fail_after(120):
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                async with alice_with(desks, tmp_path / "a.sqlite", *towers) as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    for _ in range(3):
                        await ch.pay(10)
                    await backed_up(alice, ch.id, ch.version)
                    assert alice.towers.backed_up(ch.id) == ch.version
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(15):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_wiped_store_is_rebuilt_from_tower_chain_and_peer(
    desks: Desks, tmp_path: Path
) -> None:
    store = tmp_path / "a.sqlite"
    with trio.fail_after(120):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                assert bob.listen_port is not None
                bob_endpoint = ("127.0.0.1", bob.listen_port)
                ids = []
                async with alice_with(desks, store, tower) as alice:
                    for deposit in (1_000_000, 2_000_000):
                        ch = await open_channel_to(alice, bob, desks, deposit)
                        for _ in range(3):
                            await ch.wait_version((await bob.channel(ch.id).pay(100)).version)
                        await backed_up(alice, ch.id, ch.version)
                        ids.append(ch.id)
                    before = {cid: alice.channel(cid).state for cid in ids}
                wipe_store(store)  # the disk is lost: only the key is left
                peers = {desks.bob.address: bob_endpoint}
                async with alice_with(desks, store, tower, peers=peers) as alice:
                    assert alice.rebuilt is not None
                    assert alice.rebuilt.rebuilt == {cid: before[cid].version for cid in ids}
                    for cid in ids:
                        ch = alice.channel(cid)
                        assert ch.state == before[cid]
                    # The peer is reached again (its endpoint from the desk's config) and the
                    # channels trade on.
                    for cid in ids:
                        ch = alice.channel(cid)
                        done = await _pay_when_linked(ch)
                        await bob.channel(cid).wait_version(done.version)


async def _pay_when_linked(ch: Channel) -> State:
    for _ in range(200):
        try:
            return await ch.pay(1)
        except ChannelError as exc:
            if "resynchronising" not in str(exc) and "Disconnected" not in str(exc):
                raise
            await trio.sleep(0.05)
    raise AssertionError("the peer was never reached again")


async def test_wiped_store_with_open_positions_is_rebuilt(desks: Desks, tmp_path: Path) -> None:
    """The tower keeps the open positions of the state it holds (checked against the state's
    commitment): a wiped store rebuilds the channel with them and trades on. Before, such a
    channel was skipped (the tower held only the positions' commitment)."""
    store = tmp_path / "a.sqlite"
    with trio.fail_after(120):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                assert bob.listen_port is not None
                bob_endpoint = ("127.0.0.1", bob.listen_port)
                async with alice_with(desks, store, tower) as alice:
                    ch = await open_channel_to(alice, bob, desks, 2_000_000)
                    for strike in (3000_00000000, 3100_00000000, 3200_00000000):
                        await ch.write_option(
                            kind="call",
                            underlying="ETH-USD",
                            strike=strike,
                            expiry=alice.now() + 7 * 86400,
                            quantity=10**18,
                            premium=10_000,
                            collateral=300_000,
                        )
                    await ch.wait_version((await bob.channel(ch.id).pay(100)).version)
                    await backed_up(alice, ch.id, ch.version)
                    before, positions = ch.state, {p.id: p for p in ch.positions}
                    assert before.position_count == 3
                wipe_store(store)
                peers = {desks.bob.address: bob_endpoint}
                async with alice_with(desks, store, tower, peers=peers) as alice:
                    assert alice.rebuilt is not None
                    assert alice.rebuilt.skipped == {}
                    assert alice.rebuilt.rebuilt == {ch.id: before.version}
                    assert alice.rebuilt.positions == {ch.id: 3}
                    rebuilt = alice.channel(ch.id)
                    assert rebuilt.state == before
                    assert {p.id: p for p in rebuilt.positions} == positions
                    # An option is unwound on the rebuilt book: the positions are really there.
                    done = await _pay_when_linked(rebuilt)
                    first = min(positions)
                    unwound = await rebuilt.unwind(first, 0)
                    assert unwound.position_count == 2
                    await bob.channel(ch.id).wait_version(max(done.version, unwound.version))


async def test_a_towers_state_without_its_positions_leaves_an_old_copy_not_current(
    desks: Desks, tmp_path: Path
) -> None:
    """The tower holds a newer state whose open positions the old copy lacks, without those
    positions (a tower that kept only the state): the node cannot adopt it, says so once, and
    stays not known current, so a dispute still needs --force. Before, being told of a newer
    state it could not adopt made it count itself current at its old version."""
    store = tmp_path / "a.sqlite"
    tower_key, port = LocalSigner.generate(), free_port()

    def the_tower() -> AbstractAsyncContextManager[Watchtower]:
        return tower_for(desks, tmp_path / "tower.sqlite", key=tower_key, port=port)

    with trio.fail_after(120):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
            async with alice_with(desks, store) as alice:
                ch = await open_channel_to(alice, bob, desks)
                cid, v_old = ch.id, ch.version
            shutil.copy2(store, tmp_path / "old.sqlite")  # a clean copy, no positions
            async with alice_with(desks, store) as alice:
                ch = alice.channel(cid)
                await _pay_when_linked(ch)
                await ch.write_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=3000_00000000,
                    expiry=alice.now() + 7 * 86400,
                    quantity=10**18,
                    premium=10_000,
                    collateral=300_000,
                )
                latest, params = ch.latest, ch.params
        # Bob is gone; the tower gets the newest state without its positions.
        async with the_tower() as tower:
            assert await tower.accept(desks.alice.address, params, latest) == latest.state.version
        restore_store(tmp_path / "old.sqlite", store)
        endpoint = TowerEndpoint("127.0.0.1", port, tower_key.address)
        async with alice_with(desks, store, endpoint) as alice:
            said: list[str] = []
            watched = {"DataLossRecovered", "RestoredFromTower", "TowerStateNotAdopted"}
            async with alice.events() as events, trio.open_nursery() as nursery:

                async def collect() -> None:
                    async for event in events:
                        if isinstance(event, Alarm) and event.kind in watched:
                            said.append(event.kind)

                nursery.start_soon(collect)
                async with the_tower():  # down at the start: the node asks again
                    while "TowerStateNotAdopted" not in said:
                        await trio.sleep(0.05)
                    await trio.sleep(6)  # asked again after RETRY_EVERY: nothing new to say
                nursery.cancel_scope.cancel()
            assert sorted(said) == ["DataLossRecovered", "TowerStateNotAdopted"]  # once each
            ch = alice.channel(cid)
            assert (ch.version, ch.known_current) == (v_old, False)
            assert alice.towers.restored == {}
            with pytest.raises(NotKnownCurrent):
                await alice.dispute(cid)
