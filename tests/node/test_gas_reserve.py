"""The gas reserve (issue 12): a desk near its reserve refuses to fund, yet defends its channels.

The attack: two channel proposals took a desk's ETH from 10,000 to 0.000027; the peer then
registered an old state and the desk's refute failed for lack of gas. Here the desk keeps the gas
to defend every open channel at a configured fee cap, refuses deposits that would cut into it
(the proposer learns the rule), alarms when its balance nears the reserve, and still refutes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from adjudicator.client import connect_adjudicator
from adjudicator.rpc import open_rpc
from adjudicator.tokens import mint
from adjudicator.transactions import TransactionSender
from channels.core.node_events import Alarm
from channels.core.protocol import Phase
from channels.core.reserve import GasReserve, GasReserveTooLow, required
from channels.core.signing import LocalSigner
from channels.core.terms import TermsRefused
from tests.partners import partners

from ._helpers import FAST, PERIOD, desk
from .conftest import Desks

DEPOSIT = 1_000_000
ETH = bytes(20)
#: A fee cap that makes one channel's defence cost about 0.8 ETH.
RESERVE = GasReserve(max_fee_per_gas=2_000 * 10**9, alarm_margin_percent=100)
ONE_CHANNEL = required(RESERVE, [0])
DEPOSIT_GAS = RESERVE.gas.deposit * RESERVE.max_fee_per_gas
#: Enough to fund one channel and keep its defence, with less to spare than one settlement costs.
WALLET = ONE_CHANNEL + DEPOSIT_GAS + RESERVE.gas.settle_per_position * RESERVE.max_fee_per_gas // 2


async def fresh_desk(desks: Desks, wei: int) -> LocalSigner:
    signer = LocalSigner.generate()
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.set_balance("0x" + signer.address.hex(), wei)
        await mint(rpc, TransactionSender(rpc, signer.secret), desks.token, signer.address, DEPOSIT)
    return signer


async def eth_balance(desks: Desks, who: bytes) -> int:
    async with open_rpc(desks.url) as rpc:
        return await rpc.get_balance("0x" + who.hex())


async def test_a_desk_near_its_reserve_refuses_to_fund_and_still_defends(
    desks: Desks, tmp_path: Path
) -> None:
    carol = await fresh_desk(desks, WALLET)  # room for one channel's defence, not two
    settings = dataclasses.replace(FAST, gas_reserve=RESERVE)
    trust = partners(desks.alice.address, assets=[desks.token, ETH], oracles=[desks.oracle.address])
    alice_trust = partners(carol.address, assets=[desks.token], oracles=[desks.oracle.address])
    with trio.fail_after(120):
        async with (
            desk(
                desks, carol, tmp_path / "c.sqlite", listen=0, settings=settings, trust=trust
            ) as c_node,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust) as alice,
            c_node.events() as events,
        ):
            assert c_node.listen_port is not None

            async def propose(asset: bytes, ask: int) -> object:
                return await alice.open_channel(
                    peer=("127.0.0.1", c_node.listen_port or 0),
                    peer_address=carol.address,
                    asset=asset,
                    deposit=DEPOSIT,
                    peer_deposit=ask,
                    oracle=desks.oracle.address,
                    challenge_period=PERIOD,
                    asset_decimals=6 if asset != ETH else 18,
                )

            # The attack: an ETH channel asking for most of Carol's ETH. Refused, with
            # the rule; nothing deposited.
            before = await eth_balance(desks, carol.address)
            with pytest.raises(TermsRefused) as refused:
                await propose(ETH, before - ONE_CHANNEL // 2)
            assert refused.value.rule == "GasReserve"
            assert "needs" in refused.value.reason
            assert await eth_balance(desks, carol.address) == before
            # One token channel fits: its deposit costs gas only.
            ch = await propose(desks.token, DEPOSIT)
            cch = c_node.channel(ch.id)  # type: ignore[attr-defined]
            # A second one would leave less than two channels' defence: refused.
            with pytest.raises(TermsRefused) as refused:
                await propose(desks.token, DEPOSIT)
            assert refused.value.rule == "GasReserve"
            # An open position adds its settlement to the reserve: now even Carol's own top-up
            # (its gas alone) would cut into it.
            await ch.write_option(  # type: ignore[attr-defined]
                kind="call", underlying="ETH-USD", strike=3000 * 10**8,
                expiry=alice.now() + 7 * 86400, quantity=10**18, premium=1, collateral=1_000,
            )  # fmt: skip
            before = await eth_balance(desks, carol.address)
            with pytest.raises(GasReserveTooLow):
                await cch.top_up(1)
            assert await eth_balance(desks, carol.address) == before
            # The alarm: her balance is within the margin of the reserve.
            with trio.fail_after(30):
                async for event in events:
                    if isinstance(event, Alarm) and event.kind == "GasReserveLow":
                        break
            status = c_node.gatekeeper.reserve_status()
            assert status["low"] and status["reserve"] == required(RESERVE, [1])
            # Alice registers an old state; Carol's watcher still refutes it with her reserve.
            for _ in range(3):
                done = await ch.pay(10_000)  # type: ignore[attr-defined]
            await cch.wait_version(done.version)
            old = (await alice.store.history(ch.id))[1].signed  # type: ignore[attr-defined]
            latest = cch.state
            async with connect_adjudicator(
                desks.url, desks.adjudicator, desks.alice.secret
            ) as cheat:
                await cheat.register(ch.params, old)  # type: ignore[attr-defined]
                with trio.fail_after(30):
                    while (await cheat.channel(cch.id)).version != latest.version:
                        await trio.sleep(0.05)
            # Alice's own node refutes the old state too, so the newest version can be on chain
            # before Carol's watcher has polled and marked the channel disputed: wait for that.
            with trio.fail_after(30):
                assert await cch.wait_phase(Phase.DISPUTED) is Phase.DISPUTED
