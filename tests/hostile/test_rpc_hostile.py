"""The JSON-RPC client against a hostile endpoint: a real HTTP proxy in front of a real anvil
answers with deeply nested, huge, truncated, non-JSON and wrongly typed replies. Each becomes a
typed ``ChainError``; the process survives and the next honest reply is read normally."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from adjudicator import devchain
from adjudicator.rpc import NO_RETRY, RpcClient
from adjudicator.rpc_errors import RpcProtocolError, RpcReplyRefused, RpcTransportError
from channels.core.errors import ChainError
from tests.watcher.faultproxy import FaultProxy, Rule


@asynccontextmanager
async def proxy_in_front_of(url: str) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(url)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("fault", "size", "expected"),
    [
        ("deep", 0, RpcReplyRefused),
        ("deep", 2_000_000, RpcReplyRefused),
        ("huge", 40 << 20, RpcReplyRefused),
        ("truncated", 0, RpcTransportError),
        ("not_json", 0, RpcTransportError),
        ("wrong_type", 0, RpcProtocolError),
    ],
)
async def test_hostile_reply_is_a_typed_error(
    anvil: devchain.DevChain, fault: str, size: int, expected: type[ChainError]
) -> None:
    with trio.fail_after(60):
        async with proxy_in_front_of(anvil.url) as proxy:
            proxy.rules = [Rule("eth_blockNumber", fault, limit=1, size=size)]
            async with RpcClient(proxy.url, retry=NO_RETRY) as rpc:
                with pytest.raises(expected):
                    await rpc.block_number()
                assert proxy.injected[fault] == 1
                assert await rpc.block_number() >= 0  # the next honest reply is fine


async def test_reply_bound_is_configurable(anvil: devchain.DevChain) -> None:
    with trio.fail_after(30):
        async with proxy_in_front_of(anvil.url) as proxy:
            proxy.rules = [Rule("eth_chainId", "huge", limit=1, size=5000)]
            async with RpcClient(proxy.url, retry=NO_RETRY, max_reply_bytes=4096) as rpc:
                with pytest.raises(RpcReplyRefused, match="longer than 4096"):
                    await rpc.chain_id()
