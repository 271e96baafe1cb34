"""The recursion limit stays at its safe default once everything the node imports is imported.

py_ecc (via eth-account) raises it to 100,000 at import; at that limit the stdlib JSON decoder
overflows the C stack on a deeply nested document and the process dies with SIGSEGV.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from channels.core.boundedjson import SAFE_RECURSION_LIMIT

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import channels, adjudicator
    for package in (channels, adjudicator):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
    import channels.cli, channels.runtime.node, channels.defence.watchtower, eth_account, py_ecc
    print(sys.getrecursionlimit(), flush=True)
    try:
        json.loads("[" * 200_000)
    except RecursionError:
        print("RecursionError", flush=True)
    """
)


def test_importing_everything_keeps_the_recursion_limit_safe() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    limit, outcome = proc.stdout.split()
    assert int(limit) <= SAFE_RECURSION_LIMIT
    assert outcome == "RecursionError"
