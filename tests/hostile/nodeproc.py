"""Real ``channels node`` and ``channels tower`` processes for end-to-end tests: each its own
interpreter and TOML config (a node also its control socket); started and stopped by the test
(SIGTERM, then kill), their output kept in a log next to the config (appended across restarts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from channels.core.model import to_checksum


@dataclass
class NodeProcess:
    process: trio.Process
    control: Path
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.process.poll() is None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def write_config(
    workdir: Path,
    name: str,
    *,
    rpc_url: str,
    adjudicator: bytes,
    key_env: str,
    listen: bool = False,
    extra: str = "",
) -> Path:
    text = f"""
[node]
key_env = "{key_env}"
store = "{name}.sqlite"
listen_host = "127.0.0.1"
{"listen_port = 0" if listen else ""}
update_timeout = 10
open_timeout = 30

[chain]
rpc_url = "{rpc_url}"
adjudicator = "{to_checksum(adjudicator)}"
confirmations = 1
poll_interval = 0.05
{extra}
"""
    path = workdir / f"{name}.toml"
    path.write_text(text)
    return path


async def control_call(path: Path, request: bytes) -> bytes:
    """Send one raw request line, return the raw response line (b"" if the node closed)."""
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        try:
            await stream.send_all(request)
        except trio.BrokenResourceError:
            pass  # the node refused the rest of a line too long; its answer is already sent
        buf = b""
        while b"\n" not in buf:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            buf += chunk
        return buf.partition(b"\n")[0]


async def ping(path: Path) -> Any:
    return json.loads(await control_call(path, b'{"cmd":"ping"}\n'))


@asynccontextmanager
async def node_process(
    config: Path, key_env: str, key: str, *, timeout: float = 60
) -> AsyncIterator[NodeProcess]:
    process, log = await _start("node", config, key_env, key)
    control = config.parent / (config.stem + ".sqlite.sock")
    node = NodeProcess(process, control, log)
    try:
        with trio.fail_after(timeout):
            while True:
                if not node.alive:
                    raise AssertionError(f"node exited {process.returncode}: {node.stderr()}")
                try:
                    if (await ping(control)).get("ok"):
                        break
                except (OSError, ValueError):
                    pass
                await trio.sleep(0.1)
        yield node
    finally:
        await _stop(process)


async def _start(command: str, config: Path, key_env: str, key: str) -> tuple[trio.Process, Path]:
    log = config.with_suffix(".log")
    env = {**os.environ, key_env: key, "PYTHONFAULTHANDLER": "1"}
    with log.open("ab") as err:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "channels.cli", command, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            env=env,
            cwd=str(config.parent),
        )
    return process, log


async def _stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(15):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def write_tower_config(
    workdir: Path,
    name: str,
    *,
    rpc_url: str,
    adjudicator: bytes,
    key_env: str,
    port: int,
    clients: list[bytes],
) -> Path:
    """A ``channels tower`` config: it listens on ``port`` for the desks ``clients``."""
    listed = ", ".join(f'"{to_checksum(c)}"' for c in clients)
    text = f"""
[tower]
key_env = "{key_env}"
store = "{name}.sqlite"
listen_host = "127.0.0.1"
listen_port = {port}
clients = [{listed}]
poll_interval = 0.2

[chain]
rpc_url = "{rpc_url}"
adjudicator = "{to_checksum(adjudicator)}"
"""
    path = workdir / f"{name}.toml"
    path.write_text(text)
    return path


@asynccontextmanager
async def tower_process(
    config: Path, key_env: str, key: str, port: int, *, timeout: float = 60
) -> AsyncIterator[trio.Process]:
    """``channels tower --config CONFIG``, ready once it says it listens on ``port``."""
    log = config.with_suffix(".log")
    seen = log.stat().st_size if log.exists() else 0  # the log of an earlier run stays above
    process, log = await _start("tower", config, key_env, key)
    try:
        with trio.fail_after(timeout):
            while f"listening on 127.0.0.1:{port}" not in log.read_bytes()[seen:].decode(
                errors="replace"
            ):
                if process.poll() is not None:
                    text = log.read_text(errors="replace")[-4000:]
                    raise AssertionError(f"tower exited {process.returncode}: {text}")
                await trio.sleep(0.1)
        yield process
    finally:
        await _stop(process)
