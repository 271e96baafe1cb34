"""The committed gas budget (``benchmarks/gas_budget.json``, issue 16) holds: every scenario of
``benchmarks/gas.py`` is measured on a fresh anvil and no row may rise more than 0.5% over its
budget or miss its goal, unless the budget file explains that goal as out of reach.

Lowering a budget after an improvement is a one-line change in the JSON (one row per line).
"""

from __future__ import annotations

from benchmarks import gas


def test_violations_catch_a_rise_a_missed_goal_and_a_missing_row() -> None:
    budget = {
        "a": gas.Row(budget=10_000, goal=None, goal_missed_because=None),
        "b": gas.Row(budget=10_000, goal=9_000, goal_missed_because=None),
        "c": gas.Row(budget=10_000, goal=9_000, goal_missed_because="a trace says why"),
        "d": gas.Row(budget=10_000, goal=None, goal_missed_because=None),
    }
    assert gas.violations({"a": 10_050, "b": 9_000, "c": 9_500, "d": 1}, budget) == []
    problems = gas.violations({"a": 10_051, "b": 9_001, "c": 9_500, "e": 1}, budget)
    assert len(problems) == 4, problems
    assert any("a: 10,051 is more than 0.5% over its budget" in p for p in problems)
    assert any("misses its goal 9,000" in p for p in problems)
    assert any(p.startswith("e: measured but not in the budget") for p in problems)
    assert any(p.startswith("d: in the budget but not measured") for p in problems)


async def test_committed_gas_budget_holds() -> None:
    measured, _ = await gas.measure()
    problems = gas.violations(measured, gas.load_budget())
    assert not problems, (
        "gas budget broken (see `make gas`; after an improvement lower the row's budget in "
        "benchmarks/gas_budget.json):\n" + "\n".join(problems)
    )
