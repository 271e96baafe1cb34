"""Every example runs to completion as a newcomer would run it (its own process, its own chain)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "two_desks.py": "alice wrote a put",
    "trading_bot.py": "hedged option 3",
    "cooperative_close.py": "phase closed",
    "dispute.py": "concluded: alice paid 1,300.00 USD",
    "settle_expired.py": "settled on chain",
    "market_maker.py": "alice holds 4 live quotes from bob",
    "quote_taker.py": "maker: 2 of its offers were filled",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[name] in result.stdout
    assert "Traceback" not in result.stderr


def test_demo_runs() -> None:
    """`make demo`'s program: two desk processes, trades, a cheat refuted, a summary table."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for expected in (
        "alice's signed quote",
        "alice filled bob's quote",
        "refuted it with version",
        "concluded the latest state",
        "wallet change",
    ):
        assert expected in result.stdout
    assert "Traceback" not in result.stderr


def test_every_example_is_tested() -> None:
    present = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert present - {"demo.py"} == set(EXPECTED)
