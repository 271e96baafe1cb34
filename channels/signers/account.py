"""An eth-account ``LocalAccount`` as a channel signer and a gas signer.

It signs the typed-data JSON it is handed (``eth_signTypedData_v4`` semantics, through
eth-account's generic encoder), never a bare digest, and EIP-1559 transactions. Keys loaded from
an encrypted keystore (:mod:`channels.signers.keystore`) end up here.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from channels.core.model import Address
from channels.signers.errors import KeySourceError

__all__ = ["AccountSigner"]


class AccountSigner:
    """Wraps an eth-account ``LocalAccount``; signs typed data and transactions in-process."""

    __slots__ = ("_account", "_address")

    def __init__(self, account: LocalAccount) -> None:
        if not isinstance(account, LocalAccount):
            raise KeySourceError("AccountSigner needs an eth-account LocalAccount")
        self._account = account
        self._address = Address(bytes.fromhex(account.address[2:]))

    @classmethod
    def from_key(cls, secret: bytes) -> AccountSigner:
        try:
            return cls(Account.from_key(secret))
        except (ValueError, TypeError) as exc:
            raise KeySourceError(f"not a valid private key ({type(exc).__name__})") from None

    @property
    def address(self) -> Address:
        return self._address

    def sign_typed_data(self, typed_data: dict[str, Any], digest: bytes) -> bytes:
        # The caller (channels.core.signing.sign) checks the result against ``digest``.
        return bytes(self._account.sign_typed_data(full_message=typed_data).signature)

    def sign_transaction(self, fields: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(fields).raw_transaction)

    def __repr__(self) -> str:  # never show the key
        return f"AccountSigner({self._account.address})"
