"""A 10,000-state history exported through the control socket and verified independently.

Before: the export was one control line capped at 1 MiB, so it failed beyond about 1,000
states, and nothing shipped could check an export."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import trio

from channels import cli
from channels.control import serve_control
from channels.core.audit import AuditInvalid, verify_export
from tests.node._helpers import desk, open_channel
from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture


async def test_ten_thousand_state_export_streams_and_verifies(
    desks: Desks,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await export_and_verify(desks, tmp_path, capsys, 10_000)


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
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
                    ch, bch = await open_channel(alice, bob, desks)
                    while ch.version < states:
                        await ch.pay(1)
                    await bch.wait_version(ch.version)
                    async with trio.open_nursery() as nursery:
                        await nursery.start(serve_control, alice, sock)
                        argv = ["--socket", sock, "export", "-o", str(out)]
                        code = await trio.to_thread.run_sync(cli.main, argv)
                        assert code == 0, capsys.readouterr().err
                        nursery.cancel_scope.cancel()
        size = out.stat().st_size
        assert size > 1 << 20  # far beyond one control line
        with out.open("rb") as fh:
            report = await trio.to_thread.run_sync(verify_export, fh)
        assert report.states >= states and report.channels == 1
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
