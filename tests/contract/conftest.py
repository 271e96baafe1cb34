from collections.abc import AsyncIterator

import pytest

from adjudicator.devchain import DevChain
from tests.contract.kit import Env, Kit, deploy_env, open_kit


@pytest.fixture(scope="module")
def env(anvil: DevChain) -> Env:
    return deploy_env(anvil)


@pytest.fixture
async def kit(env: Env, anvil_snapshot: str) -> AsyncIterator[Kit]:
    async with open_kit(env) as k:
        yield k
