"""The gas reserve is checked against what the transaction account holds once its unmined
transactions are counted (docs/PROTOCOL.md, gas reserve).

A deposit whose wait for a receipt timed out lets the node's spending slot go while it is still
pending; were the reserve checked against the last mined balance, the next deposit would pass the
check against ETH that is already spent. Here the desk's account sends ETH that stays pending
(anvil's automine off): the check refuses a deposit it would accept against the mined balance.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.transactions import TransactionSender
from channels.core.model import Address, Params
from channels.core.reserve import GasReserveTooLow
from channels.core.signing import LocalSigner

from ._helpers import FAST, PERIOD, desk
from .conftest import Desks
from .test_gas_reserve import RESERVE, WALLET, fresh_desk


async def test_the_reserve_counts_what_unmined_transactions_spend(
    desks: Desks, tmp_path: Path
) -> None:
    carol = await fresh_desk(desks, WALLET)  # one token channel's deposit and defence, and a bit
    settings = dataclasses.replace(FAST, gas_reserve=RESERVE)
    with trio.fail_after(120):
        async with desk(desks, carol, tmp_path / "c.sqlite", settings=settings) as node:
            params = Params(
                chain_id=node.chain_id,
                adjudicator=Address(node.chain.address),
                asset=Address(desks.token),
                asset_decimals=6,
                participants=(desks.alice.address, carol.address),
                challenge_period=PERIOD,
                oracle=desks.oracle.address,
                nonce=1,
            )
            await node.gatekeeper.check_funding(params, 1_000, new_channel=True)  # room for it
            async with open_rpc(desks.url) as rpc:
                await rpc.dev.set_automine(False)
                try:
                    account = "0x" + carol.address.hex()
                    before = await rpc.get_balance(account, "latest")
                    sender = TransactionSender(rpc, carol.secret)
                    elsewhere = "0x" + LocalSigner.generate().address.hex()
                    await sender.send(elsewhere, value=WALLET // 4, gas=21_000)
                    assert await rpc.get_balance(account, "latest") == before  # not mined
                    with pytest.raises(GasReserveTooLow):
                        await node.gatekeeper.check_funding(params, 1_000, new_channel=True)
                finally:
                    await rpc.dev.set_automine(True)
                    await rpc.dev.mine()
