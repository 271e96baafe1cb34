"""Two desks as real ``channels node`` processes, driven by real ``channels`` commands.

Each desk is its own interpreter (``tests/hostile/nodeproc.py`` starts and stops it) with a TOML
config written here: the asset, the oracle, the one peer it deals with and the terms it accepts.
Every one-shot command is ``python -m channels.cli ...`` in a process of its own, so the parsing,
the control socket, the output and the exit code are the ones an operator gets. Only the hot loop
of a test that needs thousands of updates talks to the control socket directly
(``channels.control.connect_control``, the client the CLI itself uses).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from channels import control
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner
from tests.hostile.nodeproc import NodeProcess, node_process


@dataclass(frozen=True)
class DeskSpec:
    """What a desk's config says, besides the chain: its name (store, socket, log), its key, and
    whether it listens (port 0: the system picks one, ``getinfo`` tells)."""

    name: str
    signer: LocalSigner
    listen: bool = False
    #: ``[node] max_deposit_fee_bps``: the transfer fee this desk consents to lose (0: none).
    max_deposit_fee_bps: int = 0
    #: ``[peers.other] approve``: the value-moving trades the peer may ask of us.
    approve: tuple[str, ...] = ()
    #: ``[node] open_timeout`` in seconds: how long an open waits for both deposits.
    open_timeout: int = 60
    #: The port it listens on (0: the system picks one; a fixed one lets the peer find the desk
    #: again after a restart).
    port: int = 0
    #: ``[peers.other] host, port``: where to reach the peer (a restarted desk redials it).
    peer_endpoint: tuple[str, int] | None = None
    #: ``[[watchtower]]`` tables: each tower's address and port on 127.0.0.1.
    watchtowers: tuple[tuple[bytes, int], ...] = ()

    @property
    def key_env(self) -> str:
        return f"OC_E2E_KEY_{self.name.upper()}"

    @property
    def key_hex(self) -> str:
        return "0x" + self.signer.secret.hex()


def write_desk_config(
    workdir: Path,
    spec: DeskSpec,
    *,
    rpc_url: str,
    adjudicator: bytes,
    asset: bytes,
    oracle: bytes,
    peer: bytes,
) -> Path:
    """The desk's TOML: one peer (``other``) with a channel of up to 10 million smallest units
    of ``asset`` each way and a 60 s challenge period."""
    approve = ", ".join(f'"{a}"' for a in spec.approve)
    endpoint = ""
    if spec.peer_endpoint is not None:
        endpoint = f'host = "{spec.peer_endpoint[0]}"\nport = {spec.peer_endpoint[1]}'
    towers = "".join(
        f'\n[[watchtower]]\naddress = "{to_checksum(a)}"\nhost = "127.0.0.1"\nport = {p}\n'
        for a, p in spec.watchtowers
    )
    text = f"""
[node]
key_env = "{spec.key_env}"
store = "{spec.name}.sqlite"
listen_host = "127.0.0.1"
{f"listen_port = {spec.port}" if spec.listen else ""}
update_timeout = 20
open_timeout = {spec.open_timeout}
max_deposit_fee_bps = {spec.max_deposit_fee_bps}

[chain]
rpc_url = "{rpc_url}"
adjudicator = "{to_checksum(adjudicator)}"
confirmations = 1
poll_interval = 0.05
asset = "{to_checksum(asset)}"
oracle = "{to_checksum(oracle)}"
challenge_period = 60

[peers.other]
address = "{to_checksum(peer)}"
{endpoint}
min_challenge_period = 60
approve = [{approve}]

[peers.other.assets.token]
address = "{to_checksum(asset)}"
max_deposit_raw = 10_000_000
{towers}"""
    path = workdir / f"{spec.name}.toml"
    path.write_text(text)
    return path


@dataclass
class Desk:
    """A running desk process and its config."""

    spec: DeskSpec
    config: Path
    process: NodeProcess

    @property
    def log(self) -> str:
        """Everything the node has logged so far."""
        return self.process.log.read_text(errors="replace")

    def deposits_logged(self) -> list[tuple[int, int, int]]:
        """(sent, credited, fee) of every deposit of ours the node measured, from its log."""
        found = re.findall(r"deposit sent=(\d+) credited=(\d+) fee=(\d+)", self.log)
        return [(int(s), int(c), int(f)) for s, c, f in found]

    async def run(self, *argv: str) -> Result:
        """``channels -c <this desk's config> ARGV...`` as its own process."""
        return await channels("-c", str(self.config), *argv)

    async def json(self, *argv: str) -> Any:
        """The same with ``--json``; the command must succeed."""
        result = await self.run("--json", *argv)
        assert result.code == 0, result
        return json.loads(result.out)

    async def status_row(self) -> dict[str, Any]:
        """The one channel's row of ``channels status`` (smallest units)."""
        (row,) = (await self.json("--raw", "status"))["channels"]
        return dict(row)

    async def channel(self) -> dict[str, Any]:
        """The one channel's row straight from the control socket (``our_balance``,
        ``their_balance``, ``version``, ``phase``...): cheap enough to poll."""
        (row,) = await control.call(self.process.control, "status")
        return dict(row)

    async def wait_phase(self, phase: str) -> dict[str, Any]:
        while (row := await self.channel())["phase"] != phase:
            assert self.process.alive, self.process.stderr()
            await trio.sleep(0.05)
        return row


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def channels(*argv: str) -> Result:
    """Run ``channels ARGV...`` (``python -m channels.cli``) and wait for it."""
    done = await trio.run_process(
        [sys.executable, "-m", "channels.cli", *argv],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


@asynccontextmanager
async def desk_pair(
    workdir: Path,
    a: DeskSpec,
    b: DeskSpec,
    *,
    rpc_url: str,
    adjudicator: bytes,
    asset: bytes,
    oracle: bytes,
) -> AsyncIterator[tuple[Desk, Desk, str]]:
    """Desk B (listening) then desk A, each a ``channels node`` process declaring the other as
    its peer; yields both and B's ``ADDRESS@HOST:PORT`` for ``channels open``."""
    chain = {"rpc_url": rpc_url, "adjudicator": adjudicator, "asset": asset, "oracle": oracle}
    cfg_a = write_desk_config(workdir, a, peer=b.signer.address, **chain)
    cfg_b = write_desk_config(workdir, b, peer=a.signer.address, **chain)
    async with node_process(cfg_b, b.key_env, b.key_hex) as proc_b:
        async with node_process(cfg_a, a.key_env, a.key_hex) as proc_a:
            desk_a, desk_b = Desk(a, cfg_a, proc_a), Desk(b, cfg_b, proc_b)
            port = (await desk_b.json("getinfo"))["listen_port"]
            assert port, "desk B does not listen"
            yield desk_a, desk_b, f"{to_checksum(b.signer.address)}@127.0.0.1:{port}"
