"""The clean shutdown's cut-back of the version lease at the towers (docs/PROTOCOL.md section 7):
a tower that cannot be reached keeps the higher figure and the shutdown does not wait for it; a
tower file from before figures named their run keeps its figures."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import trio

from channels.core.model import Address
from channels.core.signing import LocalSigner
from channels.defence.towerlease import RUN_ID_BYTES, LeaseRefused, TowerLeases
from channels.defence.watchtower import Watchtower
from channels.runtime.towerclient import TowerEndpoint
from channels.runtime.towerlease import CUT_BACK_TIMEOUT
from tests.crash.harness import free_port

from .conftest import FAST, Desks, desk
from .towers import alice_with, open_channel_to, tower_for


async def test_a_tower_not_reached_at_shutdown_keeps_the_higher_figure(
    desks: Desks, tmp_path: Path
) -> None:
    """Alice's towers: a real one, down when she shuts down, and one that takes the connection
    and never answers. Her shutdown ends within the cut-back's bound, and her next start resumes
    above the real tower's figure, which it kept (versions burned: the safe side)."""
    store, tower_key, port = tmp_path / "a.sqlite", LocalSigner.generate(), free_port()
    silent_key = LocalSigner.generate()

    async def never_answer(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    def the_tower() -> AbstractAsyncContextManager[Watchtower]:
        return tower_for(desks, tmp_path / "tower.sqlite", key=tower_key, port=port)

    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            (silent,) = await nursery.start(
                partial(trio.serve_tcp, never_answer, 0, host="127.0.0.1")
            )
            towers = [
                TowerEndpoint("127.0.0.1", port, tower_key.address),
                TowerEndpoint("127.0.0.1", silent.socket.getsockname()[1], silent_key.address),
            ]
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                # Signing does not wait for the towers: the silent one stalls every push.
                node = alice_with(desks, store, *towers, settings=replace(FAST, max_tower_lag=None))
                # The tower is up at Alice's start and down at her shutdown.
                stop, stopped = trio.Event(), trio.Event()
                await nursery.start(tower_until, the_tower, stop, stopped)
                async with node as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    await ch.pay(1)
                    last = ch.version
                    while alice.towers.leases.acked(ch.id) <= last:
                        await trio.sleep(0.05)
                    held = alice.towers.leases.acked(ch.id)
                    stop.set()
                    await stopped.wait()
                    stopping = time.monotonic()
                took = time.monotonic() - stopping
                async with the_tower(), alice_with(desks, store, towers[0]) as alice:
                    after = await alice.channel(ch.id).pay(1)
            nursery.cancel_scope.cancel()
    assert took < CUT_BACK_TIMEOUT + 5, took
    assert after.version > held > last, (after.version, held, last)


async def tower_until(
    tower: Callable[[], AbstractAsyncContextManager[Watchtower]],
    stop: trio.Event,
    stopped: trio.Event,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with tower():
        task_status.started()
        await stop.wait()
    stopped.set()


async def test_a_tower_store_from_before_runs_keeps_its_figures(tmp_path: Path) -> None:
    """A tower file written before figures named their run: opened, it keeps each figure, and
    the first run that leases or reads a figure may then cut it back."""
    conn = sqlite3.connect(tmp_path / "tower.sqlite", isolation_level=None)
    conn.execute(
        "CREATE TABLE tower_leases (client BLOB NOT NULL, channel_id BLOB NOT NULL, "
        "up_to INTEGER NOT NULL, PRIMARY KEY (client, channel_id))"
    )
    client, cid, run = Address(bytes(20)), bytes(range(32)), bytes(RUN_ID_BYTES)
    conn.execute("INSERT INTO tower_leases VALUES (?, ?, ?)", (bytes(client), cid, 400))

    async def here(fn: Callable[..., object], *args: object) -> object:
        return fn(*args)

    leases = TowerLeases(conn, here)
    read = {"t": "leases", "channels": [cid]}
    assert await leases.answer(client, read) == {"ok": True, "leases": [400]}
    with pytest.raises(LeaseRefused, match="another run"):
        await leases.answer(client, {"t": "lease", "channel": cid, "up_to": 9, "run": run,
                                     "exact": True})  # fmt: skip
    await leases.answer(client, {**read, "run": run})
    cut = {"t": "lease", "channel": cid, "up_to": 9, "run": run, "exact": True}
    assert await leases.answer(client, cut) == {"ok": True, "up_to": 9}
