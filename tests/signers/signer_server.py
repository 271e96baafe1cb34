"""A small remote signer for tests: a separate process serving the standard wallet JSON-RPC
methods (eth_accounts, eth_signTypedData_v4, eth_signTransaction) over HTTP on 127.0.0.1, signing
with eth-account. ``--misbehave MODE`` makes it a hostile endpoint for the refusal tests.

    python tests/signers/signer_server.py --key-file KEY [--misbehave MODE]

It prints ``LISTENING <port>`` on stdout once it serves, and runs until killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_account import Account

MAX_REQUEST = 1024 * 1024
MODES = (
    "none",
    "huge",  # a reply far larger than any signature
    "garbage",  # not JSON
    "deep",  # deeply nested JSON
    "wrong-id",  # a response to another request
    "refuse",  # a JSON-RPC error (the user declined)
    "short-signature",  # 64 bytes
    "wrong-key",  # signs with another key
    "other-digest",  # signs another message
    "changed-tx",  # signs a transaction with another nonce
    "slow",  # answers after the client's timeout
    "http-500",
)


class Signer:
    def __init__(self, secret: bytes, mode: str) -> None:
        self.account = Account.from_key(secret)
        self.other = Account.from_key(b"\x42" * 32)
        self.mode = mode
        self.calls: dict[str, int] = {}

    def accounts(self) -> list[str]:
        return [self.account.address]

    def sign_typed(self, address: str, text: str) -> str:
        if address.lower() != self.account.address.lower():
            raise LookupError(f"unknown account {address}")
        typed = json.loads(text)
        if self.mode == "other-digest":
            typed["message"] = dict(typed["message"])
            first = next(iter(typed["message"]))
            typed["message"][first] = _tweak(typed["message"][first])
        key = self.other if self.mode == "wrong-key" else self.account
        signature = key.sign_typed_data(full_message=typed).signature
        if self.mode == "short-signature":
            signature = signature[:64]
        return "0x" + bytes(signature).hex()

    def sign_transaction(self, tx: dict[str, Any]) -> dict[str, str]:
        if tx.get("from", "").lower() != self.account.address.lower():
            raise LookupError("unknown account")
        fields: dict[str, Any] = {
            "type": 2,
            "chainId": int(tx["chainId"], 16),
            "nonce": int(tx["nonce"], 16) + (1 if self.mode == "changed-tx" else 0),
            "gas": int(tx["gas"], 16),
            "maxFeePerGas": int(tx["maxFeePerGas"], 16),
            "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"], 16),
            "value": int(tx.get("value", "0x0"), 16),
            "data": bytes.fromhex(tx.get("data", "0x")[2:]),
        }
        if "to" in tx:
            fields["to"] = tx["to"]
        key = self.other if self.mode == "wrong-key" else self.account
        raw = key.sign_transaction(fields).raw_transaction
        return {"raw": "0x" + bytes(raw).hex(), "tx": "(omitted)"}

    def dispatch(self, request: dict[str, Any]) -> object:
        method, params = request.get("method"), request.get("params") or []
        self.calls[str(method)] = self.calls.get(str(method), 0) + 1
        if method == "eth_accounts":
            return self.accounts()
        if method == "eth_signTypedData_v4":
            signature = self.sign_typed(params[0], params[1])
            # What was signed, by message type (State, Withdrawal, Quote, Login, ...).
            kind = f"{method}:{json.loads(params[1]).get('primaryType')}"
            self.calls[kind] = self.calls.get(kind, 0) + 1
            return signature
        if method == "eth_signTransaction":
            return self.sign_transaction(params[0])
        if method == "test_calls":
            return self.calls
        raise NotImplementedError(f"method {method} not found")


def _tweak(value: object) -> object:
    if isinstance(value, str) and value.isdigit():
        return str(int(value) ^ 1)
    if isinstance(value, str) and value.startswith("0x"):
        return value[:-1] + ("1" if value[-1] != "1" else "2")
    return value


def make_handler(signer: Signer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_REQUEST:
                self._send(413, b"{}")
                return
            request = json.loads(self.rfile.read(length))
            mode = signer.mode if request.get("method") != "eth_accounts" else "none"
            if mode == "slow":
                time.sleep(3.0)
            if mode == "http-500":
                self._send(500, b"oops")
                return
            if mode == "huge":
                self._send(200, b'{"jsonrpc":"2.0","id":1,"result":"0x' + b"00" * 4_000_000 + b'"}')
                return
            if mode == "garbage":
                self._send(200, b"\x00\xffnot json at all")
                return
            if mode == "deep":
                self._send(200, b"[" * 100_000 + b"]" * 100_000)
                return
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
            if mode == "wrong-id":
                reply["id"] = -1
            if mode == "refuse":
                reply["error"] = {"code": 4001, "message": "User rejected the request."}
            else:
                try:
                    reply["result"] = signer.dispatch(request)
                except Exception as exc:
                    reply["error"] = {"code": -32000, "message": str(exc)[:200]}
            self._send(200, json.dumps(reply).encode())

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--misbehave", choices=MODES, default="none")
    args = parser.parse_args(argv)
    with open(args.key_file) as fh:
        secret = bytes.fromhex(fh.read().strip().removeprefix("0x"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Signer(secret, args.misbehave)))
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
