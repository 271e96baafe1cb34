"""Several RPC endpoints: when one fails or turns hostile, the next takes over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from adjudicator import devchain
from adjudicator.rpc import RpcClient
from adjudicator.rpc_errors import RpcTransportError
from channels import open_node
from channels.runtime.channel import Channel
from channels.runtime.node import Node
from tests.node._helpers import FAST, desk, desk_partners, open_channel
from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture
from tests.watcher.faultproxy import Rule

from .test_rpc_hostile import proxy_in_front_of


@pytest.mark.parametrize("fault", ["http500", "deep", "timeout"])
async def test_client_fails_over_to_the_next_endpoint(anvil: devchain.DevChain, fault: str) -> None:
    with trio.fail_after(60):
        async with proxy_in_front_of(anvil.url) as bad:
            bad.rules = [Rule(None, fault, delay=5.0)]
            async with RpcClient([bad.url, anvil.url], timeout=1.0) as rpc:
                assert await rpc.chain_id() == anvil.chain_id
                assert rpc.url == anvil.url and rpc.failovers == 1
                assert await rpc.block_number() >= 0  # stays on the good one
                assert rpc.failovers == 1


async def test_all_endpoints_down_is_still_an_error(anvil: devchain.DevChain) -> None:
    with trio.fail_after(60):
        async with proxy_in_front_of(anvil.url) as one, proxy_in_front_of(anvil.url) as two:
            one.rules = two.rules = [Rule(None, "http500")]
            async with RpcClient([one.url, two.url]) as rpc:
                with pytest.raises(RpcTransportError):
                    await rpc.chain_id()
                assert rpc.failovers >= 2


async def test_node_keeps_watching_when_its_first_endpoint_turns_hostile(
    desks: Desks,  # noqa: F811
    tmp_path: Path,
) -> None:
    with trio.fail_after(90):
        async with proxy_in_front_of(desks.url) as first:
            first.enabled = False
            async with open_two(desks, tmp_path, [first.url, desks.url]) as (alice, ch):
                first.rules = [Rule(None, "deep")]
                first.enabled = True
                polls = alice.watcher.polls
                while alice.watcher.polls < polls + 10:
                    await trio.sleep(0.05)
                assert alice.chain.rpc.failovers >= 1
                assert alice.watcher.health.failures == 0
                await ch.pay(5)


@asynccontextmanager
async def open_two(
    desks: Desks,  # noqa: F811
    tmp_path: Path,
    urls: list[str],
) -> AsyncIterator[tuple[Node, Channel]]:
    """Alice's node on ``urls`` (in turn), Bob's on anvil, one open channel between them."""
    async with (
        open_node(
            signer=desks.alice,
            store=tmp_path / "a.sqlite",
            chain=urls,
            adjudicator=desks.adjudicator,
            settings=FAST,
            trust=desk_partners(desks, desks.alice),
        ) as alice,
        desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
    ):
        ch, _ = await open_channel(alice, bob, desks)
        yield alice, ch
