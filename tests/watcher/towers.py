"""Shared setup of the watchtower tests (test_tower_*.py): a tower, Alice's desk backed up to
towers, a channel opened from Alice to Bob, a store restored from its backup, and a lease read
at a tower over real TCP."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from channels import open_node
from channels.core.model import Address
from channels.core.signing import LocalSigner
from channels.defence.towerproto import tower_call
from channels.defence.watchtower import Watchtower, open_watchtower
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings
from channels.runtime.towerclient import TowerEndpoint
from channels.transport import Prologue
from tests.node._helpers import open_to

from .conftest import FAST, Desks


def tower_for(
    desks: Desks,
    path: Path,
    *,
    key: LocalSigner | None = None,
    port: int = 0,
    client: LocalSigner | None = None,
) -> AbstractAsyncContextManager[Watchtower]:
    """A watchtower on ``path`` serving ``client`` (Alice unless said); a fresh key and any free
    port unless given (a tower restarted on the same key and port is the same tower)."""
    return open_watchtower(
        (key or LocalSigner.generate()).secret,
        path,
        desks.url,
        desks.adjudicator,
        ("127.0.0.1", port),
        clients=[(client or desks.alice).address],
        poll_interval=0.1,
    )


def endpoint_of(tower: Watchtower) -> TowerEndpoint:
    assert tower.listen_port is not None
    return TowerEndpoint("127.0.0.1", tower.listen_port, tower.address)


@asynccontextmanager
async def alice_with(
    desks: Desks,
    path: Path,
    *towers: Watchtower | TowerEndpoint,
    settings: NodeSettings = FAST,
    peers: dict[bytes, tuple[str, int]] | None = None,
) -> AsyncIterator[Node]:
    """Alice's desk on the store ``path``, backed up to ``towers`` (none: no tower)."""
    endpoints = [t if isinstance(t, TowerEndpoint) else endpoint_of(t) for t in towers]
    async with open_node(
        signer=desks.alice,
        store=path,
        chain=desks.url,
        adjudicator=desks.adjudicator,
        settings=settings,
        watchtowers=endpoints,
        peers=peers,
    ) as node:
        yield node


async def open_channel_to(
    alice: Node, bob: Node, desks: Desks, deposit: int = 1_000_000
) -> Channel:
    """Alice opens a channel to Bob, ``deposit`` each side, an hour's challenge period."""
    return await open_to(alice, bob, desks, deposit=deposit, challenge_period=3600)


async def backed_up(node: Node, cid: bytes, version: int) -> None:
    while node.towers.backed_up(cid) < version:
        await trio.sleep(0.05)


def restore_store(backup: Path, store: Path) -> None:
    """The desk's disk is lost: its store comes back from ``backup`` (a clean copy)."""
    shutil.copy2(backup, store)
    for side in ("-wal", "-shm"):
        Path(str(store) + side).unlink(missing_ok=True)


def wipe_store(store: Path) -> None:
    """The desk's disk is lost and there is no backup: only the key is left."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)


async def ask_tower(
    desks: Desks, signer: LocalSigner, tower: Watchtower, request: dict[str, object]
) -> dict[str, Any]:
    """``signer``'s ``request`` to ``tower`` over real TCP, and the tower's reply."""
    assert tower.listen_port is not None
    return await tower_call(
        ("127.0.0.1", tower.listen_port),
        tower.address,
        signer,
        Prologue(tower.chain_id, Address(desks.adjudicator)),
        request,
        timeout=10,
    )


async def lease_at(
    desks: Desks, signer: LocalSigner, tower: Watchtower, cid: bytes, run: bytes | None = None
) -> int:
    """The figure ``tower`` holds for ``signer``'s channel (a read naming ``run`` claims it)."""
    request: dict[str, object] = {"t": "leases", "channels": [cid]}
    if run is not None:
        request["run"] = run
    reply = await ask_tower(desks, signer, tower, request)
    return int(reply["leases"][0])
