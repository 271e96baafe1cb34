"""``benchmarks/store_commit.py`` runs and prints its figures next to the bare commit.

A smoke test only: nothing here looks at a figure's value (speed is shown by the benchmark, never
asserted in a test).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_commit_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "store_commit.py"), "--updates", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for kind in ("pay: 5 updates of 1 trade(s)", "batched: 5 updates of 100 trade(s)"):
        assert kind in out, out
    assert out.count("bare SQLite FULL commit of one") == 2, out
    assert out.count("x bare") == 12, out  # wall and CPU, three ways, two scenarios
