"""Ethereum JSON-RPC client over ``httpx.AsyncClient``, for use under trio.

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
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from channels.core import boundedjson
from channels.core.errors import ChainError

log = logging.getLogger("adjudicator.rpc")

MAX_REPLY_BYTES = 32 << 20
"""Default bound on one JSON-RPC reply (a large ``eth_getLogs`` page is a few MB)."""
MAX_REPLY_DEPTH = 32
"""Deepest nesting of a JSON-RPC reply (a block with full transactions is about 6 levels)."""

BlockId = int | str
"""A block number, or a tag: ``latest``, ``pending``, ``earliest``, ``safe``, ``finalized``,
or a 32-byte block hash as hex (only where the method accepts one)."""


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class RpcTransportError(ChainError):
    """The request did not produce a JSON-RPC answer: connection refused or reset, timeout,
    HTTP 5xx/429, or a body that is not JSON. Retried by the client before it is raised."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RpcProtocolError(ChainError):
    """The node answered, but not with a well-formed JSON-RPC response (wrong id, no result)."""


class RpcReplyRefused(RpcProtocolError):
    """The reply broke a bound (longer than ``RpcClient.max_reply_bytes``, or nested deeper than
    :data:`MAX_REPLY_DEPTH`): a hostile or broken endpoint. Not retried on the same endpoint."""


class RpcError(ChainError):
    """A JSON-RPC error object returned by the node."""

    def __init__(self, code: int, message: str, data: Any = None, *, method: str = "") -> None:
        super().__init__(f"{method + ': ' if method else ''}[{code}] {message}")
        self.code = code
        self.message = message
        self.data = data
        self.method = method


class MethodNotFound(RpcError):
    """code -32601: the node does not implement the method."""


class InvalidParams(RpcError):
    """code -32602."""


class RateLimited(RpcError):
    """The node (or a gateway in front of it) asks us to slow down. Retried like transport
    errors when ``RetryPolicy.retry_rate_limits`` is set."""


class ExecutionReverted(RpcError):
    """``eth_call``/``eth_estimateGas`` (or a node that simulates on send) reverted.

    ``revert_data`` is the raw revert payload (custom error selector + args, ``Error(string)``,
    ``Panic(uint256)``, or empty). ``decoded`` may be filled in by a caller that knows the ABI
    (see ``adjudicator.abi.ContractAbi.decode_error``).
    """

    def __init__(
        self, code: int, message: str, data: Any = None, *, method: str = "",
        revert_data: bytes = b"",
    ) -> None:
        super().__init__(code, message, data, method=method)
        self.revert_data = revert_data
        self.decoded: Any = None


class NonceTooLow(RpcError):
    """The transaction's nonce is already used (mined)."""


class AlreadyKnown(RpcError):
    """The node already has this exact transaction in its pool."""


class ReplacementUnderpriced(RpcError):
    """A pending transaction with this nonce exists and the new one does not pay enough more."""


class SenderCannotPay(RpcError):
    """The sending account cannot pay value + gas * max fee (not the channel's funds)."""


class FeeTooLow(RpcError):
    """The max fee is below the node's minimum (e.g. below the base fee, where a node refuses)."""


_RATE_LIMIT_CODES = frozenset({-32005, 429})


def _hex_to_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        s = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            return bytes.fromhex(s)
        except ValueError:
            return b""
    return b""


def map_rpc_error(error: Mapping[str, Any], method: str = "") -> RpcError:
    """Turn a JSON-RPC ``error`` object into the most specific ``RpcError`` subclass."""
    code_raw = error.get("code", 0)
    code = code_raw if isinstance(code_raw, int) else 0
    message = str(error.get("message", ""))
    data = error.get("data")
    low = message.lower()
    if code == 3 or "execution reverted" in low or low.startswith("revert"):
        raw = data
        if isinstance(data, Mapping):  # some nodes nest it: {"data": "0x.."} or {"result": ..}
            raw = data.get("data", data.get("result"))
        return ExecutionReverted(code, message, data, method=method, revert_data=_hex_to_bytes(raw))
    if code == -32601:
        return MethodNotFound(code, message, data, method=method)
    if code in _RATE_LIMIT_CODES or "rate limit" in low or "too many requests" in low:
        return RateLimited(code, message, data, method=method)
    if "nonce too low" in low or "nonce has already been used" in low:
        return NonceTooLow(code, message, data, method=method)
    if "already known" in low or "known transaction" in low or "already imported" in low:
        return AlreadyKnown(code, message, data, method=method)
    if "replacement transaction underpriced" in low or "replacement underpriced" in low:
        return ReplacementUnderpriced(code, message, data, method=method)
    if "insufficient funds" in low:
        return SenderCannotPay(code, message, data, method=method)
    if "max fee per gas less than block base fee" in low or "fee cap less than" in low or (
        "underpriced" in low
    ):
        return FeeTooLow(code, message, data, method=method)
    if code == -32602:
        return InvalidParams(code, message, data, method=method)
    return RpcError(code, message, data, method=method)


# --------------------------------------------------------------------------------------------
# Typed results
# --------------------------------------------------------------------------------------------


def to_hex_quantity(value: int) -> str:
    if value < 0:
        raise ValueError("quantities are non-negative")
    return hex(value)


def block_param(block: BlockId) -> str:
    if isinstance(block, bool):
        raise TypeError("block must be an int or a tag")
    if isinstance(block, int):
        return to_hex_quantity(block)
    return block


def parse_quantity(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return int(value, 16)
    raise RpcProtocolError(f"expected a hex quantity, got {value!r}")


def parse_data(value: Any) -> bytes:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise RpcProtocolError(f"expected 0x hex data, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise RpcProtocolError(f"bad hex data {value!r}") from exc


def _opt_quantity(value: Any) -> int | None:
    return None if value is None else parse_quantity(value)


def _hash(value: Any) -> str:
    if not isinstance(value, str):
        raise RpcProtocolError(f"expected a hash, got {value!r}")
    return value.lower()


def _hex_data(data: bytes) -> str:
    return "0x" + data.hex()


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int | None
    block_hash: str | None
    transaction_hash: str | None
    transaction_index: int | None
    log_index: int | None
    removed: bool

    @classmethod
    def from_rpc(cls, obj: Mapping[str, Any]) -> Log:
        return cls(
            address=to_checksum_address(obj["address"]),
            topics=tuple(parse_data(t) for t in obj.get("topics", [])),
            data=parse_data(obj.get("data", "0x")),
            block_number=_opt_quantity(obj.get("blockNumber")),
            block_hash=None if obj.get("blockHash") is None else _hash(obj["blockHash"]),
            transaction_hash=(
                None if obj.get("transactionHash") is None else _hash(obj["transactionHash"])
            ),
            transaction_index=_opt_quantity(obj.get("transactionIndex")),
            log_index=_opt_quantity(obj.get("logIndex")),
            removed=bool(obj.get("removed", False)),
        )


@dataclass(frozen=True)
class Receipt:
    transaction_hash: str
    block_number: int
    block_hash: str
    transaction_index: int
    status: int
    gas_used: int
    effective_gas_price: int | None
    from_address: str
    to_address: str | None
    contract_address: str | None
    logs: tuple[Log, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def succeeded(self) -> bool:
        return self.status == 1

    @classmethod
    def from_rpc(cls, obj: Mapping[str, Any]) -> Receipt:
        to = obj.get("to")
        created = obj.get("contractAddress")
        return cls(
            transaction_hash=_hash(obj["transactionHash"]),
            block_number=parse_quantity(obj["blockNumber"]),
            block_hash=_hash(obj["blockHash"]),
            transaction_index=parse_quantity(obj["transactionIndex"]),
            status=parse_quantity(obj.get("status", "0x1")),
            gas_used=parse_quantity(obj["gasUsed"]),
            effective_gas_price=_opt_quantity(obj.get("effectiveGasPrice")),
            from_address=to_checksum_address(obj["from"]),
            to_address=None if to is None else to_checksum_address(to),
            contract_address=None if created is None else to_checksum_address(created),
            logs=tuple(Log.from_rpc(x) for x in obj.get("logs", [])),
            raw=obj,
        )


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee_per_gas: int | None
    gas_limit: int
    gas_used: int
    transactions: tuple[Any, ...]
    """Hashes (hex str), or transaction objects (dicts) when fetched with ``full=True``."""
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_rpc(cls, obj: Mapping[str, Any]) -> Block:
        return cls(
            number=parse_quantity(obj["number"]),
            hash=_hash(obj["hash"]),
            parent_hash=_hash(obj["parentHash"]),
            timestamp=parse_quantity(obj["timestamp"]),
            base_fee_per_gas=_opt_quantity(obj.get("baseFeePerGas")),
            gas_limit=parse_quantity(obj["gasLimit"]),
            gas_used=parse_quantity(obj["gasUsed"]),
            transactions=tuple(obj.get("transactions", [])),
            raw=obj,
        )


@dataclass(frozen=True)
class FeeHistory:
    oldest_block: int
    base_fee_per_gas: tuple[int, ...]
    """One entry per block, plus the next block's base fee as the last entry."""
    gas_used_ratio: tuple[float, ...]
    reward: tuple[tuple[int, ...], ...]


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


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
            res = await self.request("eth_sendRawTransaction", [_hex_data(raw)])
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
        return _hex_data(bytes(t))
    return [_hex_data(bytes(x)) for x in t]


_QUANTITY_KEYS = frozenset(
    {"value", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "chainId"}
)


def tx_params(tx: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a transaction-call object with Python values (int quantities, bytes data) into
    JSON-RPC form. Already-hex strings pass through."""
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if value is None:
            continue
        if key in _QUANTITY_KEYS and isinstance(value, int):
            out[key] = to_hex_quantity(value)
        elif key in ("data", "input") and isinstance(value, bytes | bytearray):
            out[key] = _hex_data(bytes(value))
        else:
            out[key] = value
    return out


class DevRpc:
    """Methods only dev nodes (anvil) implement. Never use these against a real chain."""

    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc

    async def increase_time(self, seconds: int) -> int:
        """``evm_increaseTime``: shift the next block's timestamp; returns the total offset."""
        return parse_quantity(await self._rpc.request("evm_increaseTime", [seconds]))

    async def set_next_block_timestamp(self, timestamp: int) -> None:
        await self._rpc.request("evm_setNextBlockTimestamp", [timestamp])

    async def evm_mine(self, timestamp: int | None = None) -> None:
        """Mine one block (optionally with the given timestamp)."""
        await self._rpc.request("evm_mine", [] if timestamp is None else [timestamp])

    async def mine(self, blocks: int = 1, interval: int | None = None) -> None:
        """``anvil_mine``: mine ``blocks`` blocks, ``interval`` seconds apart."""
        params: list[Any] = [to_hex_quantity(blocks)]
        if interval is not None:
            params.append(to_hex_quantity(interval))
        await self._rpc.request("anvil_mine", params)

    async def snapshot(self) -> str:
        res = await self._rpc.request("evm_snapshot")
        return str(res)

    async def revert(self, snapshot_id: str) -> bool:
        """Revert to a snapshot. The snapshot is consumed; take a new one to revert again."""
        return bool(await self._rpc.request("evm_revert", [snapshot_id]))

    async def set_automine(self, enabled: bool) -> None:
        await self._rpc.request("anvil_setAutomine", [enabled])

    async def get_automine(self) -> bool:
        return bool(await self._rpc.request("anvil_getAutomine"))

    async def set_interval_mining(self, seconds: int) -> None:
        await self._rpc.request("anvil_setIntervalMining", [seconds])

    async def drop_transaction(self, tx_hash: str) -> None:
        await self._rpc.request("anvil_dropTransaction", [tx_hash])

    async def drop_all_transactions(self) -> None:
        await self._rpc.request("anvil_dropAllTransactions")

    async def set_balance(self, address: str, wei: int) -> None:
        await self._rpc.request("anvil_setBalance", [address, to_hex_quantity(wei)])

    async def set_code(self, address: str, code: bytes) -> None:
        await self._rpc.request("anvil_setCode", [address, _hex_data(code)])

    async def set_next_block_base_fee_per_gas(self, wei: int) -> None:
        await self._rpc.request("anvil_setNextBlockBaseFeePerGas", [to_hex_quantity(wei)])

    async def reorg(self, depth: int, txs: Sequence[tuple[bytes, int]] = ()) -> None:
        """``anvil_reorg``: replace the last ``depth`` blocks; ``txs`` are (signed raw tx,
        block offset from the new base) pairs included in the new blocks."""
        await self._rpc.request(
            "anvil_reorg", [depth, [[_hex_data(raw), offset] for raw, offset in txs]]
        )

    async def impersonate(self, address: str) -> None:
        await self._rpc.request("anvil_impersonateAccount", [address])

    async def stop_impersonating(self, address: str) -> None:
        await self._rpc.request("anvil_stopImpersonatingAccount", [address])


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
