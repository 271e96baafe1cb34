"""A 10,000-state audit trail over real processes: two ``channels node`` desks on anvil make
10,000 signed states, ``channels export`` writes the file, and ``channels verify FILE --rpc URL``,
a process that trusts neither node, checks every state and each cited transaction on chain; a
state changed by one unit anywhere is refused with the line it is on and a non-zero exit.

The states are made by ``pay`` requests on the desk's control socket (the client the CLI uses),
from eight connections at once: the leader keeps up to four proposals in flight, and twice as
many callers keep that pipeline full (payments that wait meanwhile share one state). The stores
keep their default ``synchronous = FULL``: every state is durable on both desks, as in
production. Measured: 30-90 s of trading on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from channels.control import connect_control
from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture

from .desk_processes import Desk, DeskSpec, channels, desk_pair

STATES = 10_000
#: Payment callers at once: twice the leader's pipeline depth, so it never runs dry.
PAYERS = 8


@pytest.fixture
def workdir() -> Iterator[Path]:
    # A short path: the control socket lives next to the store (Unix socket paths are short).
    with tempfile.TemporaryDirectory(prefix="ocexp-", dir="/tmp") as d:
        yield Path(d)


async def export(desk: Desk, target: Path) -> tuple[int, float]:
    """``channels export -o TARGET``: the states it reports and how long it took."""
    started = time.monotonic()
    result = await desk.run("export", "-o", str(target))
    took = time.monotonic() - started
    assert result.code == 0, result
    done = re.fullmatch(
        rf"exported 1 channel\(s\), (\d+) signed state\(s\), (\d+) chain transaction\(s\) to "
        rf"{re.escape(str(target))} \((\d+) bytes\)\n",
        result.err,
    )
    assert done is not None, result.err
    assert int(done.group(3)) == target.stat().st_size
    return int(done.group(1)), took


async def pay_to(socket: Path, channel: str, reached: int, version: int) -> None:
    """``pay 1`` from :data:`PAYERS` control connections until the channel, at ``reached`` now,
    is at ``version``.

    A payment makes one state, or shares one with payments coalesced into it; so each round
    issues as many payments as states are missing, and the channel never overshoots."""
    while reached < version:
        left = version - reached

        async def payer() -> None:
            nonlocal left, reached
            async with connect_control(socket) as client:
                while left > 0:
                    left -= 1
                    state = await client.call("pay", channel=channel, amount=1)
                    reached = max(reached, int(state["version"]))

        async with trio.open_nursery() as nursery:
            for _ in range(PAYERS):
                nursery.start_soon(payer)


async def test_ten_thousand_states_exported_and_verified_by_separate_processes(
    desks: Desks,  # noqa: F811
    workdir: Path,
) -> None:
    trail = workdir / "audit.jsonl"
    figures: dict[str, float] = {}
    with trio.fail_after(900):
        async with desk_pair(
            workdir,
            DeskSpec("a", desks.alice),
            DeskSpec("b", desks.bob, listen=True),
            rpc_url=desks.url,
            adjudicator=desks.adjudicator,
            asset=desks.token,
            oracle=desks.oracle.address,
        ) as (a, b, peer):
            result = await a.run("--raw", "open", peer, "--deposit", "1_000_000")
            assert result.code == 0, result
            cid = result.out.split()[1]
            # A credit proposed before the peer saw the deposit is refused and burns its
            # version: count the signed states the open left, then pay for the rest.
            opened, _ = await export(a, trail)
            start = (await a.channel())["version"]
            started = time.monotonic()
            await pay_to(a.process.control, cid, start, start + STATES - opened)
            figures["trading_s"] = time.monotonic() - started
            ours = await a.status_row()
            while (await b.channel())["version"] != ours["version"]:
                await trio.sleep(0.05)  # B stores the last state as A returns: a moment later
            theirs = await b.status_row()
            assert (ours["ours"], ours["theirs"]) == (theirs["theirs"], theirs["ours"])
            states, figures["export_s"] = await export(a, trail)
            assert a.process.alive and b.process.alive
        assert states == STATES, states

        # The check, by a process that has only the file and the chain.
        started = time.monotonic()
        result = await channels("--json", "verify", str(trail), "--rpc", desks.url)
        figures["verify_s"] = time.monotonic() - started
        assert result.code == 0, result
        report = json.loads(result.out)
        assert (report["channels"], report["states"]) == (1, STATES)
        assert report["latest"] == {cid: ours["version"]}
        # Every transaction the trail cites (our deposit) is on chain with its event.
        assert report["txs"] >= 1
        assert report["on_chain"]["confirmed"] == report["txs"], report
        assert report["on_chain"]["failed"] == 0
        size = trail.stat().st_size
        assert size > 1 << 20  # far beyond one control line (the old export's limit)
        print(
            f"\n{states} states over {figures['trading_s']:.1f} s of trading; export "
            f"{size:,} bytes in {figures['export_s']:.1f} s; verify --rpc in "
            f"{figures['verify_s']:.1f} s"
        )

        # One unit moved in a state in the middle of the history: refused, naming the line.
        lines = trail.read_bytes().splitlines()
        middle = len(lines) // 2
        record = json.loads(lines[middle])
        assert "state" in record
        balances = record["state"]["balances"]
        balances[0], balances[1] = str(int(balances[0]) + 1), str(int(balances[1]) - 1)
        tampered = workdir / "tampered.jsonl"
        lines[middle] = json.dumps(record).encode()
        tampered.write_bytes(b"\n".join(lines) + b"\n")
        result = await channels("verify", str(tampered))
        assert result.code == 1 and result.out == "", result
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
        assert result.err.startswith(f"error: AuditInvalid: {tampered}: line {middle + 1}: ")
        assert "state hash" in result.err, result.err

        # A trail cut short (its end record gone) is refused as truncated.
        cut = workdir / "cut.jsonl"
        cut.write_bytes(b"\n".join(trail.read_bytes().splitlines()[:-1]) + b"\n")
        result = await channels("verify", str(cut))
        assert result.code == 1 and "truncated" in result.err, result
