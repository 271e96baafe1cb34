"""``benchmarks/run.py --quick`` runs and prints every field of the pair scenario with its floor.

A smoke test only: nothing here looks at a figure's value (speed is shown by the benchmark, never
asserted in a test; see benchmarks/README.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FIELDS = (
    "floor: one SQLite WAL commit, FULL p50 / p99",
    "floor: loopback TCP round trip between two processes",
    "floor: sign / verify one digest",
    "floor: sequential round = 2 commits + RTT + 2 (sign+verify)",
    "floor: signing ceiling",
    "sequential pay from the leader, FULL: p50 / p99",
    "sequential pay from the follower, FULL: p50 / p99",
    "calls/s / signed versions/s",
    "CPU per signed version, leader / follower",
    "idle CPU with the channel open",
    "the same less idle CPU",
    "64 concurrent pay callers, one channel, FULL: signed versions/s",
    "batched, 100 trades per update (50 OpenOption + 50 Unwind)",
    "x floor",
)


def test_quick_benchmark_prints_every_field(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--only",
            "platform,pair",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    missing = [f for f in FIELDS if f not in out]
    assert not missing, f"missing from the output: {missing}\n{out}"
    assert "FAILED" not in out, out
    assert (tmp_path / "summary.json").exists()
