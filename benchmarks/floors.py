"""The floors every node figure is compared with, measured in the same run on the same machine.

    .venv/bin/python benchmarks/floors.py [--quick]

* one SQLite WAL commit of a ~1 KB row (``synchronous`` FULL and NORMAL): the price of each
  durable step;
* the loopback round trip between two OS processes over TCP on 127.0.0.1 (a small message there
  and back, ``TCP_NODELAY``);
* signing one digest and verifying one signature, as the node does them
  (``LocalSigner.sign_digest`` and ``signing.verify``).

Two derived floors: a sequential round costs at least ``2 x commit + RTT + 2 x (sign + verify)``
(each side makes the state durable before answering or returning, each side signs and verifies
once); one core signs and verifies at most ``1 / (sign + verify)`` versions per second.
Nothing here asserts on time.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from channels.core.hashing import keccak256  # noqa: E402
from channels.core.signing import LocalSigner, verify  # noqa: E402

# A child process that echoes what it receives (one connection, bounded by the parent's count).
_ECHO = """
import socket, sys
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(30)
conn, _ = srv.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
conn.settimeout(30)
while True:
    data = conn.recv(65536)
    if not data:
        break
    conn.sendall(data)
"""


def _pcts(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {
        "p50_us": s[len(s) // 2] / 1000,
        "p99_us": s[min(len(s) - 1, int(len(s) * 0.99))] / 1000,
        "mean_us": statistics.fmean(s) / 1000,
    }


def sqlite_commit(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = 100 if quick else 300
    with tempfile.TemporaryDirectory(prefix="optchan-fsync-") as tmp:
        for mode in ("FULL", "NORMAL"):
            conn = sqlite3.connect(str(Path(tmp) / f"{mode}.db"), isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {mode}")
            conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            samples = []
            for i in range(n):
                t0 = time.perf_counter_ns()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?, ?)", (i, os.urandom(1000)))
                conn.execute("COMMIT")
                samples.append(time.perf_counter_ns() - t0)
            conn.close()
            out[f"sqlite_commit_{mode.lower()}"] = _pcts(samples)
    return out


def loopback_rtt(quick: bool, size: int = 300) -> dict[str, float]:
    """Round trip of a ``size``-byte message to another process over TCP on 127.0.0.1."""
    n = 300 if quick else 2000
    child = subprocess.Popen(
        [sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            payload = os.urandom(size)
            samples = []
            for i in range(n + 50):
                t0 = time.perf_counter_ns()
                sock.sendall(payload)
                got = 0
                while got < size:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise RuntimeError("the echo process closed the connection")
                    got += len(chunk)
                if i >= 50:
                    samples.append(time.perf_counter_ns() - t0)
        return _pcts(samples)
    finally:
        child.wait(10)


def crypto(quick: bool) -> dict[str, float]:
    """Median µs to sign one digest and to verify one signature (recover + compare)."""
    n = 500 if quick else 3000
    signer = LocalSigner(keccak256(b"floor signer"))
    digests = [keccak256(i.to_bytes(8, "big")) for i in range(n)]
    sign_ns, verify_ns = [], []
    sigs = []
    for d in digests:
        t0 = time.perf_counter_ns()
        sig = signer.sign_digest(d)
        sign_ns.append(time.perf_counter_ns() - t0)
        sigs.append(sig)
    for d, sig in zip(digests, sigs, strict=True):
        t0 = time.perf_counter_ns()
        verify(d, sig, signer.address)
        verify_ns.append(time.perf_counter_ns() - t0)
    sign_us = statistics.median(sign_ns) / 1000
    verify_us = statistics.median(verify_ns) / 1000
    return {"sign_us": sign_us, "verify_us": verify_us, "sign_verify_us": sign_us + verify_us}


def measure(quick: bool) -> dict[str, Any]:
    """All floors, plus the two derived from them."""
    out = sqlite_commit(quick)
    out["rtt"] = loopback_rtt(quick)
    out["crypto"] = crypto(quick)
    commit = out["sqlite_commit_full"]["p50_us"]
    sv = out["crypto"]["sign_verify_us"]
    out["sequential_floor_us"] = 2 * commit + out["rtt"]["p50_us"] + 2 * sv
    out["signing_ceiling_per_s"] = 1e6 / sv
    return out


if __name__ == "__main__":
    print(json.dumps(measure("--quick" in sys.argv), indent=2))
