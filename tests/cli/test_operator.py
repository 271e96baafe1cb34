"""The operator's surface against two real desks on anvil: channels named by peer, human units,
ours first on both sides, settle with the dev oracle, getinfo / peers, dispute returning at once,
errors that name the peer and say what to do, exit codes, JSON errors, a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from adjudicator.rpc import open_rpc
from channels import cli, control
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner

from .test_end_to_end import Chain, Runner, chain, desk_config, workdir

__all__ = ["chain", "workdir"]  # fixtures


def named_desk(workdir: Path, name: str, peer: str, chain: Chain, key_env: str, port: int) -> Path:
    """A desk config with the other desk as a named peer and a short update timeout."""
    peer_key = chain.keys[2] if name == "a" else chain.keys[1]
    peer_address = LocalSigner.from_hex(peer_key).address
    approve = '["pay", "buy", "write", "unwind", "withdraw"]'
    path = desk_config(workdir, name, chain, key_env, True, peer_address, approve)
    text = path.read_text().replace("update_timeout = 10", "update_timeout = 3")
    text = text.replace("listen_port = 0", f"listen_port = {port}")
    text = text.replace(
        "[peers.other]", f'[peers.{peer}]\nhost = "127.0.0.1"\nport = {{PEER_PORT}}'
    )
    text = text.replace("[peers.other.assets.token]", f"[peers.{peer}.assets.token]")
    text = text.replace('max_deposit = "10"', 'max_deposit = "1000"')
    path.write_text(text)
    return path


async def test_operator_commands(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.cli.desks import free_port

    monkeypatch.setenv("OC_OP_KEY_A", chain.keys[1])
    monkeypatch.setenv("OC_OP_KEY_B", chain.keys[2])
    port_a, port_b = free_port(), free_port()
    cfg_a = named_desk(workdir, "a", "desk-b", chain, "OC_OP_KEY_A", port_a)
    cfg_b = named_desk(workdir, "b", "desk-a", chain, "OC_OP_KEY_B", port_b)
    cfg_a.write_text(cfg_a.read_text().replace("{PEER_PORT}", str(port_b)))
    cfg_b.write_text(cfg_b.read_text().replace("{PEER_PORT}", str(port_a)))
    a, b = str(cfg_a), str(cfg_b)
    run = Runner(capsys)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            conf_a, conf_b = cli.load_config(cfg_a), cli.load_config(cfg_b)
            b_scope = trio.CancelScope()

            async def run_b(task_status: trio.TaskStatus[None]) -> None:
                with b_scope:
                    await cli.serve_desk(conf_b, cli.load_signer(conf_b), task_status=task_status)

            await nursery.start(run_b)
            await nursery.start(cli.serve_desk, conf_a, cli.load_signer(conf_a))

            # open and pay by peer name, in the token's units (6 decimals) -----------------
            code, out, err = await run("-c", a, "open", "desk-b", "--deposit", "100")
            assert code == 0, err
            assert " with desk-b open " in out and "ours 100, theirs 100" in out
            code, out, err = await run("-c", a, "pay", "desk-b", "1.5")
            assert code == 0, err
            assert "paid 1.5 to desk-b" in out and "ours 98.5, theirs 101.5" in out
            # the follower prints its own balance first too
            code, out, err = await run("-c", b, "pay", "desk-a", "0.5")
            assert code == 0, err
            assert "paid 0.5 to desk-a" in out and "ours 101, theirs 99" in out
            raw = await run.json("-c", b, "--raw", "pay", "desk-a", "250000")
            assert (raw["ours"], raw["theirs"]) == (100_750_000, 99_250_000)
            code, out, err = await run("-c", a, "pay", "desk-b", "0.0000001")
            assert code == 2 and "more than the asset's 6 decimals" in err

            # an option that expires soon, then settles with the dev oracle's price -----------
            code, out, err = await run(
                "-c", a, "write", "desk-b", "--kind", "call", "--underlying", "ETH-USD",
                "--strike", "3000", "--expiry", "+2h", "--quantity", "0.5",
                "--premium", "2", "--collateral", "50",
            )  # fmt: skip
            assert code == 0, err
            assert "position 1 written: call ETH-USD strike 3000 qty 0.5" in out
            code, out, err = await run(
                "-c", a, "write", "desk-b", "--kind", "call", "--underlying", "ETH-USD",
                "--strike", "3000", "--expiry", "2020-01-01T00:00Z", "--quantity", "1",
                "--premium", "1", "--collateral", "1",
            )  # fmt: skip
            assert code == 3, err
            assert "ExpiryTooSoon" in err and "2020-01-01T00:00:00Z" in err
            assert "choose a later --expiry" in err
            code, out, err = await run(
                "-c", a, "settle", "desk-b", "1", "--dev-oracle", "--price", "3100"
            )
            assert code == 2 and "can be settled after that" in err
            async with open_rpc(chain.url) as rpc:
                await rpc.dev.increase_time(3 * 3600)
                await rpc.dev.evm_mine()
            expiry = (await control.call(conf_a.control, "status"))[0]["positions"][0]["expiry"]
            for conf in (conf_a, conf_b):  # until both nodes have seen the new chain time
                while (await control.call(conf.control, "ping"))["now"] < expiry:
                    await trio.sleep(0.05)
            code, out, err = await run(
                "-c", a, "settle", "desk-b", "1", "--dev-oracle", "--price", "3100"
            )
            assert code == 0, err
            # payoff (3100 - 3000) x 0.5 = 50: all the collateral goes to the holder (desk B)
            assert "position 1 settled" in out
            status = await run.json("-c", a, "status")
            row = status["channels"][0]
            assert row["positions"] == [] and row["peer"] == "desk-b" and row["peer_connected"]
            assert (row["ours"], row["theirs"]) == ("51.25", "148.75")
            assert status["node"]["now"].endswith("Z") and status["health"]["chain_reachable"]

            # getinfo, peers ------------------------------------------------------------------
            info = await run.json("-c", a, "getinfo")
            assert info["channels_by_phase"] == {"open": 1} and info["peers_connected"] == 1
            assert info["health"]["chain_reachable"] is True
            code, out, err = await run("-c", a, "getinfo")
            assert code == 0 and "chain: ok, block" in out and "peers connected: 1 of 1" in out

            # a desk with no metrics keys serves /metrics and /healthz, on loopback only -------
            url = info["metrics_url"]
            assert url.startswith("http://127.0.0.1:") and f"metrics {url}/metrics" in out
            scraped = await trio.to_thread.run_sync(httpx.get, f"{url}/metrics")
            assert scraped.status_code == 200
            assert 'channels_channels{phase="open"} 1.0' in scraped.text
            healthz = await trio.to_thread.run_sync(httpx.get, f"{url}/healthz")
            assert healthz.status_code in (200, 503) and "chain_reachable" in healthz.text
            peers = await run.json("-c", a, "peers")
            assert peers[0]["name"] == "desk-b" and peers[0]["connected"] is True
            code, out, err = await run("-c", a, "peers")
            assert code == 0 and out.splitlines()[1].split()[0] == "desk-b"

            # a closed pipe: no traceback -----------------------------------------------------
            proc = subprocess.Popen(
                [sys.executable, "-m", "channels.cli", "-c", a, "--json", "export"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert proc.stdout is not None and proc.stderr is not None
            stdout, stderr_pipe = proc.stdout, proc.stderr

            stdout.close()  # the reader is gone before the command writes (it takes >0.1 s)
            # In worker threads: the nodes answering the command run on this trio loop.
            stderr = await trio.to_thread.run_sync(stderr_pipe.read)
            code = await trio.to_thread.run_sync(proc.wait)
            assert b"Traceback" not in stderr and code == 141, stderr

            # the peer goes offline: named, with a hint at dispute; exit 4 --------------------
            b_scope.cancel()
            code, out, err = await run("-c", a, "pay", "desk-b", "1")
            assert code == 4, err
            assert err.startswith("error: peer desk-b "), err
            assert f"channels -c {a} dispute desk-b" in err
            code, out, err = await run("-c", a, "--json", "pay", "desk-b", "1")
            assert code == 4 and out.count("\n") == 1
            failure = json.loads(out)["error"]
            assert failure["category"] == "peer" and failure["exit_code"] == 4
            code, out, err = await run("-c", a, "status")
            assert code == 0 and " desk-b  no " in out  # the ONLINE column

            # dispute returns at once with the deadline -----------------------------------------
            code, out, err = await run("-c", a, "dispute", "desk-b")
            assert code == 0, err
            assert "registered at version" in out and "challenge period ends 20" in out
            assert "--follow" in out
            nursery.cancel_scope.cancel()


def test_units() -> None:
    from channels.cli.units import (
        Amount,
        UnitError,
        iso_duration,
        iso_time,
        parse_duration_text,
    )
    from channels.core.units import fmt_units

    assert Amount("1.5").units(6) == 1_500_000
    assert Amount("1_000").units(6) == 1_000_000_000
    assert Amount("1500000").units(6, raw=True) == 1_500_000
    for bad, decimals, raw in (("1.5", 6, True), ("0.0000001", 6, False)):
        with pytest.raises(UnitError):
            Amount(bad).units(decimals, raw=raw)
    assert fmt_units(1_500_000, 6) == "1.5" and fmt_units(10**18, 18) == "1"
    assert fmt_units(5, 6) == "0.000005" and fmt_units(0, 6) == "0"
    assert iso_time(1_700_000_000) == "2023-11-14T22:13:20Z"
    assert iso_duration(3600) == "PT1H" and iso_duration(7 * 86400 + 90) == "P7DT1M30S"
    assert parse_duration_text("PT1H30M") == 5400 and parse_duration_text("1d12h") == 129_600
    with pytest.raises(UnitError):
        parse_duration_text("soon")


def test_addresses_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    typo = "0x5FbDB2315678afecb367f032d93F642f64180aA3"  # one letter's case changed
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'[node]\nstore = "d.sqlite"\n[chain]\nadjudicator = "{typo}"\n')
    with pytest.raises(cli.ConfigError, match=r"\[chain\] adjudicator: .*EIP-55 checksum"):
        cli.load_config(cfg)
    cfg.write_text(f'[node]\nstore = "d.sqlite"\n[chain]\nadjudicator = "{good.lower()}"\n')
    with pytest.raises(cli.ConfigError, match=r"\[chain\] adjudicator: .*no EIP-55 checksum"):
        cli.load_config(cfg)
    cfg.write_text(f'[node]\nstore = "d.sqlite"\n[chain]\nadjudicator = "{good}"\n')
    assert cli.load_config(cfg).adjudicator == bytes.fromhex(good[2:])
    assert cli.main(["-c", str(cfg), "open", "x", "--deposit", "1", "--oracle", typo]) == 2
    assert "EIP-55" in capsys.readouterr().err


def test_chain_refuses_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "channels.cli", "chain", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "desks").exists()


INIT_CHAIN = [
    "--rpc-url", "http://127.0.0.1:8545",
    "--adjudicator", "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "--asset", "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "--oracle", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    "--scrypt-n", "1024",  # a cheap work factor: tests only
]  # fmt: skip


def test_init_writes_a_config_and_an_encrypted_keystore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINE_PASSWORD", "correct horse battery staple")
    config = tmp_path / "d" / "mine.toml"
    args = ["init", str(config), *INIT_CHAIN, "--password-env", "MINE_PASSWORD"]
    assert cli.main(args) == 0
    keystore = tmp_path / "d" / "mine.keystore.json"
    assert keystore.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "d" / "mine.key").exists()
    doc = json.loads(keystore.read_text())  # no raw key on disk: scrypt-encrypted JSON only
    assert doc["crypto"]["kdf"] == "scrypt" and "ciphertext" in doc["crypto"]
    text = config.read_text()
    assert "[keys.channel]" in text and 'password_env = "MINE_PASSWORD"' in text
    assert "key_file" not in text.replace("# the channel key", "")
    cfg = cli.load_config(config)
    signer = cli.load_signer(cfg)
    assert to_checksum(signer.address) in capsys.readouterr().out
    monkeypatch.setenv("MINE_PASSWORD", "a wrong password")
    with pytest.raises(cli.ConfigError, match="wrong password"):
        cli.load_signer(cfg)
    assert cli.main(args) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err


def test_init_with_a_password_file_and_without_a_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = tmp_path / "d" / "pw"
    password.parent.mkdir()
    password.write_text("a long passphrase\n")
    config = tmp_path / "d" / "mine.toml"
    args = ["init", str(config), *INIT_CHAIN, "--password-file", str(password)]
    password.chmod(0o644)  # others may read it: refused, nothing written
    assert cli.main(args) == 2
    assert "chmod 600" in capsys.readouterr().err and not config.exists()
    password.chmod(0o600)
    assert cli.main(args) == 0
    assert 'password_file = "pw"' in config.read_text()  # relative to the config
    cli.load_signer(cli.load_config(config))
    # No password source and no terminal to type one: a usage error, nothing written.
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    other = tmp_path / "d" / "other.toml"
    with open(os.devnull) as no_terminal:
        monkeypatch.setattr(sys, "stdin", no_terminal)
        assert cli.main(["init", str(other), *INIT_CHAIN]) == 2
    assert "--password-env" in capsys.readouterr().err
    assert cli.main(["init", str(other), *INIT_CHAIN, "--password-env", "NOPE_PASSWORD"]) == 2
    assert "NOPE_PASSWORD" in capsys.readouterr().err
    assert not other.exists() and not (tmp_path / "d" / "other.keystore.json").exists()


def test_json_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--json", "pay"]) == 2
    failure = json.loads(capsys.readouterr().out)["error"]
    assert failure["category"] == "usage" and failure["exit_code"] == 2
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("channels ")


def test_node_on_a_busy_port_names_the_port_and_key(chain: Chain, workdir: Path) -> None:
    import os
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        other = LocalSigner.from_hex(chain.keys[1]).address
        path = desk_config(workdir, "busy", chain, "OC_BUSY_KEY", True, other, "[]")
        path.write_text(path.read_text().replace("listen_port = 0", f"listen_port = {port}"))
        result = subprocess.run(
            [sys.executable, "-m", "channels.cli", "node", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, OC_BUSY_KEY=chain.keys[3]),
        )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: port {port} is already in use ([node] listen_port in {path}): stop the process "
        "using it or choose another port"
    )
    assert "Traceback" not in result.stderr
