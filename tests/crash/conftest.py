"""A fresh anvil per test module with the adjudicator and the test token deployed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from adjudicator import devchain
from adjudicator.deploy import deploy_dev_setup
from adjudicator.rpc import open_rpc
from channels.core.signing import LocalSigner

from .harness import Chain


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with devchain.anvil(devchain.AnvilConfig()) as dev:
        deployer = dev.private_keys[0]

        async def setup() -> Chain:
            async with open_rpc(dev.url) as rpc:
                d = await deploy_dev_setup(rpc, deployer)
                assert d.token is not None
                return Chain(
                    url=dev.url,
                    chain_id=d.chain_id,
                    adjudicator=d.adjudicator,
                    token=d.token,
                    deployer_key=deployer,
                    oracle=LocalSigner.from_hex(dev.private_keys[9]).address,
                )

        yield trio.run(setup)
