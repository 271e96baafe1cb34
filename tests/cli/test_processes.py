"""The operator's surface as real processes: ``channels chain``, two ``channels node`` processes
from the configs it writes, and each command a process of its own.

* A node started with ``--log-format json`` writes only JSON lines, and the lines about its
  trades carry the channel and the peer.
* Ctrl-C (SIGINT) during ``dispute --follow`` exits 130 with one line and no traceback.
* Once the chain is gone (``channels chain`` stopped, and its anvil with it), a command that
  needs the chain exits 5 with one line; so does ``deploy`` against an RPC URL nobody serves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from channels.cli.desks import free_port
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner

READY_TIMEOUT = 120.0
COMMAND_TIMEOUT = 120.0


class Processes:
    """Long-running ``channels`` processes of one test, each logging to a file; stopped (by
    their own pids) at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if k != "CHANNELS_CONFIG"}
        self.running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{name}.log"
        fh = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "channels.cli", *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        self.running.append((proc, fh))
        return proc, log

    def wait_for(self, proc: subprocess.Popen[bytes], log: Path, marker: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"never printed {marker!r}:\n{log.read_text()}"
            time.sleep(0.1)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "channels.cli", *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stdout

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        """Ctrl-C, as the operator stops it; killed if it does not stop."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def stop_all(self) -> None:
        for proc, fh in reversed(self.running):  # the nodes before the chain
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            fh.close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    # A short path: control sockets live next to the stores, and Unix socket paths are short.
    with tempfile.TemporaryDirectory(prefix="ocpr-", dir="/tmp") as d:
        procs = Processes(Path(d))
        try:
            yield procs
        finally:
            procs.stop_all()


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_json_logs_ctrl_c_while_following_a_dispute_and_a_chain_error(
    processes: Processes,
) -> None:
    chain, chain_log = processes.start("chain", "chain", "--block-time", "0.5")
    processes.wait_for(chain, chain_log, "ready:")
    a, b = "desks/desk-a.toml", "desks/desk-b.toml"
    node_a, log_a = processes.start("node-a", "node", "-c", a, "--log-format", "json")
    node_b, log_b = processes.start("node-b", "node", "-c", b)
    for proc, log in ((node_a, log_a), (node_b, log_b)):
        processes.wait_for(proc, log, "ready:")
    desk_b = to_checksum(
        LocalSigner.from_hex((processes.workdir / "desks" / "desk-b.key").read_text()).address
    )

    # Trades, so that desk A's node logs about a channel and its peer.
    processes.ok("-c", a, "open", "desk-b", "--deposit", "100")
    processes.ok("-c", a, "pay", "desk-b", "1.5")
    processes.ok(
        "-c", a, "write", "desk-b", "--kind", "call", "--underlying", "ETH-USD",
        "--strike", "3000", "--expiry", "+7d", "--quantity", "0.5",
        "--premium", "2", "--collateral", "50",
    )  # fmt: skip
    cid = json.loads(processes.ok("-c", a, "--json", "status"))["channels"][0]["id"]

    # dispute --follow, then Ctrl-C while it shows the countdown --------------------------------
    follow, follow_log = processes.start("dispute", "-c", a, "dispute", "desk-b", "--follow")
    processes.wait_for(follow, follow_log, "challenge period ends")
    time.sleep(0.3)  # it waits for the conclusion now (the challenge period is an hour)
    seen = len(follow_log.read_bytes())
    follow.send_signal(signal.SIGINT)
    assert follow.wait(timeout=30) == 130
    text = follow_log.read_text()
    assert "Traceback" not in text and "ExceptionGroup" not in text, text
    after = text.encode()[seen:].decode().strip().splitlines()
    assert len(after) == 1, text
    assert after[0].startswith("stopped watching; the node carries the dispute on by itself")
    assert node_a.poll() is None  # the node carries on
    row = json.loads(processes.ok("-c", a, "--json", "status"))["channels"][0]
    assert row["phase"] == "disputed" and row["dispute_deadline"]

    # The chain goes away: a command that needs it exits 5, in one line ---------------------
    assert processes.stop(chain) == 0
    result = processes.run("-c", a, "withdraw", "--credits")
    assert result.returncode == 5, result.stderr
    line = _one_line_error(result)
    assert line.startswith("error: chain: ")
    assert line.endswith(f"(check [chain] rpc_url in {a} and that the chain runs)")
    failure = json.loads(processes.run("-c", a, "--json", "withdraw", "--credits").stdout)
    assert (failure["error"]["category"], failure["error"]["exit_code"]) == ("chain", 5)

    # Desk A's log: every line is a JSON object; the trades' lines name the channel and the peer
    assert processes.stop(node_a) == 0
    records = [json.loads(line) for line in log_a.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    about_trades = [r for r in records if r.get("event") == "StateUpdated"]
    assert len(about_trades) >= 3  # the deposits credited, the payment, the option
    assert all(r["channel"] == cid and r["peer"] == desk_b for r in about_trades)
    assert any("ours=" in r["message"] and r.get("version") for r in about_trades)


def test_deploy_to_an_rpc_url_nobody_serves_exits_5(processes: Processes) -> None:
    processes.env["OC_DEPLOYER_KEY"] = "0x" + "11" * 32
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = processes.run("deploy", "--rpc-url", url, "--key-env", "OC_DEPLOYER_KEY")
    assert result.returncode == 5, result.stderr
    line = _one_line_error(result)
    assert line.startswith("error: chain: ") and url.removeprefix("http://") in line
    assert line.endswith(f"(check --rpc-url {url} and that the chain runs)")
