"""Fixtures and helpers of the watcher tests: a module-scoped anvil with two desks (the same as
tests/node), nodes on any RPC url, and chain-control helpers for automine-off scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from adjudicator.client import (
    ChannelView,
    both_signatures,
    connect_adjudicator,
    params_tuple,
    state_tuple,
)
from adjudicator.rpc import RpcClient
from adjudicator.tokens import balance_of
from channels import open_node
from channels.core.model import SignedState
from channels.core.signing import LocalSigner
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings
from channels.runtime.towerclient import TowerEndpoint
from tests.node._helpers import desk_partners
from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture, re-exported

FAST = NodeSettings(chain_poll_interval=0.05, update_timeout=10.0, open_timeout=30.0)
PERIOD = 120
DEPOSIT = 1_000_000


@asynccontextmanager
async def desk(
    desks: Desks,  # noqa: F811
    signer: LocalSigner,
    path: Path,
    *,
    listen: bool,
    url: str | None = None,
    settings: NodeSettings = FAST,
    watchtowers: Sequence[TowerEndpoint] = (),
) -> AsyncIterator[Node]:
    async with open_node(
        signer=signer,
        store=path,
        chain=url or desks.url,
        adjudicator=desks.adjudicator,
        listen=("127.0.0.1", 0) if listen else None,
        settings=settings,
        trust=desk_partners(desks, signer),
        watchtowers=watchtowers,
    ) as node:
        yield node


async def cheat_setup(
    desks: Desks,  # noqa: F811
    tmp_path: Path,
    *,
    alice_url: str | None = None,
) -> tuple[Channel, SignedState, SignedState]:
    """Open a channel, trade so that an older state favours Bob; return (Alice's channel handle
    after both nodes stopped, Bob's best old state, the latest state)."""
    async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False, url=alice_url) as a:
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as b:
            assert b.listen_port is not None
            ch = await a.open_channel(
                peer=("127.0.0.1", b.listen_port),
                peer_address=desks.bob.address,
                asset=desks.token,
                deposit=DEPOSIT,
                peer_deposit=DEPOSIT,
                oracle=desks.oracle.address,
                challenge_period=PERIOD,
            )
            bch = b.channel(ch.id)
            for _ in range(3):
                done = await bch.pay(10_000)
            await ch.wait_version(done.version)
            history = await b.store.history(ch.id)
            latest = a.channel(ch.id).latest
    old = max(history[:-1], key=lambda u: u.signed.state.balances[1]).signed
    assert old.state.balances[1] > latest.state.balances[1]
    return ch, old, latest


async def send_register(desks: Desks, rpc: RpcClient, params: object, signed: SignedState) -> str:  # noqa: F811
    """Bob sends ``register(signed)`` without waiting (automine may be off); returns the hash."""
    async with connect_adjudicator(desks.url, desks.adjudicator, desks.bob.secret) as bob:
        sig0, sig1 = both_signatures(signed)
        sent = await bob.send_transaction(
            "register", params_tuple(params), state_tuple(signed.state), sig0, sig1
        )
        return sent.hash


async def view(desks: Desks, cid: bytes) -> ChannelView:  # noqa: F811
    async with connect_adjudicator(desks.url, desks.adjudicator, None) as c:
        return await c.channel(cid)


async def wait_for(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 20.0
) -> None:
    with trio.fail_after(timeout):
        while True:
            result = predicate()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(0.05)


async def balances(desks: Desks, rpc: RpcClient) -> tuple[int, int]:  # noqa: F811
    return (
        await balance_of(rpc, desks.token, desks.alice.address),
        await balance_of(rpc, desks.token, desks.bob.address),
    )
