"""A tower's lease figures are read strictly: whatever a down, buggy or hostile tower answers
(null, a float, infinity, text, a bool, a nested list, a number past the tower's own bound), the
node gets a typed TowerReplyError, which it treats as that tower's failure (an alarm, a retry),
never an exception that ends it (docs/THREATS.md S5)."""

from __future__ import annotations

import pytest

from channels.defence.towerlease import MAX_LEASE
from channels.defence.towerproto import TowerReplyError
from channels.runtime.towerlease import TOWER_FAILURES, lease_figure


@pytest.mark.parametrize("value", [-1, 0, 256, MAX_LEASE])
def test_whole_numbers_in_range_are_read(value: int) -> None:
    assert lease_figure(value) == value


@pytest.mark.parametrize(
    "value",
    [None, 1.0, float("inf"), float("nan"), "7", True, False, [1], {"up_to": 1}, b"\x01", -2,
     MAX_LEASE + 1, 2**256],
)  # fmt: skip
def test_anything_else_is_the_towers_failure(value: object) -> None:
    with pytest.raises(TowerReplyError):
        lease_figure(value)
    assert issubclass(TowerReplyError, TOWER_FAILURES)
