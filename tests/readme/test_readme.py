"""The README's commands work exactly as printed: every shell block and the bot example run, in
order, against a fresh chain and two desk nodes, as a newcomer following it would run them.

A ``<!-- readme-test: ... -->`` line just before a code block says how to run it:

* none: each command runs in the foreground and must exit 0 without a traceback;
* ``background until "X"``: a long-running command (its own terminal in the README) starts and
  the next block waits until it prints X; it is stopped with Ctrl-C (SIGINT) at the end and must
  then exit 0;
* ``python FILE, background until "X"``: the Python block is saved as FILE and run likewise,
  except that it must finish by itself;
* ``while the bot waits``: foreground commands run while the block before waits for them;
* ``skip (reason)``: not run here (the reason says what covers it instead).

``export NAME=VALUE`` sets a variable for the commands after it, as in the newcomer's shell. A
``toml`` block is a config fragment to read, not a command.

The install block (``make setup`` and activating ``.venv``) runs in the checkout; everything
after it runs in a fresh directory with the activated environment, so ``desks/`` and the stores
never touch the checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
COMMAND_TIMEOUT = 120.0
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    directive: str
    line: int


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    pending = ""
    while i < len(lines):
        match = DIRECTIVE.fullmatch(lines[i].strip())
        if match:
            pending = match.group(1)
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence:
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(fence.group(1), "\n".join(body) + "\n", pending, start + 1))
            pending = ""
        elif lines[i].strip():
            pending = ""
        i += 1
    return blocks


def commands_of(block: Block) -> list[str]:
    """The block's commands, continuation lines joined; comments and blank lines dropped."""
    commands: list[str] = []
    current = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        commands.append(current + line)
        current = ""
    return commands


class Session:
    """The newcomer's shell: the activated venv, a fresh working directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = dict(os.environ)
        self.env.pop("CHANNELS_CONFIG", None)
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.finishing: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def activate(self) -> None:
        venv = ROOT / ".venv"
        self.env["VIRTUAL_ENV"] = str(venv)
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"

    def export(self, command: str) -> None:
        """``export NAME=VALUE``: later commands see it, as in the newcomer's shell."""
        words = shlex.split(command, comments=True)
        assert words[0] == "export" and len(words) == 2 and "=" in words[1], command
        name, _, value = words[1].partition("=")
        self.env[name] = value

    def run(self, command: str, cwd: Path | None = None) -> str:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd or self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (
            f"`{command}` exited {result.returncode}\n{result.stdout[-2000:]}\n"
            f"{result.stderr[-2000:]}"
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def start(self, command: str, marker: str, *, must_finish: bool = False) -> None:
        log = self.workdir / f"bg-{len(self.background) + len(self.finishing)}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.workdir,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.finishing if must_finish else self.background).append((command, proc, log))
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in log.read_text(errors="replace"):
            assert proc.poll() is None, (
                f"`{command}` exited {proc.returncode} before printing {marker!r}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
            assert time.monotonic() < deadline, f"`{command}` never printed {marker!r}"
            time.sleep(0.2)

    def wait_finished(self) -> list[str]:
        """Wait for the commands that finish by themselves; their output."""
        outputs = []
        for command, proc, log in self.finishing:
            try:
                code = proc.wait(timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"`{command}` did not finish:\n{log.read_text()[-3000:]}")
            text = log.read_text(errors="replace")
            assert code == 0, f"`{command}` exited {code}:\n{text[-3000:]}"
            assert "Traceback" not in text, text
            outputs.append(text)
        self.finishing.clear()
        return outputs

    def stop_all(self) -> list[tuple[str, int | None, str]]:
        """Ctrl-C to every long-running command, newest first (the nodes before the chain)."""
        results = []
        for command, proc, log in reversed(self.background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
            try:
                code: int | None = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = None
            results.append((command, code, log.read_text(errors="replace")))
        self.background.clear()
        return results


@pytest.fixture
def session() -> Iterator[Session]:
    # A short path: control sockets live next to the stores, and Unix socket paths are short.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ocrd-", dir="/tmp") as d:
        s = Session(Path(d))
        try:
            yield s
        finally:
            for _, proc, _ in s.background + s.finishing:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def test_readme_blocks_all_have_a_way_to_run() -> None:
    for block in readme_blocks(README.read_text()):
        if block.lang == "python":
            assert block.directive.startswith("python ") or block.directive.startswith("skip"), (
                f"README line {block.line}: a python block needs `python FILE, ...` or `skip`"
            )
        if block.directive.startswith("skip"):
            assert "(" in block.directive, f"README line {block.line}: say why it is skipped"


def test_readme_runs_as_printed(session: Session) -> None:
    blocks = [b for b in readme_blocks(README.read_text()) if b.lang in ("sh", "python")]
    ran_bot = False
    for block in blocks:
        directive = block.directive
        if directive.startswith("skip"):
            continue
        if block.lang == "python":
            match = re.fullmatch(r'python (\S+), background until "(.+)"', directive)
            assert match, f"README line {block.line}: unknown directive {directive!r}"
            script = session.workdir / match.group(1)
            script.write_text(block.text)
            session.start(f"python {match.group(1)}", match.group(2), must_finish=True)
            ran_bot = True
            continue
        commands = commands_of(block)
        if "make setup" in commands:  # the install block runs in the checkout
            for command in commands:
                if command.startswith(". .venv/bin/activate"):
                    assert (ROOT / ".venv" / "bin" / "channels").exists()
                    session.activate()
                else:
                    session.run(command, cwd=ROOT)
            continue
        match = re.fullmatch(r'background until "(.+)"', directive)
        if match:
            assert len(commands) == 1, f"README line {block.line}: one command per terminal"
            session.start(commands[0], match.group(1))
            continue
        for command in commands:
            if command.startswith("export "):
                session.export(command)
            else:
                session.run(command)
        if directive == "while the bot waits":
            (bot_output,) = session.wait_finished()
            assert "desk B traded" in bot_output, bot_output
    assert ran_bot, "the README's bot example did not run"
    session.wait_finished()

    # What the walk-through promised, checked from the desks' own view.
    status = session.run("channels -c desks/desk-a.toml --json status")
    assert '"phase": "closed"' in status
    for command, code, output in session.stop_all():
        assert code == 0, f"`{command}` did not stop cleanly on Ctrl-C ({code}):\n{output[-3000:]}"
        assert "Traceback" not in output, output
