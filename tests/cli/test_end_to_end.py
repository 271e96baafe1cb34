"""The CLI against two real desk nodes on a real anvil.

Both nodes run in this process, in the test's nursery, exactly as ``channels node`` runs them
(:func:`channels.cli.serve_desk`: ``open_node`` + the control server + the event log). The
one-shot commands go through the real ``main()`` in a worker thread (``trio.to_thread``), so
argument parsing, the control socket, the output and the exit codes are all the real ones.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from adjudicator import devchain
from adjudicator.deploy import Deployment, deploy_dev_setup
from adjudicator.rpc import open_rpc
from channels import cli, control
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner


@dataclass(frozen=True)
class Chain:
    url: str
    deployment: Deployment
    keys: tuple[str, ...]


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with devchain.anvil(devchain.AnvilConfig()) as dev:
        keys = dev.private_keys
        desks = [LocalSigner.from_hex(keys[i]).address for i in (1, 2)]

        async def setup() -> Deployment:
            async with open_rpc(dev.url) as rpc:
                return await deploy_dev_setup(rpc, keys[0], fund=desks)

        yield Chain(dev.url, trio.run(setup), keys)


@pytest.fixture
def workdir() -> Iterator[Path]:
    # A short path: the control socket lives next to the store, and Unix socket paths are short.
    with tempfile.TemporaryDirectory(prefix="occli-", dir="/tmp") as d:
        yield Path(d)


def desk_config(
    workdir: Path,
    name: str,
    chain: Chain,
    key_env: str,
    listen: bool,
    peer: bytes,
    approve: str,
) -> Path:
    """A desk that declares its one peer: a channel of up to 10 tokens, a 60 s challenge period,
    and the value-moving trades (``approve``) its operator consents to in advance."""
    dep = chain.deployment
    assert dep.token is not None
    oracle = LocalSigner.from_hex(chain.keys[9]).address
    text = f"""
[node]
key_env = "{key_env}"
store = "{name}.sqlite"
listen_host = "127.0.0.1"
{"listen_port = 0" if listen else ""}
update_timeout = 10
open_timeout = 30

[chain]
rpc_url = "{chain.url}"
adjudicator = "{to_checksum(dep.adjudicator)}"
confirmations = 1
poll_interval = 0.05
asset = "{to_checksum(dep.token)}"
oracle = "{to_checksum(oracle)}"
challenge_period = 60

[peers.other]
address = "{to_checksum(peer)}"
min_challenge_period = 60
approve = {approve}

[peers.other.assets.token]
address = "{to_checksum(dep.token)}"
max_deposit = "10"
"""
    path = workdir / f"{name}.toml"
    path.write_text(text)
    return path


class Runner:
    """Runs ``channels ...`` in a worker thread and returns (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.lock = trio.Lock()

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        async with self.lock:  # one command at a time, so the captured output is its own
            self.capsys.readouterr()
            code = await trio.to_thread.run_sync(cli.main, list(argv))
            captured = self.capsys.readouterr()
            return code, captured.out, captured.err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self("--json", *argv)
        assert code == 0, err
        return json.loads(out)


async def test_cli_drives_two_desks(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OC_TEST_KEY_A", chain.keys[1])
    monkeypatch.setenv("OC_TEST_KEY_B", chain.keys[2])
    key_a, key_b = (LocalSigner.from_hex(chain.keys[i]).address for i in (1, 2))
    # A writes the put B buys; B buys A's call; each lets the other unwind.
    cfg_a = desk_config(workdir, "a", chain, "OC_TEST_KEY_A", False, key_b, '["write", "unwind"]')
    cfg_b = desk_config(workdir, "b", chain, "OC_TEST_KEY_B", True, key_a, '["buy", "unwind"]')
    a, b = str(cfg_a), str(cfg_b)
    run = Runner(capsys)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            conf_a, conf_b = cli.load_config(cfg_a), cli.load_config(cfg_b)
            node_b = await nursery.start(cli.serve_desk, conf_b, cli.load_signer(conf_b))
            node_a = await nursery.start(cli.serve_desk, conf_a, cli.load_signer(conf_a))
            assert node_b.listen_port
            peer = f"{to_checksum(node_b.address)}@127.0.0.1:{node_b.listen_port}"

            status = await run.json("-c", a, "status")
            assert status["channels"] == []
            assert status["node"]["address"] == to_checksum(node_a.address)

            # open ----------------------------------------------------------------------------
            code, out, err = await run("-c", a, "--raw", "open", peer, "--deposit", "1_000_000")
            assert code == 0, err
            assert "opening a channel" in err
            opened = re.fullmatch(
                r"channel (0x[0-9a-f]{64}) with other open v(\d+): ours 1000000, theirs 1000000\n",
                out,
            )
            assert opened is not None, out
            cid, v = opened.group(1), int(opened.group(2))  # 1 or 2 crediting states
            short = cid[:12]  # "0x" and 10 hex digits, as the status table shows it

            # pay, write, buy, unwind -------------------------------------------------------
            code, out, err = await run("-c", a, "pay", short, "0.001")  # 6 decimals: 1000 units
            assert code == 0, err
            # the peer by its [peers] name
            assert out == f"paid 0.001 to other: version {v + 1}, ours 0.999, theirs 1.001\n"
            written = await run.json(
                "-c", a, "write", short, "--kind", "call", "--underlying", "ETH-USD",
                "--strike", "3000", "--expiry", "+7d", "--quantity", "1",
                "--premium", "0.025", "--collateral", "0.5",
            )  # fmt: skip
            position = written["position"]
            assert position["strike"] == "3000" and position["quantity"] == "1"
            assert (written["ours"], written["theirs"]) == ("0.524", "0.976")
            assert position["side"] == "written" and written["version"] == v + 2
            code, out, err = await run(
                "-c", b, "buy", short, "--kind", "put", "--underlying", "ETH-USD",
                "--strike", "2800.5", "--expiry", "+2d", "--quantity", "0.1",
                "--premium", "9000", "--collateral", "200_000", "--raw",
            )  # fmt: skip
            assert code == 0, err
            assert "bought: put ETH-USD strike 2800.5 qty 0.1" in out
            code, out, err = await run("-c", a, "unwind", short, str(position["id"]), "0.1")
            assert code == 0, err

            # top-up and partial withdrawal (on chain, the channel stays open) ----------------
            before = (await run.json("--raw", "-c", a, "status"))["channels"][0]["ours"]
            code, out, err = await run("-c", a, "top-up", short, "0.05")
            assert code == 0, err
            assert out.startswith("topped up 0.05: version ")
            code, out, err = await run("-c", a, "withdraw", short, "0.02")
            assert code == 0, err
            assert out.startswith("withdrew 0.02: version ")
            after = (await run.json("--raw", "-c", a, "status"))["channels"][0]["ours"]
            assert after - before == 30_000
            credits = await run.json("-c", a, "withdraw", "--credits")
            assert credits["withdrawn"] == "0"  # nothing was left credited by a failed payout

            # status: a table on both sides ---------------------------------------------------
            code, out, err = await run("-c", a, "status")
            assert code == 0, err
            lines = out.splitlines()
            assert lines[1].startswith("chain time 20")  # the chain is up: its time is shown
            h = next(i for i, ln in enumerate(lines) if ln.startswith("CHANNEL"))
            assert "peers connected: 1 of 1" in lines[:h]
            assert lines[h].split()[:4] == ["CHANNEL", "PEER", "ONLINE", "PHASE"]
            row = lines[h + 1].split()
            assert row[0] == short and row[2] == "yes" and row[3] == "open"
            assert row[8] == "1"  # the put is open
            assert "off-chain" in lines[h + 1] and "expiry 20" in lines[h + 1]
            assert any("held" not in ln and "written" in ln for ln in lines[h + 3 :])  # positions
            a_rows = (await run.json("-c", a, "status"))["channels"]
            b_rows = (await run.json("-c", b, "status"))["channels"]
            assert a_rows[0]["version"] == b_rows[0]["version"]
            assert a_rows[0]["ours"] == b_rows[0]["theirs"]
            assert a_rows[0]["theirs"] == b_rows[0]["ours"]
            assert a_rows[0]["positions"][0]["side"] == "written"  # A wrote the put B bought
            assert b_rows[0]["positions"][0]["side"] == "held"

            # a refusal is one line, exit 1, and the channel is unchanged --------------------
            code, out, err = await run("-c", b, "pay", short, "999_999_999")
            assert code == 3 and out == ""
            assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
            assert "InsufficientFunds" in err
            code, out, err = await run("-c", b, "pay", "0xdead", "1")
            assert (code, err) == (
                2,
                "error: no channel 0xdead on this node (`status` lists them)\n",
            )
            code, out, err = await run("-c", b, "--json", "pay", "0xdead", "1")
            assert code == 2 and json.loads(out)["error"]["code"] == "usage"

            # export ------------------------------------------------------------------------
            audit_path = workdir / "audit.jsonl"
            code, out, err = await run("-c", a, "export", short, "-o", str(audit_path))
            assert code == 0, err
            records = [json.loads(line) for line in audit_path.read_text().splitlines()]
            states = [r["state"] for r in records if "state" in r]
            (channel_record,) = [r for r in records if "params" in r]
            assert channel_record["channel"] == cid
            versions = [s["version"] for s in states]
            # Strictly increasing from 0; a version can be missing: a proposal the peer refused
            # (crediting a deposit it had not seen confirmed yet) burns its version number.
            assert versions[0] == 0 and versions == sorted(set(versions))
            assert all(len(s["signatures"]) == 2 for s in states)
            assert states[-1]["version"] == a_rows[0]["version"]
            assert channel_record["params"]["participants"][0] == to_checksum(node_a.address)
            code, out, err = await run("verify", str(audit_path))
            assert code == 0, err
            assert f"{len(states)} signed state(s)" in out

            # close -------------------------------------------------------------------------
            code, out, err = await run("-c", b, "close", short)
            assert code == 3 and "OpenPositionsAtFinal" in err  # the put is still open
            put_id = b_rows[0]["positions"][0]["id"]
            code, out, err = await run("-c", b, "unwind", short, str(put_id), "0")
            assert code == 0, err
            code, out, err = await run("-c", b, "close", short)
            assert code == 0, err
            assert "closed at version" in out
            # The watcher may already have withdrawn the payout by the time close returns.
            assert "(concluded)" in out or "(withdrawn)" in out
            while True:  # A learns of the conclusion from the chain
                closed = (await run.json("-c", a, "status"))["channels"][0]
                if closed["phase"] == "closed":
                    break
                await trio.sleep(0.05)
            assert closed["finality"] in ("concluded", "withdrawn")
            code, out, err = await run("-c", b, "close", short)  # closing twice
            assert code == 3 and "is already closed" in err and out == ""

            # dispute a second channel: B goes on chain, the test moves chain time ------------
            code, out, err = await run("-c", a, "open", peer, "--deposit", "0.005")
            assert code == 0, err
            cid2 = out.split()[1]
            code, out, err = await run("-c", a, "pay", cid2, "0.0007")
            assert code == 0, err
            v2 = int(out.split("version ")[1].split(",")[0])

            async def dispute() -> tuple[int, str, str]:
                return await trio.to_thread.run_sync(
                    cli.main, ["-c", b, "dispute", cid2[:12], "--follow", "--poll", "0.1"]
                )

            result: list[int] = []

            async def run_dispute() -> None:
                result.append(await dispute())  # type: ignore[arg-type]

            nursery.start_soon(run_dispute)
            while True:  # until B's node has registered its state on chain
                # (straight to the socket: the dispute's progress output stays in capsys)
                rows = await control.call(conf_a.control, "status")
                row2 = next(r for r in rows if r["id"] == cid2)
                if row2["finality"] == "registered" and row2["dispute_deadline"]:
                    break
                await trio.sleep(0.05)
            assert row2["phase"] == "disputed"
            await trio.sleep(
                0.5
            )  # the dispute command polls every 0.1 s: let it show the countdown
            async with open_rpc(chain.url) as rpc:
                await rpc.dev.increase_time(61)
                await rpc.dev.evm_mine()
            while not result:
                await trio.sleep(0.05)
            assert result == [0]
            captured = capsys.readouterr()
            assert "forcing a close" in captured.err
            assert "challenge period ends 20" in captured.err
            assert f"channel {cid2} concluded on chain at version {v2}" in captured.out
            for cfg in (a, b):  # A learns of the conclusion from the chain, maybe a poll later
                while True:
                    rows = (await run.json("-c", cfg, "status"))["channels"]
                    if next(r for r in rows if r["id"] == cid2)["phase"] == "closed":
                        break
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert not (workdir / "a.sqlite.sock").exists()
