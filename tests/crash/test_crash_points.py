"""``channels.testing.crash.POINTS`` is the true list of crash points: every point the package
fires is listed, every listed point is fired somewhere and killed at by a kill matrix, and an
unknown point is refused rather than silently never reached."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from channels.testing.crash import ENV, PHASES, POINTS

ROOT = Path(__file__).resolve().parents[2]
MATRICES = ("test_kill_matrix.py", "test_setup_kill_matrix.py")


def _fired() -> dict[str, set[str]]:
    """Each point name the package passes to ``crash_point`` (or returns from
    ``crash_points_of``, whose points the executor and the links fire), with where."""
    fired: dict[str, set[str]] = {}
    for path in (ROOT / "channels").rglob("*.py"):
        tree = ast.parse(path.read_text())
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "crash_point":
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    fired.setdefault(first.value, set()).add(where)
            if isinstance(node, ast.FunctionDef) and node.name == "crash_points_of":
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Call)
                        and getattr(inner.func, "attr", None) == "append"
                        and isinstance(inner.args[0], ast.Constant)
                    ):
                        fired.setdefault(inner.args[0].value, set()).add(where)
    return fired


def test_every_point_fired_is_listed_and_every_listed_point_is_fired() -> None:
    fired = _fired()
    assert set(fired) == set(POINTS), f"fired in code: {fired}; listed: {POINTS}"


def test_the_kill_matrices_together_kill_at_every_point() -> None:
    covered: set[str] = set()
    for name in MATRICES:
        for node in ast.parse((Path(__file__).parent / name).read_text()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "POINTS":
                covered |= set(ast.literal_eval(node.value))
    assert covered == set(POINTS)


def _run(code: str, crash_at: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, ENV: crash_at}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_an_unknown_point_in_the_variable_is_refused() -> None:
    done = _run("import channels.testing.crash", "stat:pre_write:1")
    assert done.returncode != 0
    assert f"{ENV}: point must be one of" in done.stderr


def test_an_unknown_point_in_the_code_is_refused_once_armed() -> None:
    code = (
        "from channels.testing.crash import crash_point\n"
        "crash_point('state', 'post_send')\n"  # armed for another phase: passes
        "crash_point('stat', 'pre_write')\n"
    )
    done = _run(code, f"state:{PHASES[0]}:1")
    assert done.returncode == 1
    assert "crash point stat:pre_write is not one of" in done.stderr
