"""A desk run from its TOML config, for the tests that look at it the way an operator does (its
control socket, the ``channels`` command) while library nodes of this process trade with it.

:func:`served_desk` runs it in this process exactly as ``channels node`` does
(:func:`channels.cli.serve_desk`: the node, its control socket, its event log); :func:`desk_process`
runs a real ``channels node`` process, for a test whose attacker must not share the desk's event
loop. :class:`Cli` runs ``channels`` commands through the real ``main()`` in a worker thread.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import mint
from adjudicator.transactions import TransactionSender
from channels import cli, control
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner
from tests.hostile.nodeproc import node_process

from ._helpers import PERIOD, WEEK
from .conftest import Desks

KEY_ENV = "OC_DESK_PROCESS_KEY"


@contextmanager
def short_dir() -> Iterator[Path]:
    """A directory with a short path: the control socket lives next to the store."""
    with tempfile.TemporaryDirectory(prefix="ocdesk-", dir="/tmp") as d:
        yield Path(d)


async def funded_key(desks: Desks, wei: int, tokens: int) -> LocalSigner:
    signer = LocalSigner.generate()
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.set_balance("0x" + signer.address.hex(), wei)
        await mint(rpc, TransactionSender(rpc, signer.secret), desks.token, signer.address, tokens)
    return signer


def desk_toml(
    workdir: Path,
    desks: Desks,
    *,
    peers: Mapping[str, bytes],
    node_lines: str = "",
    max_deposit: int = 10_000_000,
) -> Path:
    """A listening desk that declares ``peers`` (name -> address) with room for their channels;
    ``node_lines`` go into its ``[node]`` table."""
    tables = "".join(
        f"""
[peers.{name}]
address = "{to_checksum(address)}"
min_challenge_period = {PERIOD}
max_challenge_period = {WEEK}

[peers.{name}.assets.token]
address = "{to_checksum(desks.token)}"
max_deposit_raw = {max_deposit}
max_total_deposit_raw = {10 * max_deposit}
"""
        for name, address in peers.items()
    )
    text = f"""
[node]
key_env = "{KEY_ENV}"
store = "desk.sqlite"
listen_host = "127.0.0.1"
listen_port = 0
update_timeout = 10
open_timeout = 30
{node_lines}

[chain]
rpc_url = "{desks.url}"
adjudicator = "{to_checksum(desks.adjudicator)}"
confirmations = 1
poll_interval = 0.05
asset = "{to_checksum(desks.token)}"
oracle = "{to_checksum(desks.oracle.address)}"
{tables}"""
    path = workdir / "desk.toml"
    path.write_text(text)
    return path


@dataclass
class RunningDesk:
    config: Path
    control: Path
    listen_port: int
    #: The desk's own process (None: it runs in this one).
    pid: int | None = None

    async def call(self, cmd: str, **fields: Any) -> Any:
        """One request on the desk's control socket."""
        return await control.call(self.control, cmd, **fields)


@asynccontextmanager
async def served_desk(config: Path, signer: LocalSigner) -> AsyncIterator[RunningDesk]:
    cfg = cli.load_config(config)
    async with trio.open_nursery() as nursery:
        node = await nursery.start(cli.serve_desk, cfg, signer)
        assert node.listen_port is not None
        yield RunningDesk(config, cfg.control, node.listen_port)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def desk_process(config: Path, signer: LocalSigner) -> AsyncIterator[RunningDesk]:
    async with node_process(config, KEY_ENV, "0x" + signer.secret.hex()) as process:
        desk = RunningDesk(config, process.control, 0, process.process.pid)
        desk.listen_port = int((await desk.call("ping"))["listen_port"])
        yield desk
        assert process.alive, process.stderr()


class Cli:
    """``channels -c CONFIG ...`` through the real ``main()`` in a worker thread; returns its
    stdout (exit code 0 asserted)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], config: Path) -> None:
        self.capsys = capsys
        self.config = config
        self.lock = trio.Lock()

    async def __call__(self, *argv: str) -> str:
        async with self.lock:  # one command at a time, so the captured output is its own
            self.capsys.readouterr()
            code = await trio.to_thread.run_sync(cli.main, ["-c", str(self.config), *argv])
            captured = self.capsys.readouterr()
            assert code == 0, captured.err
            return captured.out

    async def json(self, *argv: str) -> Any:
        return json.loads(await self("--json", *argv))
