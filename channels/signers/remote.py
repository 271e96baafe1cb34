"""A remote signer over JSON-RPC: any endpoint speaking the standard wallet methods
(``eth_accounts``, ``eth_signTypedData_v4``, ``eth_signTransaction``), such as a wallet bridge,
Clef, or a signing service in front of a KMS or an HSM.

The endpoint is hostile until checked. Every call has a timeout; a reply is read up to
``max_reply`` bytes and no further, must be one JSON-RPC response to our request, and its result
must have the exact shape asked for (65-byte signature, a raw transaction). The signature itself
is then checked by the caller against the digest and our address
(:func:`channels.core.signing.sign`), a transaction against the fields we asked to sign
(:mod:`adjudicator.tx_signing`). Calls block on HTTP, so the signer declares ``blocking = True``
and the node calls it from a worker thread.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from channels.core import boundedjson
from channels.core.model import Address
from channels.signers.errors import BadSignerReply, KeySourceError, SignerUnavailable

__all__ = ["RemoteSigner"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_REPLY = 256 * 1024
_MAX_ACCOUNTS = 256
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _quantity(value: int) -> str:
    return hex(int(value))


class RemoteSigner:
    """Signs through a JSON-RPC endpoint for one of its accounts.

    ``address``: the account to use (checked against ``eth_accounts``); without it the endpoint
    must hold exactly one account. ``headers`` go with every request (e.g. an authorization
    token). Build it with :meth:`connect`, which asks the endpoint for its accounts.
    """

    blocking = True

    def __init__(
        self,
        url: str,
        address: Address,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_reply: int = DEFAULT_MAX_REPLY,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise KeySourceError(f"remote signer URL must be http:// or https://, got {url!r}")
        self.url = url
        self._address = Address(bytes(address))
        self._max_reply = max_reply
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, headers=dict(headers or {}))
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one request at a time: calls come from worker threads

    @classmethod
    def connect(
        cls,
        url: str,
        address: Address | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_reply: int = DEFAULT_MAX_REPLY,
        headers: Mapping[str, str] | None = None,
    ) -> RemoteSigner:
        """Ask the endpoint for its accounts and pick ``address`` (or its only account)."""
        probe = cls(url, Address(bytes(20)), timeout=timeout, max_reply=max_reply, headers=headers)
        try:
            accounts = probe.accounts()
        finally:
            probe.close()
        if address is None:
            if len(accounts) != 1:
                raise KeySourceError(
                    f"the signer at {url} holds {len(accounts)} accounts; say which one "
                    "(address = ...)"
                )
            address = accounts[0]
        elif bytes(address) not in {bytes(a) for a in accounts}:
            raise KeySourceError(f"the signer at {url} does not hold 0x{bytes(address).hex()}")
        # The probe's address was a placeholder; the signer is a new client for the chosen one.
        chosen = Address(bytes(address))
        return cls(url, chosen, timeout=timeout, max_reply=max_reply, headers=headers)

    @property
    def address(self) -> Address:
        return self._address

    def close(self) -> None:
        self._client.close()

    # JSON-RPC --------------------------------------------------------------------------------
    def _call(self, method: str, params: list[Any]) -> object:
        with self._lock:
            request_id = next(self._ids)
            payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            # Each read waits at most ``timeout``; the whole reply must come within it too
            # (a signer trickling bytes cannot hold us).
            deadline = time.monotonic() + self._timeout
            try:
                with self._client.stream("POST", self.url, json=payload) as response:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > self._max_reply:
                            raise BadSignerReply(
                                f"{method}: the signer's reply exceeds {self._max_reply} bytes"
                            )
                        if time.monotonic() > deadline:
                            raise SignerUnavailable(f"{method}: the signer's reply is too slow")
                    status = response.status_code
            except httpx.HTTPError as exc:
                raise SignerUnavailable(
                    f"{method}: the signer at {self.url} did not answer ({type(exc).__name__})"
                ) from None
        if status != 200:
            raise SignerUnavailable(f"{method}: the signer answered HTTP {status}")
        try:
            reply = boundedjson.loads(body, max_bytes=self._max_reply, max_depth=8)
        except boundedjson.JsonTooDeep:
            raise BadSignerReply(f"{method}: the signer's reply nests too deeply") from None
        except boundedjson.JsonRejected:
            raise BadSignerReply(f"{method}: the signer's reply is not JSON") from None
        if not isinstance(reply, dict) or reply.get("id") != request_id:
            raise BadSignerReply(f"{method}: the reply is not the JSON-RPC answer to our request")
        if "error" in reply:
            error = reply["error"]
            message = error.get("message") if isinstance(error, dict) else None
            text = message[:200] if isinstance(message, str) else "no message"
            raise SignerUnavailable(f"{method}: the signer refused: {text!r}")
        if "result" not in reply:
            raise BadSignerReply(f"{method}: the reply has neither result nor error")
        return reply["result"]

    # the standard methods --------------------------------------------------------------------
    def accounts(self) -> list[Address]:
        result = self._call("eth_accounts", [])
        if not isinstance(result, list) or len(result) > _MAX_ACCOUNTS:
            raise BadSignerReply("eth_accounts: not a list of at most 256 addresses")
        out = []
        for item in result:
            if not isinstance(item, str) or not _ADDRESS.fullmatch(item):
                raise BadSignerReply("eth_accounts: an entry is not a 0x address")
            out.append(Address(bytes.fromhex(item[2:])))
        return out

    def sign_typed_data(self, typed_data: dict[str, Any], digest: bytes) -> bytes:
        """``eth_signTypedData_v4`` with the typed data as JSON text (what wallets expect)."""
        params = ["0x" + bytes(self._address).hex(), json.dumps(typed_data)]
        result = self._call("eth_signTypedData_v4", params)
        if not isinstance(result, str) or not _SIGNATURE.fullmatch(result):
            raise BadSignerReply("eth_signTypedData_v4: the result is not a 65-byte 0x signature")
        signature = bytes.fromhex(result[2:])
        if signature[64] in (0, 1):  # some signers give the recovery id instead of v
            signature = signature[:64] + bytes((signature[64] + 27,))
        return signature

    def sign_transaction(self, fields: dict[str, Any]) -> bytes:
        """``eth_signTransaction`` of an EIP-1559 transaction; returns the raw signed bytes."""
        tx: dict[str, Any] = {
            "from": "0x" + bytes(self._address).hex(),
            "type": "0x2",
            "chainId": _quantity(fields["chainId"]),
            "nonce": _quantity(fields["nonce"]),
            "gas": _quantity(fields["gas"]),
            "maxFeePerGas": _quantity(fields["maxFeePerGas"]),
            "maxPriorityFeePerGas": _quantity(fields["maxPriorityFeePerGas"]),
            "value": _quantity(fields.get("value", 0)),
            "data": "0x" + bytes(fields.get("data", b"")).hex(),
        }
        if fields.get("to") is not None:
            tx["to"] = str(fields["to"])
        result = self._call("eth_signTransaction", [tx])
        if isinstance(result, dict):  # geth and Clef answer {"raw": ..., "tx": ...}
            result = result.get("raw")
        if not isinstance(result, str) or not _HEX.fullmatch(result) or len(result) < 4:
            raise BadSignerReply("eth_signTransaction: the result is not a 0x raw transaction")
        return bytes.fromhex(result[2:])

    def __repr__(self) -> str:
        return f"RemoteSigner({self.url}, 0x{bytes(self._address).hex()})"
