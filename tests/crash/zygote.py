"""A fork server for desk processes: import the node once, fork a child per desk start.

Importing the node (eth_account, the ABI codecs, ...) takes over a second of CPU; the kill -9
matrix starts four desk processes per case. This program imports ``desk_process`` once and then
forks: every desk is still its own OS process, with its own pid, file descriptors and SQLite
connection, and dies by SIGKILL exactly like an exec'd one. Nothing here runs trio or opens a
store before the fork, and the zygote has no threads.

Protocol on stdin (one JSON line per request):
``{"id": 1, "config": {...}, "crash_at": "state:pre_write:2" | null, "stdin": fifo, "stdout": fifo,
"stderr": log path}``. Replies on stdout: ``{"id": 1, "pid": 1234}`` and, when a child ends,
``{"exit": 1234, "code": -9}`` (negative: killed by that signal).

In the child, ``CHANNELS_CRASH_AT`` is set in the environment and ``channels.testing.crash`` is
reloaded, so the product reads its crash point from the environment as it does at a normal start.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import channels.testing.crash  # noqa: E402
from tests.crash import desk_process  # noqa: E402


def child(request: dict[str, object]) -> None:
    crash_at = request.get("crash_at")
    if crash_at:
        os.environ[channels.testing.crash.ENV] = str(crash_at)
    else:
        os.environ.pop(channels.testing.crash.ENV, None)
    importlib.reload(channels.testing.crash)  # re-read the environment, as a fresh process would
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    stdin = os.open(str(request["stdin"]), os.O_RDONLY)
    stdout = os.open(str(request["stdout"]), os.O_WRONLY)
    stderr = os.open(str(request["stderr"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    sys.argv = [str(desk_process.__file__), json.dumps(request["config"])]
    code = 0
    try:
        desk_process.main()
    except BaseException:  # report and leave without running the zygote's cleanup
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        reply({"exit": pid, "code": code})


def reply(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    buffer = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.02)
        reap()
        if not ready:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if not line.strip():
                continue
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                child(request)
            reply({"id": request["id"], "pid": pid})
    # stdin closed: the harness is done (it stops or kills its desks itself).
    reap()


if __name__ == "__main__":
    main()
