"""kill -9 at channel creation, the deposit and a chain transaction's intent, both roles, every
phase (``setup_scenario.run_setup_case``). Before: these crash points were named in the matrix's
documentation but never wired into the node."""

from __future__ import annotations

import os
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from channels.testing.crash import PHASES

from .harness import Chain
from .setup_scenario import SetupResult, run_setup_case

POINTS = ("channel", "deposit", "chain_tx")
ROLES = ("leader", "follower")
WORKERS = int(os.environ.get("CHANNELS_CRASH_WORKERS", "3"))
CASES = [(point, phase, role) for role in ROLES for point in POINTS for phase in PHASES]


def _case_id(case: tuple[str, str, str]) -> str:
    return "-".join(case)


@pytest.fixture(scope="module")
def setup_matrix(
    chain: Chain, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str, str], Future[SetupResult]]:
    wanted = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.originalname == "test_kill_9_setup" and hasattr(item, "callspec")
    ]
    base = tmp_path_factory.mktemp("kill9setup")
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    request.addfinalizer(lambda: pool.shutdown(wait=True, cancel_futures=True))
    return {
        case: pool.submit(run_setup_case, chain, base / _case_id(case), *case) for case in wanted
    }


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_kill_9_setup(
    case: tuple[str, str, str], setup_matrix: dict[Any, Future[SetupResult]]
) -> None:
    try:
        result = setup_matrix[case].result(timeout=300)
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError("".join(traceback.format_exception(exc))) from None
    print(result)
    assert result.outcome
    # Journalled deposits reach every phase, and a new channel its post_send, in both roles.
    if case[0] == "deposit" or case[:2] == ("channel", "post_send"):
        assert result.died_at_point, result.notes
