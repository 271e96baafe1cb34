"""Errors of the JSON-RPC client: the transport, malformed replies, and the typed error objects a
node returns (``map_rpc_error`` picks the most specific class)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.core.errors import ChainError


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
    :data:`adjudicator.rpc.MAX_REPLY_DEPTH`): a hostile or broken endpoint. Not retried on the
    same endpoint."""


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
