"""JSON-RPC client: error mapping, retries, helpers, dev methods."""

import json
import random
from collections.abc import Callable

import httpx
import pytest
import trio
from chain_helpers import INIT_CODE, NOPE_SELECTOR, RUNTIME

from adjudicator import rpc_errors as rpcmod
from adjudicator.devchain import DevChain, free_port
from adjudicator.rpc import RetryPolicy, RpcClient
from adjudicator.rpc_errors import (
    ExecutionReverted,
    InvalidParams,
    MethodNotFound,
    RateLimited,
    RpcError,
    RpcProtocolError,
    RpcTransportError,
    map_rpc_error,
)

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.005)


def mock_client(
    handler: Callable[[dict[str, object]], httpx.Response], retry: RetryPolicy = FAST
) -> tuple[RpcClient, list[dict[str, object]]]:
    seen: list[dict[str, object]] = []

    def transport(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        return handler(body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(transport))
    return RpcClient("http://rpc.invalid", retry=retry, client=client, rng=random.Random(1)), seen


def ok(body: dict[str, object], result: object) -> httpx.Response:
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})


async def test_basic_helpers(rpc: RpcClient, anvil: DevChain) -> None:
    assert await rpc.chain_id() == 31337
    head = await rpc.block_number()
    assert rpc.max_head_seen == head
    block = await rpc.get_block("latest")
    assert block is not None and block.base_fee_per_gas is not None
    same = await rpc.get_block(block.hash)
    assert same is not None and same.number == block.number
    assert await rpc.get_block(10**9) is None
    assert await rpc.get_balance(anvil.accounts[0]) > 0
    assert await rpc.get_transaction_count(anvil.accounts[5], "latest") == 0
    assert await rpc.max_priority_fee_per_gas() > 0
    assert await rpc.gas_price() > 0
    hist = await rpc.fee_history(1, "latest", [50])
    assert len(hist.base_fee_per_gas) == 2 and len(hist.reward) == 1
    assert [a.lower() for a in await rpc.accounts()] == [a.lower() for a in anvil.accounts]


async def test_request_ids_increase(rpc: RpcClient) -> None:
    client, seen = mock_client(lambda b: ok(b, "0x1"))
    async with client:
        await client.chain_id()
        await client.chain_id()
    assert [b["id"] for b in seen] == [1, 2]
    assert seen[0]["method"] == "eth_chainId" and seen[0]["jsonrpc"] == "2.0"


async def test_bad_method_maps_to_method_not_found(rpc: RpcClient) -> None:
    with pytest.raises(MethodNotFound) as info:
        await rpc.request("eth_noSuchMethod")
    assert info.value.code == -32601
    assert isinstance(info.value, RpcError)
    with pytest.raises(InvalidParams):
        await rpc.request("eth_getBalance", ["not-an-address", "latest"])


async def test_call_surfaces_revert_bytes(rpc: RpcClient) -> None:
    # eth_call with no `to` runs the data as init code: the runtime reverts on empty calldata.
    with pytest.raises(ExecutionReverted) as info:
        await rpc.call({"data": RUNTIME})
    assert info.value.revert_data == NOPE_SELECTOR + (42).to_bytes(32, "big")
    with pytest.raises(ExecutionReverted) as info:
        await rpc.estimate_gas({"data": RUNTIME})
    assert info.value.revert_data[:4] == NOPE_SELECTOR
    with pytest.raises(ExecutionReverted) as info:
        await rpc.call({"data": bytes.fromhex("60006000fd")})  # revert(0, 0)
    assert info.value.revert_data == b""
    # Running the init code returns the runtime.
    assert await rpc.call({"data": INIT_CODE}) == RUNTIME


async def test_transport_error_when_port_closed() -> None:
    port = free_port()
    attempts = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
    async with RpcClient(f"http://127.0.0.1:{port}", timeout=1.0, retry=attempts) as client:
        with trio.fail_after(10):
            with pytest.raises(RpcTransportError, match="ConnectError"):
                await client.chain_id()


async def test_retries_5xx_then_succeeds() -> None:
    calls = 0

    def handler(body: dict[str, object]) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            return httpx.Response(502, text="<html>bad gateway</html>")
        return ok(body, "0x7a69")

    client, seen = mock_client(handler)
    async with client:
        assert await client.chain_id() == 31337
    assert calls == 3
    assert len({b["id"] for b in seen}) == 3  # a fresh id per attempt


async def test_gives_up_after_attempts() -> None:
    client, seen = mock_client(lambda b: httpx.Response(503))
    async with client:
        with pytest.raises(RpcTransportError) as info:
            await client.block_number()
    assert info.value.status_code == 503
    assert len(seen) == FAST.attempts


async def test_timeouts_are_transport_errors_and_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 2, "result": "0x5"})

    client = RpcClient(
        "http://rpc.invalid", retry=FAST,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    async with client:
        assert await client.block_number() == 5
    assert calls == 2


async def test_rate_limits_retried_unless_disabled() -> None:
    state = {"n": 0}

    def handler(body: dict[str, object]) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 1:
            return httpx.Response(429, text="slow down")
        if state["n"] == 2:
            err = {"code": -32005, "message": "limit exceeded"}
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": err})
        return ok(body, "0x1")

    client, _ = mock_client(handler)
    async with client:
        assert await client.chain_id() == 1
    assert state["n"] == 3

    state["n"] = 0
    no_rl = RetryPolicy(attempts=4, base_delay=0.001, retry_rate_limits=False)
    client, seen = mock_client(handler, retry=no_rl)
    async with client:
        with pytest.raises(RateLimited):
            await client.chain_id()
    assert len(seen) == 1


async def test_rpc_errors_are_not_retried() -> None:
    def handler(body: dict[str, object]) -> httpx.Response:
        err = {"code": -32000, "message": "nonce too low", "data": None}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": err})

    client, seen = mock_client(handler)
    async with client:
        with pytest.raises(rpcmod.NonceTooLow):
            await client.send_raw_transaction(b"\x02\x01")
    assert len(seen) == 1


async def test_protocol_errors() -> None:
    client, _ = mock_client(lambda b: httpx.Response(200, json={"jsonrpc": "2.0", "id": 999}))
    async with client:
        with pytest.raises(RpcProtocolError, match="id"):
            await client.chain_id()
    client, _ = mock_client(lambda b: httpx.Response(200, json={"jsonrpc": "2.0", "id": b["id"]}))
    async with client:
        with pytest.raises(RpcProtocolError, match="neither"):
            await client.chain_id()


async def test_send_raw_already_known_is_success() -> None:
    def handler(body: dict[str, object]) -> httpx.Response:
        err = {"code": -32000, "message": "already known"}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": err})

    client, _ = mock_client(handler)
    async with client:
        h = await client.send_raw_transaction(b"\x02\xc0")
    assert h.startswith("0x") and len(h) == 66


def test_error_mapping_table() -> None:
    cases = {
        "replacement transaction underpriced": rpcmod.ReplacementUnderpriced,
        "insufficient funds for gas * price + value": rpcmod.SenderCannotPay,
        "max fee per gas less than block base fee": rpcmod.FeeTooLow,
        "Too Many Requests": RateLimited,
        "known transaction: 0xabc": rpcmod.AlreadyKnown,
        "something else": RpcError,
    }
    for message, cls in cases.items():
        assert type(map_rpc_error({"code": -32000, "message": message})) is cls
    nested = map_rpc_error({"code": -32015, "message": "reverted", "data": {"data": "0xdeadbeef"}})
    assert isinstance(nested, ExecutionReverted)
    assert map_rpc_error({"code": 3, "message": "x", "data": "0x01"}).revert_data == b"\x01"  # type: ignore[attr-defined]


async def test_dev_methods(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    start = await rpc.get_block("latest")
    assert start is not None
    await rpc.dev.increase_time(3600)
    await rpc.dev.mine(3)
    after = await rpc.get_block("latest")
    assert after is not None
    assert after.number == start.number + 3
    assert after.timestamp >= start.timestamp + 3600

    snap = await rpc.dev.snapshot()
    await rpc.dev.set_balance(anvil.accounts[7], 123)
    assert await rpc.get_balance(anvil.accounts[7]) == 123
    await rpc.dev.evm_mine()
    assert await rpc.dev.revert(snap) is True
    assert await rpc.get_balance(anvil.accounts[7]) == 10_000 * 10**18
    assert await rpc.block_number() == after.number

    await rpc.dev.set_automine(False)
    try:
        assert await rpc.dev.get_automine() is False
    finally:
        await rpc.dev.set_automine(True)


async def test_snapshot_fixture_reverts_changes_a(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    await rpc.dev.set_balance(anvil.accounts[8], 1)
    await rpc.dev.mine(5)


async def test_snapshot_fixture_reverts_changes_b(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    # Runs after _a (file order): its changes are gone.
    assert await rpc.get_balance(anvil.accounts[8]) == 10_000 * 10**18
