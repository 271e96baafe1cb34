"""Ethereum JSON-RPC client over ``httpx.AsyncClient``, for use under trio: the transport
(retries, endpoint failover, bounded replies) and one typed method per call. Its errors are in
``adjudicator.rpc_errors``, its value types in ``adjudicator.rpc_types``, the dev-chain controls
(``rpc.dev``) in ``adjudicator.devrpc``.

Conventions used throughout the ``adjudicator`` adapters:

* addresses are ``0x`` hex strings (checksummed where this module produces them);
* transaction and block hashes are ``0x`` hex strings (lowercase);
* call data, revert data, log data and raw transactions are ``bytes``;
* quantities are ``int``.

Timeouts: each HTTP request has a per-attempt timeout (``RpcClient(timeout=...)``, overridable per
call). The total time a call may take, retries included, is bounded by the caller's trio cancel
scope (``trio.fail_after``/``trio.move_on_after``); retry back-off sleeps honour cancellation.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from channels.core import boundedjson

from .devrpc import DevRpc
from .rpc_errors import (
    AlreadyKnown,
    RateLimited,
    RpcProtocolError,
    RpcReplyRefused,
    RpcTransportError,
    map_rpc_error,
)
from .rpc_types import (
    Block,
    BlockId,
    FeeHistory,
    Log,
    Receipt,
    block_param,
    hex_data,
    parse_data,
    parse_quantity,
    to_hex_quantity,
    tx_params,
)

log = logging.getLogger("adjudicator.rpc")

MAX_REPLY_BYTES = 32 << 20
"""Default bound on one JSON-RPC reply (a large ``eth_getLogs`` page is a few MB)."""
MAX_REPLY_DEPTH = 32
"""Deepest nesting of a JSON-RPC reply (a block with full transactions is about 6 levels)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for transport errors (and rate limits). ``attempts`` counts the first try;
    back-off before retry k (1-based) is uniform in [0, min(max_delay, base_delay * 2**(k-1))]
    ("full jitter")."""

    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0
    retry_rate_limits: bool = True

    def delay(self, retry: int, rng: random.Random) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        return rng.uniform(0.0, cap)


NO_RETRY = RetryPolicy(attempts=1)


class RpcClient:
    """JSON-RPC over HTTP. Open with ``async with RpcClient(url) as rpc`` or
    ``async with open_rpc(url) as rpc``; dev-only methods live in ``rpc.dev``."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.urls: tuple[str, ...] = (url,) if isinstance(url, str) else tuple(url)
        if not self.urls:
            raise ValueError("RpcClient needs at least one endpoint URL")
        self._active = 0
        self.failovers = 0
        """How often a failing endpoint made the client move to the next one."""
        self.max_reply_bytes = max_reply_bytes
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(
            headers=dict(headers or {}), timeout=timeout
        )
        self._ids = itertools.count(1)
        self._rng = rng if rng is not None else random.Random()
        self.max_head_seen = -1
        """Highest block number ``block_number()`` has returned (a lagging backend behind a
        load balancer may answer with an older head; callers can use ``max(head seen)``)."""
        self.dev = DevRpc(self)

    @property
    def url(self) -> str:
        """The endpoint in use (the first of ``urls`` until it fails)."""
        return self.urls[self._active]

    def _fail_over(self, exc: Exception) -> None:
        failed = self.url
        self._active = (self._active + 1) % len(self.urls)
        self.failovers += 1
        log.warning("RPC endpoint %s failed (%s); using %s", failed, exc, self.url)

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # ---- core ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Sequence[Any] = (),
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Send one request; return its ``result`` or raise an ``RpcError`` subclass.

        Transport failures (and rate limits, if so configured) are retried with jittered
        exponential back-off; after the last attempt ``RpcTransportError`` (or ``RateLimited``)
        is raised. Other JSON-RPC errors are raised at once. With several endpoints, a failing
        one (transport error, rate limit, a reply that breaks a bound) hands over to the next at
        once; the back-off applies after each round of all of them.
        """
        policy = retry if retry is not None else self.retry
        endpoints = len(self.urls)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._request_once(method, params, timeout)
            except (RpcTransportError, RateLimited, RpcReplyRefused) as exc:
                if isinstance(exc, RpcReplyRefused):
                    retryable = endpoints > 1  # the same endpoint would send it again
                else:
                    retryable = isinstance(exc, RpcTransportError) or policy.retry_rate_limits
                if endpoints > 1:
                    self._fail_over(exc)
                if not retryable or attempt >= policy.attempts * endpoints:
                    raise
                if attempt % endpoints == 0:
                    await trio.sleep(policy.delay(attempt // endpoints, self._rng))

    async def _request_once(
        self, method: str, params: Sequence[Any], timeout: float | None
    ) -> Any:
        req_id = next(self._ids)
        payload = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": list(params)}
        try:
            async with self._client.stream(
                "POST",
                self.url,
                content=json.dumps(payload),
                headers={"content-type": "application/json"},
                timeout=self.timeout if timeout is None else timeout,
            ) as resp:
                if resp.status_code == 429:
                    raise RateLimited(429, "HTTP 429 Too Many Requests", None, method=method)
                if resp.status_code >= 500:
                    raise RpcTransportError(
                        f"{method}: HTTP {resp.status_code}", status_code=resp.status_code
                    )
                raw = await self._read_bounded(resp, method)
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            raise RpcTransportError(f"{method}: {type(exc).__name__}: {exc}") from exc
        try:
            body = boundedjson.loads(raw, max_bytes=self.max_reply_bytes, max_depth=MAX_REPLY_DEPTH)
        except boundedjson.JsonMalformed as exc:
            if resp.status_code >= 400:
                raise RpcProtocolError(f"{method}: HTTP {resp.status_code}") from exc
            raise RpcTransportError(
                f"{method}: response is not JSON", status_code=resp.status_code
            ) from exc
        except boundedjson.JsonRejected as exc:
            raise RpcReplyRefused(f"{method}: {exc}") from None
        if not isinstance(body, dict):
            raise RpcProtocolError(f"{method}: unexpected response {body!r:.200}")
        error = body.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise RpcProtocolError(f"{method}: malformed error {error!r:.200}")
            raise map_rpc_error(error, method)
        if body.get("id") != req_id:
            raise RpcProtocolError(f"{method}: response id {body.get('id')!r} != {req_id}")
        if "result" not in body:
            raise RpcProtocolError(f"{method}: response has neither result nor error")
        return body["result"]

    async def _read_bounded(self, resp: httpx.Response, method: str) -> bytes:
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_reply_bytes:
            raise RpcReplyRefused(
                f"{method}: reply of {declared} bytes is longer than {self.max_reply_bytes}"
            )
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > self.max_reply_bytes:
                raise RpcReplyRefused(
                    f"{method}: reply longer than {self.max_reply_bytes} bytes"
                )
        return bytes(body)

    # ---- eth_* helpers ---------------------------------------------------------------------

    async def chain_id(self) -> int:
        return parse_quantity(await self.request("eth_chainId"))

    async def block_number(self) -> int:
        """The node's head as it answers now (may go backwards: see ``max_head_seen``)."""
        head = parse_quantity(await self.request("eth_blockNumber"))
        self.max_head_seen = max(self.max_head_seen, head)
        return head

    async def get_block(self, block: BlockId = "latest", *, full: bool = False) -> Block | None:
        if isinstance(block, str) and len(block) == 66:
            res = await self.request("eth_getBlockByHash", [block, full])
        else:
            res = await self.request("eth_getBlockByNumber", [block_param(block), full])
        return None if res is None else Block.from_rpc(res)

    async def get_balance(self, address: str, block: BlockId = "latest") -> int:
        return parse_quantity(await self.request("eth_getBalance", [address, block_param(block)]))

    async def get_code(self, address: str, block: BlockId = "latest") -> bytes:
        return parse_data(await self.request("eth_getCode", [address, block_param(block)]))

    async def get_storage_at(self, address: str, slot: int, block: BlockId = "latest") -> bytes:
        res = await self.request(
            "eth_getStorageAt", [address, to_hex_quantity(slot), block_param(block)]
        )
        return parse_data(res)

    async def get_transaction_count(self, address: str, block: BlockId = "pending") -> int:
        res = await self.request("eth_getTransactionCount", [address, block_param(block)])
        return parse_quantity(res)

    async def call(self, tx: Mapping[str, Any], block: BlockId = "latest") -> bytes:
        """``eth_call``. ``tx`` takes Python values (see ``tx_params``). A revert raises
        ``ExecutionReverted`` carrying the raw revert bytes."""
        return parse_data(await self.request("eth_call", [tx_params(tx), block_param(block)]))

    async def estimate_gas(self, tx: Mapping[str, Any], block: BlockId | None = None) -> int:
        params: list[Any] = [tx_params(tx)]
        if block is not None:
            params.append(block_param(block))
        return parse_quantity(await self.request("eth_estimateGas", params))

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast a signed transaction; return its hash. "already known" counts as success
        (e.g. a retry after a lost response), so this is idempotent."""
        tx_hash = "0x" + keccak(raw).hex()
        try:
            res = await self.request("eth_sendRawTransaction", [hex_data(raw)])
        except AlreadyKnown:
            return tx_hash
        if isinstance(res, str) and res.lower() != tx_hash:
            raise RpcProtocolError(f"node returned hash {res} for tx {tx_hash}")
        return tx_hash

    async def get_transaction(self, tx_hash: str) -> Mapping[str, Any] | None:
        res = await self.request("eth_getTransactionByHash", [tx_hash])
        if res is not None and not isinstance(res, dict):
            raise RpcProtocolError(f"bad transaction object {res!r:.200}")
        return res

    async def get_transaction_receipt(self, tx_hash: str) -> Receipt | None:
        res = await self.request("eth_getTransactionReceipt", [tx_hash])
        return None if res is None else Receipt.from_rpc(res)

    async def get_logs(
        self,
        *,
        address: str | Sequence[str] | None = None,
        topics: Sequence[bytes | Sequence[bytes] | None] | None = None,
        from_block: BlockId | None = None,
        to_block: BlockId | None = None,
        block_hash: str | None = None,
    ) -> list[Log]:
        flt: dict[str, Any] = {}
        if address is not None:
            flt["address"] = address if isinstance(address, str) else list(address)
        if topics is not None:
            flt["topics"] = [_topic_filter(t) for t in topics]
        if block_hash is not None:
            if from_block is not None or to_block is not None:
                raise ValueError("block_hash excludes from_block/to_block")
            flt["blockHash"] = block_hash
        if from_block is not None:
            flt["fromBlock"] = block_param(from_block)
        if to_block is not None:
            flt["toBlock"] = block_param(to_block)
        res = await self.request("eth_getLogs", [flt])
        return [Log.from_rpc(x) for x in res]

    async def gas_price(self) -> int:
        return parse_quantity(await self.request("eth_gasPrice"))

    async def max_priority_fee_per_gas(self) -> int:
        return parse_quantity(await self.request("eth_maxPriorityFeePerGas"))

    async def fee_history(
        self,
        block_count: int,
        newest_block: BlockId = "latest",
        reward_percentiles: Sequence[float] = (),
    ) -> FeeHistory:
        res = await self.request(
            "eth_feeHistory",
            [to_hex_quantity(block_count), block_param(newest_block), list(reward_percentiles)],
        )
        return FeeHistory(
            oldest_block=parse_quantity(res["oldestBlock"]),
            base_fee_per_gas=tuple(parse_quantity(x) for x in res.get("baseFeePerGas", [])),
            gas_used_ratio=tuple(float(x) for x in res.get("gasUsedRatio", [])),
            reward=tuple(
                tuple(parse_quantity(x) for x in row) for row in (res.get("reward") or [])
            ),
        )

    async def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in await self.request("eth_accounts")]


def _topic_filter(t: bytes | Sequence[bytes] | None) -> Any:
    if t is None:
        return None
    if isinstance(t, bytes | bytearray):
        return hex_data(bytes(t))
    return [hex_data(bytes(x)) for x in t]



@asynccontextmanager
async def open_rpc(
    url: str | Sequence[str], *, timeout: float = 10.0, retry: RetryPolicy | None = None
) -> AsyncIterator[RpcClient]:
    """``async with open_rpc(url) as rpc: ...`` closes the HTTP connection pool on exit."""
    client = RpcClient(url, timeout=timeout, retry=retry)
    try:
        yield client
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()
