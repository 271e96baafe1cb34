"""kill -9 durability: whatever a killed writer reported as committed is there, intact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from channels.store import Store
from tests.store._crash_child import CHANNELS, fresh_sims
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID

ROOT = Path(__file__).resolve().parents[2]
CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from tests.store._crash_child import main; main(sys.argv[2:])"
)
ROUNDS = 4


def run_and_kill(path: Path, mode: str, round_: int, rng: random.Random) -> list[tuple[int, int]]:
    """Start the child, let it commit a while, SIGKILL it; return what it reported committed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT), str(path), mode, str(round_)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    target = rng.randint(5, 60)  # committed lines before the kill window opens
    while len(lines) < target:
        if proc.poll() is not None:
            raise AssertionError(f"the child died on its own: {proc.stderr and proc.stderr.read()}")
        if time.monotonic() > deadline:  # pragma: no cover
            proc.kill()
            raise AssertionError("the child never committed anything")
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05))  # land anywhere: mid-write, mid-fsync, mid-print
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(10)
    assert proc.returncode == -signal.SIGKILL
    committed = []
    for line in lines:
        if line.startswith("committed ") and line.endswith("\n"):  # a torn last line is ignored
            _, c, v = line.split()
            committed.append((int(c), int(v)))
    return committed


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_kill_minus_nine(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"crash-{mode}.db"
    rng = random.Random(f"kill-{mode}-{os.getpid()}")
    ids = [sim.channel_id for sim in fresh_sims()]
    reported: set[tuple[int, int]] = set()
    for round_ in range(ROUNDS):
        committed = run_and_kill(path, mode, round_, rng)
        assert committed, "the child was killed before committing anything"
        reported.update(committed)
        with Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
            assert not store.previous_clean_shutdown  # killed: never closed
            chans = {c.channel_id: c for c in store.load_channels()}  # books match roots
            for c in range(CHANNELS):
                if ids[c] not in chans:
                    assert all(cc != c for cc, _ in reported)
                    continue
                assert store.verify_history(ids[c]) >= 1  # no torn rows, the chain verifies
                versions = {u.signed.state.version for u in store.history(ids[c])}
                lost = {v for cc, v in reported if cc == c} - versions
                assert not lost, f"channel {c}: versions reported committed are gone: {lost}"
                assert chans[ids[c]].latest.signed.state.version == max(versions)
