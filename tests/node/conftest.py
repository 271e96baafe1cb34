"""A deployed adjudicator and test token on a fresh anvil, with two funded desks and an oracle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from adjudicator import devchain
from adjudicator.deploy import Deployment, deploy_dev_setup
from adjudicator.rpc import open_rpc
from channels.core.signing import LocalSigner


@dataclass(frozen=True)
class Desks:
    url: str
    deployment: Deployment
    alice: LocalSigner
    bob: LocalSigner
    oracle: LocalSigner

    @property
    def adjudicator(self) -> bytes:
        return self.deployment.adjudicator

    @property
    def token(self) -> bytes:
        assert self.deployment.token is not None
        return self.deployment.token


@pytest.fixture(scope="module")
def desks() -> Iterator[Desks]:
    with devchain.anvil(devchain.AnvilConfig()) as chain:
        keys = chain.private_keys
        alice = LocalSigner.from_hex(keys[1])
        bob = LocalSigner.from_hex(keys[2])
        oracle = LocalSigner.from_hex(keys[9])

        async def setup() -> Deployment:
            async with open_rpc(chain.url) as rpc:
                return await deploy_dev_setup(rpc, keys[0], fund=[alice.address, bob.address])

        deployment = trio.run(setup)
        yield Desks(chain.url, deployment, alice, bob, oracle)
