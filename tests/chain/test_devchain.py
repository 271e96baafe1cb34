"""Starting and stopping anvil."""

import socket
from pathlib import Path

import httpx
import pytest
import trio
from eth_account import Account

from adjudicator import devchain
from adjudicator.rpc import open_rpc
from adjudicator.testing import dev_request


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sync_start_stop_with_options() -> None:
    cfg = devchain.AnvilConfig(chain_id=4242, gas_limit=50_000_000, accounts=3)
    with devchain.anvil(cfg) as chain:
        assert chain.url.startswith("http://127.0.0.1:")
        assert chain.chain_id == 4242
        assert int(dev_request(chain.url, "eth_chainId"), 16) == 4242
        block = dev_request(chain.url, "eth_getBlockByNumber", ["latest", False])
        assert int(block["gasLimit"], 16) == 50_000_000
        assert len(chain.private_keys) == 3
        assert list(chain.accounts) == [
            Account.from_key(k).address for k in devchain.DEV_PRIVATE_KEYS[:3]
        ]
        port = chain.port
        assert _port_open(port)
    assert not _port_open(port)


def test_dev_keys_are_the_nodes_accounts(anvil: devchain.DevChain) -> None:
    node_accounts = dev_request(anvil.url, "eth_accounts")
    assert [a.lower() for a in node_accounts] == [a.lower() for a in anvil.accounts]
    balance = int(dev_request(anvil.url, "eth_getBalance", [anvil.accounts[9], "latest"]), 16)
    assert balance == devchain.ANVIL_DEFAULT_BALANCE_ETH * 10**18


def test_hardcoded_keys_match_mnemonic() -> None:
    Account.enable_unaudited_hdwallet_features()
    for i, key in enumerate(devchain.DEV_PRIVATE_KEYS):
        acct = Account.from_mnemonic(devchain.ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        assert acct.key.hex().removeprefix("0x") == key.removeprefix("0x")
    keys = devchain.dev_private_keys(12)
    assert len(keys) == 12 and len(set(keys)) == 12 and keys[:10] == devchain.DEV_PRIVATE_KEYS


def test_no_mining_and_block_time_flags() -> None:
    cfg = devchain.AnvilConfig(no_mining=True, base_fee=7)
    assert "--no-mining" in cfg.args(1, "127.0.0.1")
    assert cfg.args(1, "127.0.0.1")[-2:] == ["--block-base-fee-per-gas", "7"]
    assert devchain.AnvilConfig(block_time=0.5).args(1, "h")[-2:] == ["--block-time", "0.5"]
    with devchain.anvil(cfg) as chain:
        assert dev_request(chain.url, "anvil_getAutomine") is False


def test_anvil_bin_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANVIL_BIN", str(tmp_path / "missing"))
    with pytest.raises(devchain.DevChainError, match="ANVIL_BIN"):
        devchain.find_anvil()
    monkeypatch.delenv("ANVIL_BIN")
    assert devchain.find_anvil().name == "anvil"
    with pytest.raises(devchain.DevChainError, match="make setup"):
        devchain.find_anvil(tmp_path / "x.py")


def test_startup_failure_is_reported() -> None:
    cfg = devchain.AnvilConfig(extra_args=("--no-such-flag",))
    with pytest.raises(devchain.DevChainError, match="failed to start"):
        devchain.start_anvil(cfg, startup_timeout=5)


async def test_async_open_anvil() -> None:
    async with devchain.open_anvil(devchain.AnvilConfig(chain_id=777)) as chain:
        async with open_rpc(chain.url) as rpc:
            assert await rpc.chain_id() == 777
        port = chain.port
    assert not _port_open(port)


async def test_async_open_anvil_cancelled_stops_node() -> None:
    ports: list[int] = []
    # Cancelled once the node is up (not after a fixed time: a loaded machine may need longer
    # than any fixed time to start anvil, and the cancel would then hit the startup instead).
    with trio.CancelScope() as scope:
        async with devchain.open_anvil() as chain:
            ports.append(chain.port)
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert ports and not _port_open(ports[0])
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{ports[0]}", content=b"{}", timeout=0.5)
