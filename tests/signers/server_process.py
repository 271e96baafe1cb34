"""Start tests/signers/signer_server.py as a separate process and stop it (by its own pid)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "signer_server.py"


@contextmanager
def signer_server(secret: bytes, workdir: Path, misbehave: str = "none") -> Iterator[str]:
    """Yield the URL of a signer process holding ``secret``; the process dies on exit."""
    key_file = workdir / f"signer-{os.getpid()}-{misbehave}-{secret[:4].hex()}.key"
    key_file.write_text(secret.hex())
    key_file.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--key-file", str(key_file), "--misbehave", misbehave],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the server prints this first, or dies
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"the signer server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
