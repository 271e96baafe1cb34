"""The committed artifacts in adjudicator/build/ are exactly what the pinned compiler produces
from adjudicator/contracts/ (``node adjudicator/compile.js --check``, ~13 s).

Deliberately *not* marked ``slow`` and never skipped: CI runs ``make test`` without options, and a
stale artifact would make every other contract test exercise bytecode nobody reviewed. A missing
node/solc is a broken checkout, so it fails here rather than skipping.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_compiled_artifacts_are_reproducible() -> None:
    node = shutil.which("node")
    assert node is not None, "node is required to check the contract artifacts (make setup)"
    proc = subprocess.run(
        [node, "adjudicator/compile.js", "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, (
        f"compile.js --check exited {proc.returncode}: the committed artifacts differ from a "
        f"fresh compile (run `make compile`)\nstdout:\n{proc.stdout[-2000:]}\n"
        f"stderr:\n{proc.stderr[-2000:]}"
    )
