"""``main()``: exit codes, one-line errors, key refusals; and the real console entry point."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from channels import cli
from channels.core.errors import InsufficientFunds

KEY = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "channels" in capsys.readouterr().out
    for command in ("chain", "deploy", "node", "status", "open", "write", "dispute", "export"):
        assert cli.main([command, "--help"]) == 0


def test_usage_errors_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["pay", "0xab"]) == 2  # missing amount
    capsys.readouterr()
    assert cli.main(["status"]) == 2  # no --config and no socket
    assert capsys.readouterr().err.strip() == (
        "error: give --config desk.toml (or set CHANNELS_CONFIG)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["node", "--key", KEY],
        ["--key", "0x" + KEY, "status"],
        ["deploy", "--private-key=" + KEY, "--rpc-url", "http://x"],
        ["deploy", "--key-env", KEY, "--rpc-url", "http://x"],  # the key, not a variable name
        ["chain", "--key-env", "0x" + KEY],
    ],
)
def test_key_on_command_line_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing a private key on the command line")
    assert KEY not in err
    assert len(err.strip().splitlines()) == 1


def test_config_errors_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(tmp_path / "none.toml"), "status"]) == 2
    assert capsys.readouterr().err == f"error: config file {tmp_path / 'none.toml'} not found\n"
    cfg = tmp_path / "d.toml"
    cfg.write_text('[node]\nkey_env = "CLI_TEST_UNSET_KEY"\nstore = "d.sqlite"\n')
    assert cli.main(["node", "--config", str(cfg)]) == 2
    assert "CLI_TEST_UNSET_KEY (the private key) is not set" in capsys.readouterr().err


def test_a_serving_command_puts_logging_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``channels node`` logs to stderr while it runs; run in-process (here, an embedding
    program) it must leave the root logger as it found it. It used to leave its handler bound to
    the stderr of the moment (this test's capture), and every later log line printed
    "--- Logging error ---" once that stream was closed."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("httpx").level)
    cfg = tmp_path / "d.toml"
    cfg.write_text('[node]\nkey_env = "CLI_TEST_UNSET_KEY"\nstore = "d.sqlite"\n')
    assert cli.main(["node", "--config", str(cfg), "--log-level", "debug"]) == 2
    capsys.readouterr()
    assert (list(root.handlers), root.level, logging.getLogger("httpx").level) == before


def test_no_node_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text('[node]\nkey_env = "K"\nstore = "d.sqlite"\n')
    assert cli.main(["-c", str(cfg), "status"]) == 6
    err = capsys.readouterr().err
    assert err.startswith("error: no node is serving ")
    assert err.count("\n") == 1


def test_report_flattens_groups(capsys: pytest.CaptureFixture[str]) -> None:
    group = ExceptionGroup(
        "x", [ExceptionGroup("y", [InsufficientFunds("participant 0 has 5,\ncannot pay 9")])]
    )
    assert cli.report(group) == 3
    assert capsys.readouterr().err == (
        "error: refused (InsufficientFunds): participant 0 has 5, cannot pay 9; the balance "
        "does not cover it; see `status` for ours and theirs\n"
    )
    assert cli.report(BaseExceptionGroup("k", [KeyboardInterrupt()])) == 130
    assert cli.report(FileNotFoundError(2, "No such file or directory", "/x")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: No such file or directory: /x"
    assert cli.report(trio.TooSlowError()) == 4
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith("error: the peer did not answer in time; check that its node runs")
    )
    assert cli.report(cli.UsageError("bad")) == 2
    assert cli.report(RuntimeError("boom")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: internal error (RuntimeError: boom); set CHANNELS_DEBUG=1 for the traceback "
        "and report it"
    )


def test_internal_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(args: object) -> int:
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "run", explode)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["--socket", "/nonexistent.sock", "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: internal error (KeyError: 'surprise'); ")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "channels.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
    )


def test_subprocess_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    ok = _run("--help", cwd=tmp_path)
    assert ok.returncode == 0 and "usage: channels" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[node]\nstore = 's'\nkey = 'deadbeef'\n")
    for args, code in (
        (("--config", str(bad), "node"), 2),
        (("--config", str(tmp_path / "missing.toml"), "status"), 2),
        (("node", "--key", KEY), 2),
    ):
        result = _run(*args, cwd=tmp_path)
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert KEY not in result.stderr and "deadbeef" not in result.stderr
