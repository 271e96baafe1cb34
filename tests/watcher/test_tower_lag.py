"""With watchtowers configured, the node signs no new version while its towers lag: our newest
fully signed state may be at most ``max_tower_lag`` (default 0) versions ahead of what a tower
acked. Before, a node whose tower was down went on signing, so a lost store could cost every
state since the tower's last ack."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from channels.core.node_events import Alarm
from channels.core.signing import LocalSigner
from channels.runtime.errors import TowerBehind, UpdateRefusedError
from channels.runtime.node import NodeSettings
from channels.runtime.towerclient import TowerEndpoint
from tests.crash.harness import free_port

from .conftest import FAST, Desks, desk
from .towers import alice_with, open_channel_to, tower_for

QUICK = dataclasses.replace(FAST, update_timeout=3.0)


async def run_tower(
    desks: Desks,
    key: LocalSigner,
    path: Path,
    port: int,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with tower_for(desks, path, key=key, port=port):
        task_status.started()
        await trio.sleep_forever()


async def test_no_new_version_is_signed_while_the_tower_lags(desks: Desks, tmp_path: Path) -> None:
    assert NodeSettings().max_tower_lag == 0  # the default: every state backed up first
    key, port = LocalSigner.generate(), free_port()
    tower_db = tmp_path / "tower.sqlite"
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            tower = trio.CancelScope()

            async def tower_up(*, task_status: trio.TaskStatus[None]) -> None:
                with tower:
                    await run_tower(desks, key, tower_db, port, task_status=task_status)

            await nursery.start(tower_up)
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                endpoint = TowerEndpoint("127.0.0.1", port, key.address)
                async with alice_with(
                    desks, tmp_path / "a.sqlite", endpoint, settings=QUICK
                ) as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    bch = bob.channel(ch.id)
                    await ch.pay(1_000)
                    while alice.towers.backed_up(ch.id) < ch.version:
                        await trio.sleep(0.05)
                    tower.cancel()  # the tower goes down
                    acked = ch.version
                    # Our newest state is backed up: one more version may be signed ...
                    after = await ch.pay(1_000)
                    assert after.version == acked + 1
                    # ... but not the next: the tower never acked it.
                    async with alice.events() as events:
                        with pytest.raises(TowerBehind, match=f"acked v{acked}"):
                            await ch.pay(1_000)
                        alarm = await events.receive()
                        while not isinstance(alarm, Alarm) or alarm.kind != "TowerBehind":
                            alarm = await events.receive()
                    assert ch.version == after.version
                    # Bob's request is refused by Alice (the leader) on the same ground.
                    with pytest.raises(UpdateRefusedError, match="TowerBehind"):
                        await bch.pay(1_000)
                    assert bch.version == after.version
                    # The tower is back (same key, port and store): trading resumes.
                    tower = trio.CancelScope()
                    await nursery.start(tower_up)
                    while alice.towers.backed_up(ch.id) < after.version:
                        await trio.sleep(0.05)
                    assert (await ch.pay(1_000)).version == after.version + 1
            tower.cancel()
