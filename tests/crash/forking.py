"""Desk children forked from the zygote (``zygote.py``, one per test session): the fork server's
client and a forked child with the surface of ``subprocess.Popen`` that ``Desk`` uses."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def child_env(crash_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHANNELS_CRASH_AT"}
    if crash_at is not None:
        env["CHANNELS_CRASH_AT"] = crash_at
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class _Zygote:
    """The fork server (one per test session), shared by every thread of the harness."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "zygote.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(None),
            cwd=str(ROOT),
        )
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._ids = iter(range(1, 10**9))
        self.pids: dict[int, int] = {}
        self.exits: dict[int, int] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            with self._cond:
                if "exit" in obj:
                    self.exits[int(obj["exit"])] = int(obj["code"])
                else:
                    self.pids[int(obj["id"])] = int(obj["pid"])
                self._cond.notify_all()

    def spawn(self, request: dict[str, Any]) -> int:
        request_id = next(self._ids)
        with self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"id": request_id, **request}) + "\n")
            self.proc.stdin.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: request_id in self.pids, 30):
                raise AssertionError("the zygote did not fork")
            return self.pids.pop(request_id)

    def wait(self, pid: int, timeout: float | None) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self.exits, timeout)
            return self.exits.get(pid)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


_ZYGOTE: _Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def zygote() -> _Zygote:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or _ZYGOTE.proc.poll() is not None:
            _ZYGOTE = _Zygote()
            atexit.register(_ZYGOTE.close)
        return _ZYGOTE


def _open_fifo(path: Path, flags: int, unblock: Callable[[], None], timeout: float = 30) -> int:
    """A blocking FIFO open that a watchdog unblocks if the other side never comes."""
    timer = threading.Timer(timeout, unblock)
    timer.start()
    try:
        return os.open(str(path), flags)
    finally:
        timer.cancel()


class ZygoteChild:
    """A forked desk: the same surface as ``subprocess.Popen`` as far as ``Desk`` uses it."""

    def __init__(self, config: dict[str, Any], crash_at: str | None, base: Path, log: Path) -> None:
        self.zygote = zygote()
        fifo_in, fifo_out = Path(f"{base}.in"), Path(f"{base}.out")
        for fifo in (fifo_in, fifo_out):
            fifo.unlink(missing_ok=True)
            os.mkfifo(fifo)
        self.pid = self.zygote.spawn(
            {
                "config": config,
                "crash_at": crash_at,
                "stdin": str(fifo_in),
                "stdout": str(fifo_out),
                "stderr": str(log),
            }
        )

        # The child opens its stdin first, then its stdout: the same order here.
        def unblock_in() -> None:
            os.close(os.open(str(fifo_in), os.O_RDONLY | os.O_NONBLOCK))

        fd_in = _open_fifo(fifo_in, os.O_WRONLY, unblock_in)
        self.stdin = os.fdopen(fd_in, "w")

        def unblock_out() -> None:
            try:
                os.close(os.open(str(fifo_out), os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

        self.stdout = os.fdopen(_open_fifo(fifo_out, os.O_RDONLY, unblock_out), "r")

    def poll(self) -> int | None:
        return self.zygote.exits.get(self.pid)

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def wait(self, timeout: float | None = None) -> int:
        code = self.zygote.wait(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        return code
