"""Start and stop a local anvil dev chain (from the repo's ``node_modules``).

Sync: ``with anvil() as chain: ...`` (``subprocess.Popen``; for pytest fixtures and scripts).
Async: ``async with open_anvil() as chain: ...`` (trio subprocess).
Both yield a ``DevChain`` with the RPC ``url`` and the funded dev accounts' private keys.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import trio
from eth_account import Account

from channels.core.errors import LocalError

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default mnemonic; accounts are m/44'/60'/0'/0/i."""

DEV_PRIVATE_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
"""The first ten keys of ``ANVIL_MNEMONIC`` (public test keys: never use them with real funds)."""

ANVIL_DEFAULT_CHAIN_ID = 31337
ANVIL_DEFAULT_BALANCE_ETH = 10_000


class DevChainError(LocalError, RuntimeError):
    """anvil could not be found or did not start."""


def dev_private_keys(count: int) -> tuple[str, ...]:
    """The first ``count`` keys of anvil's default mnemonic (derived beyond the ten constants)."""
    if count <= len(DEV_PRIVATE_KEYS):
        return DEV_PRIVATE_KEYS[:count]
    Account.enable_unaudited_hdwallet_features()
    extra = [
        "0x" + Account.from_mnemonic(
            ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}"
        ).key.hex().removeprefix("0x")
        for i in range(len(DEV_PRIVATE_KEYS), count)
    ]
    return DEV_PRIVATE_KEYS + tuple(extra)


def _platform_dir() -> str:
    system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform, "linux")
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "amd64"
    return f"anvil-{system}-{arch}"


def find_anvil(start: Path | None = None) -> Path:
    """Locate the anvil binary: ``$ANVIL_BIN``, else walk up from ``start`` (default: this
    package) to a ``node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil``."""
    env = os.environ.get("ANVIL_BIN")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DevChainError(f"ANVIL_BIN={env} is not an executable file")
        return path
    exe = "anvil.exe" if sys.platform == "win32" else "anvil"
    rel = Path("node_modules") / "@foundry-rs" / _platform_dir() / "bin" / exe
    here = (start or Path(__file__)).resolve()
    for directory in (here, *here.parents):
        candidate = directory / rel
        if candidate.is_file():
            return candidate
    raise DevChainError(
        f"anvil binary not found ({rel} in no parent of {here}); run `make setup` "
        "(npm ci installs @foundry-rs/anvil) or set ANVIL_BIN"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class AnvilConfig:
    chain_id: int | None = None
    block_time: float | None = None
    """Seconds between blocks (interval mining); None = automine on each transaction."""
    gas_limit: int | None = None
    no_mining: bool = False
    """Start with automine off (mine with ``rpc.dev.mine``)."""
    accounts: int = 10
    balance_eth: int | None = None
    base_fee: int | None = None
    """Initial base fee per gas (wei)."""
    timestamp: int | None = None
    extra_args: tuple[str, ...] = ()

    def args(self, port: int, host: str) -> list[str]:
        out = ["--host", host, "--port", str(port), "-q", "--accounts", str(self.accounts)]
        if self.chain_id is not None:
            out += ["--chain-id", str(self.chain_id)]
        if self.block_time is not None:
            out += ["--block-time", _num(self.block_time)]
        if self.gas_limit is not None:
            out += ["--gas-limit", str(self.gas_limit)]
        if self.no_mining:
            out.append("--no-mining")
        if self.balance_eth is not None:
            out += ["--balance", str(self.balance_eth)]
        if self.base_fee is not None:
            out += ["--block-base-fee-per-gas", str(self.base_fee)]
        if self.timestamp is not None:
            out += ["--timestamp", str(self.timestamp)]
        out += list(self.extra_args)
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass
class DevChain:
    """A running anvil node."""

    url: str
    port: int
    chain_id: int
    private_keys: tuple[str, ...]
    pid: int

    @property
    def accounts(self) -> tuple[str, ...]:
        """Checksummed addresses of ``private_keys``."""
        return tuple(Account.from_key(k).address for k in self.private_keys)


_CHAIN_ID_REQUEST = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})


def _parse_chain_id(resp: httpx.Response) -> int | None:
    try:
        body = resp.json()
        return int(body["result"], 16)
    except (ValueError, KeyError, TypeError):
        return None


def _read_log(log: IO[bytes]) -> str:
    try:
        log.seek(0)
        return log.read()[-2000:].decode(errors="replace")
    except (OSError, ValueError):
        return ""


def _stop_popen(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_anvil(
    config: AnvilConfig | None = None,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 15.0,
    binary: Path | None = None,
) -> tuple[DevChain, subprocess.Popen[bytes]]:
    """Start anvil and wait until it answers ``eth_chainId``. The caller must stop it
    (``stop_anvil``); prefer the ``anvil()`` context manager."""
    cfg = config or AnvilConfig()
    exe = binary or find_anvil()
    last_error = ""
    for _attempt in range(3):  # the port may be taken between free_port() and anvil's bind
        port = free_port(host)
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [str(exe), *cfg.args(port, host)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{host}:{port}"
        deadline = time.monotonic() + startup_timeout
        chain_id: int | None = None
        try:
            with httpx.Client(timeout=1.0) as client:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        resp = client.post(
                            url, content=_CHAIN_ID_REQUEST,
                            headers={"content-type": "application/json"},
                        )
                        chain_id = _parse_chain_id(resp)
                        if chain_id is not None:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.02)
        except BaseException:
            _stop_popen(proc, 5.0)
            log.close()
            raise
        if chain_id is not None:
            log.close()
            chain = DevChain(
                url=url, port=port, chain_id=chain_id,
                private_keys=dev_private_keys(cfg.accounts), pid=proc.pid,
            )
            return chain, proc
        exited = proc.poll() is not None
        _stop_popen(proc, 5.0)
        last_error = _read_log(log)
        log.close()
        if not exited:
            raise DevChainError(
                f"anvil did not answer on {url} within {startup_timeout}s: {last_error}"
            )
    raise DevChainError(f"anvil failed to start: {last_error}")


def stop_anvil(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate, wait up to ``timeout`` seconds, then kill."""
    _stop_popen(proc, timeout)


@contextmanager
def anvil(
    config: AnvilConfig | None = None,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 15.0,
    stop_timeout: float = 5.0,
) -> Iterator[DevChain]:
    """Run anvil for the duration of the ``with`` block."""
    chain, proc = start_anvil(config, host=host, startup_timeout=startup_timeout)
    try:
        yield chain
    finally:
        stop_anvil(proc, stop_timeout)


@asynccontextmanager
async def open_anvil(
    config: AnvilConfig | None = None,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 15.0,
    stop_timeout: float = 5.0,
) -> AsyncIterator[DevChain]:
    """Async (trio) variant of ``anvil()``."""
    cfg = config or AnvilConfig()
    exe = find_anvil()
    last_error = ""
    for _attempt in range(3):
        port = free_port(host)
        log = tempfile.TemporaryFile()
        proc = await trio.lowlevel.open_process(
            [str(exe), *cfg.args(port, host)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://{host}:{port}"
        chain_id: int | None = None
        try:
            try:
                async with httpx.AsyncClient(timeout=1.0) as client:
                    with trio.move_on_after(startup_timeout):
                        while proc.poll() is None:
                            try:
                                resp = await client.post(
                                    url, content=_CHAIN_ID_REQUEST,
                                    headers={"content-type": "application/json"},
                                )
                                chain_id = _parse_chain_id(resp)
                                if chain_id is not None:
                                    break
                            except httpx.TransportError:
                                pass
                            await trio.sleep(0.02)
                if chain_id is None:
                    exited = proc.poll() is not None
                    last_error = _read_log(log)
                    if not exited:
                        raise DevChainError(
                            f"anvil did not answer on {url} within {startup_timeout}s: "
                            f"{last_error}"
                        )
                    continue
                chain = DevChain(
                    url=url, port=port, chain_id=chain_id,
                    private_keys=dev_private_keys(cfg.accounts), pid=proc.pid,
                )
                yield chain
                return
            finally:
                with trio.CancelScope(shield=True):
                    await _stop_trio_process(proc, stop_timeout)
        finally:
            log.close()
    raise DevChainError(f"anvil failed to start: {last_error}")


async def _stop_trio_process(proc: trio.Process, timeout: float) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    with trio.move_on_after(timeout):
        await proc.wait()
        return
    proc.kill()
    await proc.wait()
