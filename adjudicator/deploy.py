"""Deploy the adjudicator (and, on a development chain, a test token funded for some accounts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adjudicator.client import AdjudicatorClient
from adjudicator.rpc import RpcClient
from adjudicator.tokens import deploy_test_token, mint
from adjudicator.transactions import TransactionSender
from adjudicator.tx_signing import TransactionSigner


@dataclass(frozen=True, slots=True)
class Deployment:
    chain_id: int
    adjudicator: bytes
    token: bytes | None
    token_decimals: int


async def deploy_adjudicator(
    rpc: RpcClient, deployer_key: bytes | str | TransactionSigner
) -> bytes:
    """Deploy the adjudicator; returns its address."""
    sender = TransactionSender(rpc, deployer_key)
    client = await AdjudicatorClient.deploy(rpc, sender)
    return client.address


async def deploy_dev_setup(
    rpc: RpcClient,
    deployer_key: bytes | str | TransactionSigner,
    fund: Sequence[bytes] = (),
    amount: int = 10**12,
    decimals: int = 6,
) -> Deployment:
    """Adjudicator + a mintable test token, with ``amount`` minted to each of ``fund``."""
    sender = TransactionSender(rpc, deployer_key)
    client = await AdjudicatorClient.deploy(rpc, sender)
    token = await deploy_test_token(rpc, sender, decimals)
    for account in fund:
        await mint(rpc, sender, token, account, amount)
    return Deployment(await rpc.chain_id(), client.address, token, decimals)
