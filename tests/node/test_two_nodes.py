"""Two nodes over real TCP on 127.0.0.1 with a real anvil: open, fund, trade, close."""

from __future__ import annotations

from pathlib import Path

import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import open_node
from channels.core.protocol import Phase
from channels.runtime.node import NodeSettings

from ._helpers import desk_partners
from .conftest import Desks

FAST = NodeSettings(chain_poll_interval=0.05, update_timeout=10.0, open_timeout=30.0)


async def test_open_trade_close(desks: Desks, tmp_path: Path) -> None:
    async with open_rpc(desks.url) as rpc:
        a_before = await balance_of(rpc, desks.token, desks.alice.address)
        b_before = await balance_of(rpc, desks.token, desks.bob.address)
    with trio.fail_after(60):
        async with (
            open_node(
                signer=desks.bob,
                store=tmp_path / "bob.sqlite",
                chain=desks.url,
                adjudicator=desks.adjudicator,
                listen=("127.0.0.1", 0),
                settings=FAST,
                trust=desk_partners(desks, desks.bob),
            ) as bob,
            open_node(
                signer=desks.alice,
                store=tmp_path / "alice.sqlite",
                chain=desks.url,
                adjudicator=desks.adjudicator,
                settings=FAST,
                trust=desk_partners(desks, desks.alice),
            ) as alice,
        ):
            assert bob.listen_port
            ch = await alice.open_channel(
                peer=("127.0.0.1", bob.listen_port),
                peer_address=desks.bob.address,
                asset=desks.token,
                deposit=1_000_000,
                peer_deposit=1_000_000,
                oracle=desks.oracle.address,
                challenge_period=3600,
            )
            assert ch.phase is Phase.OPEN
            bch = bob.channel(ch.id)
            await bch.wait_phase(Phase.OPEN)
            expiry = alice.now() + 7 * 86400
            pos = await ch.write_option(
                kind="call",
                underlying="ETH-USD",
                strike=3000_00000000,
                expiry=expiry,
                quantity=10**18,
                premium=25_000,
                collateral=500_000,
            )
            await ch.pay(1_000)
            await bch.pay(500)
            latest = await bch.unwind(pos.id, holder_share=100_000)
            await ch.wait_version(latest.version)
            assert ch.state == bch.state
            assert ch.our_balance == 1_000_000 + 25_000 - 1_000 + 500 - 100_000
            await ch.close()
            final = ch.state
    async with open_rpc(desks.url) as rpc:
        a_after = await balance_of(rpc, desks.token, desks.alice.address)
        b_after = await balance_of(rpc, desks.token, desks.bob.address)
    assert a_after - a_before == final.balances[0] - 1_000_000
    assert b_after - b_before == final.balances[1] - 1_000_000
