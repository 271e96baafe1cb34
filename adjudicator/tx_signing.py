"""The gas account behind a signer: whatever holds the key signs EIP-1559 transactions.

A local key signs inline. A signer that declares ``blocking = True`` (a remote signer speaking
``eth_signTransaction``) is called from a worker thread so the trio loop keeps running. What an
outside signer returns is hostile until checked: the raw transaction must decode, carry exactly
the fields we asked it to sign, and be signed by the account's address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import trio
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from channels.signers.errors import BadSignerReply

__all__ = ["KeyTransactionSigner", "TransactionSigner", "sign_transaction"]

#: A signed transaction is its calldata plus a few hundred bytes; anything far larger is refused.
_RAW_OVERHEAD = 1024
_FIELDS = ("chainId", "nonce", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "value")


@runtime_checkable
class TransactionSigner(Protocol):
    """Holds the gas key: signs an EIP-1559 transaction given its fields (eth-account's names:
    type, chainId, nonce, gas, maxFeePerGas, maxPriorityFeePerGas, to, value, data) and returns
    the raw signed transaction."""

    @property
    def address(self) -> bytes: ...

    def sign_transaction(self, fields: dict[str, Any]) -> bytes: ...


class KeyTransactionSigner:
    """A raw private key held in this process (eth-account)."""

    __slots__ = ("_account",)

    def __init__(self, private_key: str | bytes) -> None:
        self._account = Account.from_key(private_key)

    @property
    def address(self) -> bytes:
        return bytes.fromhex(self._account.address[2:])

    def sign_transaction(self, fields: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(fields).raw_transaction)

    def __repr__(self) -> str:  # never show the key
        return f"KeyTransactionSigner({self._account.address})"


def check_signed_transaction(raw: object, fields: Mapping[str, Any], sender: bytes) -> str:
    """Refuse a raw transaction unless it is exactly ``fields`` signed by ``sender``; return its
    hash (0x hex)."""
    if type(raw) is not bytes:
        raise BadSignerReply("the signed transaction is not bytes")
    data = bytes(fields.get("data", b""))
    if not raw or len(raw) > len(data) + _RAW_OVERHEAD or raw[0] != 2:
        raise BadSignerReply("the signer returned no EIP-1559 transaction of a plausible size")
    try:
        decoded = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        signer = Account.recover_transaction(raw)
    except Exception as exc:  # rlp, eth-keys and eth-account raise many types on bad input
        raise BadSignerReply(
            f"the signed transaction does not decode: {type(exc).__name__}"
        ) from None
    for name in _FIELDS:
        if decoded.get(name) != fields.get(name, 0):
            raise BadSignerReply(f"the signer changed the transaction's {name}")
    to = fields.get("to")
    want_to = b"" if to is None else bytes.fromhex(str(to)[2:])
    if bytes(decoded.get("to", b"")) != want_to or bytes(decoded.get("data", b"")) != data:
        raise BadSignerReply("the signer changed the transaction's recipient or calldata")
    if tuple(decoded.get("accessList", ())):
        raise BadSignerReply("the signer added an access list")
    if bytes.fromhex(signer[2:]) != sender:
        raise BadSignerReply("the transaction is signed by another account than the signer's")
    return "0x" + keccak(raw).hex()


async def sign_transaction(
    signer: TransactionSigner, fields: Mapping[str, Any]
) -> tuple[bytes, str]:
    """Have ``signer`` sign ``fields``; returns (raw, hash). Checked unless the key is local."""
    request = dict(fields)
    if getattr(signer, "blocking", False) is True:
        raw = await trio.to_thread.run_sync(signer.sign_transaction, request)
    else:
        raw = signer.sign_transaction(request)
    if isinstance(signer, KeyTransactionSigner):
        return raw, "0x" + keccak(raw).hex()
    return raw, check_signed_transaction(raw, fields, bytes(signer.address))
