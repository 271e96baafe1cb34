"""Sign typed-data JSON text with JavaScript wallets' libraries (ethers 6, MetaMask's
eth-sig-util) through tests/vectors/sign_typed_data.js; skipped where node or the packages are
missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "vectors" / "sign_typed_data.js"
LIBRARIES = ("ethers", "eth_sig_util")


def available() -> bool:
    return shutil.which("node") is not None and all(
        (ROOT / "node_modules" / p / "package.json").exists()
        for p in ("ethers", "@metamask/eth-sig-util")
    )


def sign_with_js(secret: bytes, texts: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per library, one ``{"digest", "signature"}`` (hex) or ``{"error"}`` per text."""
    if not available():
        pytest.skip("node or its packages are not installed (make setup)")
    request = {"secret": "0x" + secret.hex(), "typed_data": texts}
    done = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(request).encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[:2000]
    result: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return result
