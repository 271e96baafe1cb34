"""Typed JSON-RPC values: hex quantities and data in both directions, and the frozen results
(``Log``, ``Receipt``, ``Block``, ``FeeHistory``) the client returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address

from .rpc_errors import RpcProtocolError

BlockId = int | str
"""A block number, or a tag: ``latest``, ``pending``, ``earliest``, ``safe``, ``finalized``,
or a 32-byte block hash as hex (only where the method accepts one)."""


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


def hex_data(data: bytes) -> str:
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
            out[key] = hex_data(bytes(value))
        else:
            out[key] = value
    return out
