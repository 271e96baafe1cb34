"""A throwaway development network: a local anvil, the adjudicator, a test token, funded desks.

Used by the examples, the demo and tests; never by a production node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from adjudicator import devchain
from adjudicator.deploy import deploy_dev_setup
from adjudicator.rpc import open_rpc
from channels.core import eip712
from channels.core.consent import DecisionHook
from channels.core.model import Address, Attestation, Price, Timestamp, symbol
from channels.core.signing import LocalSigner
from channels.core.terms import AssetTerms, PeerTerms
from channels.core.trust import Peer, Trust

#: The test token has 6 decimals, like USDC.
USD = 10**6
#: Prices have 8 decimals, quantities 18 (docs/PROTOCOL.md section 1).
PRICE = 10**8
UNIT = 10**18


@dataclass(frozen=True)
class DevNetwork:
    url: str
    chain_id: int
    adjudicator: Address
    token: Address
    desks: tuple[LocalSigner, ...]
    oracle: LocalSigner

    def attest(self, underlying: str, expiry: int, price: int) -> tuple[Attestation, bytes]:
        """The oracle's signed price of ``underlying`` at ``expiry``."""
        attestation = Attestation(symbol(underlying), Timestamp(expiry), Price(price))
        domain = eip712.Domain(self.chain_id, self.adjudicator)
        return attestation, self.oracle.sign_digest(eip712.attestation_digest(domain, attestation))

    def trust(
        self,
        me: LocalSigner,
        *,
        decide: DecisionHook | None = None,
        max_deposit: int = 100_000 * USD,
        min_challenge_period: int = 600,
    ) -> Trust:
        """What desk ``me`` accepts on this network: the other desks declared as peers, channels
        in the test token settled by the dev oracle, at most ``max_deposit`` of ours per channel
        (ten times that per peer), a challenge period of at least ``min_challenge_period``; and
        ``decide``, the bot's decision on value-moving trades the peer initiates (None: refused)."""
        terms = PeerTerms(
            assets={self.token: AssetTerms(max_deposit=max_deposit, max_total=10 * max_deposit)},
            oracles=frozenset({self.oracle.address}),
            min_challenge_period=min_challenge_period,
            max_channels=10,
        )
        peers = tuple(
            Peer(name=f"desk-{i}", address=desk.address, terms=terms)
            for i, desk in enumerate(self.desks)
            if desk.address != me.address
        )
        return Trust(peers=peers, decide=decide)

    async def advance(self, seconds: int) -> None:
        """Move the chain's clock forward (anvil only) and mine a block."""
        async with open_rpc(self.url) as rpc:
            await rpc.dev.increase_time(seconds)
            await rpc.dev.evm_mine()


@asynccontextmanager
async def dev_network(desks: int = 2, funds: int = 1_000_000 * USD) -> AsyncIterator[DevNetwork]:
    """Start anvil, deploy, fund ``desks`` accounts with test tokens; stop it all on exit."""
    if not 1 <= desks <= 8:
        raise ValueError("between 1 and 8 desks")
    with devchain.anvil(devchain.AnvilConfig()) as chain:
        keys = chain.private_keys
        signers = tuple(LocalSigner.from_hex(keys[1 + i]) for i in range(desks))
        oracle = LocalSigner.from_hex(keys[9])
        async with open_rpc(chain.url) as rpc:
            deployment = await deploy_dev_setup(
                rpc, keys[0], fund=[s.address for s in signers], amount=funds
            )
        assert deployment.token is not None
        yield DevNetwork(
            url=chain.url,
            chain_id=deployment.chain_id,
            adjudicator=Address(deployment.adjudicator),
            token=Address(deployment.token),
            desks=signers,
            oracle=oracle,
        )
        await trio.lowlevel.checkpoint()
