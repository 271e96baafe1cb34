"""pytest fixtures for chain tests. Enable with ``pytest_plugins = ["adjudicator.testing"]``.

* ``anvil_config`` (module): the ``AnvilConfig`` for the module's node; override it in a test
  module to change chain id, gas limit, mining, ...
* ``anvil`` (module): a fresh anvil node per test module (``DevChain``: url, chain_id, keys).
* ``anvil_snapshot`` (function): ``evm_snapshot`` before the test, ``evm_revert`` after. It restores
  chain state only (not automine/interval settings).
* ``dev_keys`` / ``dev_accounts`` (module): the node's funded private keys / ``LocalAccount``s.
* ``rpc`` (function, async, trio): an ``RpcClient`` on the module's node.

The node fixtures are synchronous (``subprocess.Popen``), so sync and trio tests share them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from . import devchain
from .rpc import RpcClient, open_rpc


def dev_request(url: str, method: str, params: list[Any] | None = None) -> Any:
    """A blocking JSON-RPC call (for sync fixtures and tests); raises on a JSON-RPC error."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    resp = httpx.post(
        url, content=json.dumps(payload), headers={"content-type": "application/json"},
        timeout=10.0,
    )
    body = resp.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


@pytest.fixture(scope="module")
def anvil_config() -> devchain.AnvilConfig:
    return devchain.AnvilConfig()


@pytest.fixture(scope="module")
def anvil(anvil_config: devchain.AnvilConfig) -> Iterator[devchain.DevChain]:
    with devchain.anvil(anvil_config) as chain:
        yield chain


@pytest.fixture
def anvil_snapshot(anvil: devchain.DevChain) -> Iterator[str]:
    snap = str(dev_request(anvil.url, "evm_snapshot"))
    try:
        yield snap
    finally:
        if not dev_request(anvil.url, "evm_revert", [snap]):
            raise RuntimeError(f"evm_revert({snap}) failed")


@pytest.fixture(scope="module")
def dev_keys(anvil: devchain.DevChain) -> tuple[str, ...]:
    return anvil.private_keys


@pytest.fixture(scope="module")
def dev_accounts(anvil: devchain.DevChain) -> tuple[LocalAccount, ...]:
    return tuple(Account.from_key(k) for k in anvil.private_keys)


@pytest.fixture
async def rpc(anvil: devchain.DevChain) -> AsyncIterator[RpcClient]:
    async with open_rpc(anvil.url, timeout=10.0) as client:
        yield client
