"""A 10,000-state history exported through the control socket and verified independently.

Before: the export was one control line capped at 1 MiB, so it failed beyond about 1,000
states, and nothing shipped could check an export.

Building the history is most of the test's time. Each state is three durable commits (the
leader's signature record, the follower's state, the leader's state), and at the default
``synchronous = FULL`` each commit waits for an fsync: about 12 ms a state, two minutes of every
``make test``. This test is about the export, not durability, so its desks run with
``synchronous = NORMAL`` (a node setting; the crash tests keep FULL) and pay from a few tasks at
once (the leader pipelines up to four proposals): about 3 ms a state.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import pytest
import trio

from channels import cli
from channels.control import serve_control
from channels.core.audit import AuditInvalid, AuditReport, verify_export
from channels.runtime.channel import Channel
from tests.node._helpers import FAST, desk, open_channel
from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture

#: No fsync per commit: a crash could lose the newest states, which this test never does.
SETTINGS = dataclasses.replace(FAST, synchronous="NORMAL")
#: Payments in flight at once (the leader's pipeline holds four).
PAYERS = 4


async def test_ten_thousand_state_export_streams_and_verifies(
    desks: Desks,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await export_and_verify(desks, tmp_path, capsys, 10_000)


async def export(sock: str, out: Path) -> AuditReport:
    """``channels export`` (the CLI, in a worker thread: the node answers on this loop), then the
    independent check of the file."""
    code = await trio.to_thread.run_sync(cli.main, ["--socket", sock, "export", "-o", str(out)])
    assert code == 0
    with out.open("rb") as fh:
        return await trio.to_thread.run_sync(verify_export, fh)


async def pay_until(ch: Channel, version: int) -> None:
    async def payer() -> None:
        while ch.version < version:
            await ch.pay(1)

    async with trio.open_nursery() as nursery:
        for _ in range(PAYERS):
            nursery.start_soon(payer)


async def export_and_verify(
    desks: Desks,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    states: int,
) -> None:
    with tempfile.TemporaryDirectory(prefix="ocex-", dir="/tmp") as short:
        sock = str(Path(short) / "a.sock")
        out = tmp_path / "audit.jsonl"
        with trio.fail_after(1800):
            async with (
                desk(desks, desks.alice, tmp_path / "a.sqlite", settings=SETTINGS) as alice,
                desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, settings=SETTINGS) as bob,
                trio.open_nursery() as nursery,
            ):
                ch, bch = await open_channel(alice, bob, desks)
                await nursery.start(serve_control, alice, sock)
                # A credit proposed before the peer saw the deposit is refused and burns its
                # version: count the signed states the open left, then add the rest.
                opened = await export(sock, out)
                await pay_until(ch, ch.version + states - opened.states)
                await bch.wait_version(ch.version)
                report = await export(sock, out)
                nursery.cancel_scope.cancel()
        assert report.states >= states and report.channels == 1, report
        size = out.stat().st_size
        assert size > 1 << 20  # far beyond one control line
        capsys.readouterr()
        code = await trio.to_thread.run_sync(cli.main, ["verify", str(out)])
        assert code == 0
        assert f"{report.states} signed state(s)" in capsys.readouterr().out
        # Tampering anywhere is caught: a balance changed in the middle of the history.
        lines = out.read_bytes().splitlines()
        middle = len(lines) // 2
        record = json.loads(lines[middle])
        assert "state" in record
        record["state"]["balances"][0] = str(int(record["state"]["balances"][0]) + 1)
        lines[middle] = json.dumps(record).encode()
        with pytest.raises(AuditInvalid, match=f"line {middle + 1}: .*state hash"):
            verify_export(lines)
        with pytest.raises(AuditInvalid, match="truncated"):
            verify_export(out.read_bytes().splitlines()[:-1])
