"""kill -9 matrix (docs/THREATS.md section 5.2): crash point x phase x role, real processes,
real anvil.

Each case (``scenario.run_case``, which lists the steps and the five invariants) runs two desk
processes (``desk_process.py``) on the module's anvil; the victim is started with
``CHANNELS_CRASH_AT=<point>:<phase>:<nth>`` and SIGKILLs itself there.

Points: ``signature`` (we signed a new version: PersistSignature) and ``state`` (a fully signed
state: PersistState); phases ``pre_write``, ``post_write_pre_send``, ``post_send``; roles
``leader`` (participant 0, the opener) and ``follower``. Default: the 12 cases with ``nth=2`` (the
victim completes one trade after its restart, then dies in the second).

``CHANNELS_FULL_CRASH_MATRIX=1`` runs the bigger matrix: ``nth`` in 1, 2, 3 (36 cases).

Points a role never reaches are not skipped: the case records it and the harness SIGKILLs the
victim itself while a trade is in flight (the follower never persists a signature alone, it signs
together with the fully signed state; the leader's ``state:post_send`` needs a send in the same
batch as the stored state, which only pipelined trades give, so a burst is tried first).

The cases are independent (fresh accounts, own stores) and run a few at a time in threads, so the
whole set fits the time budget on two cores; every case is still its own pytest test.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from channels.testing.crash import PHASES

from .harness import Chain
from .scenario import CaseResult, run_case

FULL = os.environ.get("CHANNELS_FULL_CRASH_MATRIX") == "1"
POINTS = ("signature", "state")
ROLES = ("leader", "follower")
NTHS = (1, 2, 3) if FULL else (2,)
WORKERS = int(os.environ.get("CHANNELS_CRASH_WORKERS", "3"))

CASES = [
    (point, phase, role, nth)
    for role in ROLES
    for point in POINTS
    for phase in PHASES
    for nth in NTHS
]


def _case_id(case: tuple[str, str, str, int]) -> str:
    return "-".join(str(x) for x in case)


@pytest.fixture(scope="module")
def matrix(
    chain: Chain, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str, str, int], Future[CaseResult]]:
    """Start every selected case at once (a few at a time); each test waits for its own."""
    wanted = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.originalname == "test_kill_9" and hasattr(item, "callspec")
    ]
    base = tmp_path_factory.mktemp("kill9")
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    request.addfinalizer(lambda: pool.shutdown(wait=True, cancel_futures=True))
    return {case: pool.submit(run_case, chain, base / _case_id(case), *case) for case in wanted}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_kill_9(case: tuple[str, str, str, int], matrix: dict[Any, Future[CaseResult]]) -> None:
    try:
        result = matrix[case].result(timeout=300)
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError("".join(traceback.format_exception(exc))) from None
    print(result)
    assert result.agreed_version > result.victim_version_at_crash
