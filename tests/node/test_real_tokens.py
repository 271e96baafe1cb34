"""Real tokens at the node (THREATS: non-standard ERC-20s): a fee-on-transfer token between two
nodes, and a USDT-like token (approval-race guard, no return values, a fee) with an allowance
left over. Before the fix, opening with a fee-on-transfer token timed out with both desks stuck
in FUNDING, ``top_up`` waited for ever for the gross amount, and a deposit with a leftover
allowance reverted on the USDT-like token's ``approve``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import allowance, approve, balance_of, load_artifact, mint
from adjudicator.transactions import TransactionSender
from channels.core.node_events import Event
from channels.core.protocol import Phase
from channels.core.trust import Trust
from channels.runtime.channel import Channel
from channels.runtime.deposits import DepositFeeRefused, DepositMeasured
from channels.runtime.node import Node, NodeSettings
from tests.partners import partners

from ._helpers import FAST, PERIOD, desk
from .conftest import Desks

DEPOSIT = 1_000_000
#: Both desks consent to losing up to 1% of a deposit to the asset's transfer fee.
FEE_OK = dataclasses.replace(FAST, max_deposit_fee_bps=100)


async def deploy(desks: Desks, name: str, *, fee_bps: int = 0) -> bytes:
    async with open_rpc(desks.url) as rpc:
        sender = TransactionSender(rpc, desks.alice.secret)
        abi, code = load_artifact(name)
        token = bytes.fromhex((await sender.deploy(code, b"", timeout=60))[2:])
        if fee_bps:
            data = abi.encode_call("setFee", fee_bps)
            await sender.transact("0x" + token.hex(), data, timeout=60)
        for who in (desks.alice, desks.bob):
            await mint(rpc, sender, token, who.address, 10 * DEPOSIT)
    return token


async def open_on(alice: Node, bob: Node, desks: Desks, token: bytes) -> tuple[Channel, Channel]:
    assert bob.listen_port is not None
    ch = await alice.open_channel(
        peer=("127.0.0.1", bob.listen_port),
        peer_address=desks.bob.address,
        asset=token,
        deposit=DEPOSIT,
        peer_deposit=DEPOSIT,
        oracle=desks.oracle.address,
        challenge_period=PERIOD,
    )
    bch = bob.channel(ch.id)
    await bch.wait_phase(Phase.OPEN)
    return ch, bch


def measured(events: trio.MemoryReceiveChannel[Event]) -> list[DepositMeasured]:
    out = []
    while True:
        try:
            event = events.receive_nowait()
        except trio.WouldBlock:
            return out
        if isinstance(event, DepositMeasured):
            out.append(event)


def accepts(desks: Desks, token: bytes) -> Trust:
    """Bob declares Alice and accepts channels in ``token`` (the token under test)."""
    return partners(desks.alice.address, assets=[token], oracles=[desks.oracle.address])


async def test_fee_on_transfer_token_between_two_nodes(desks: Desks, tmp_path: Path) -> None:
    token = await deploy(desks, "FeeOnTransferToken")  # keeps 1% of every transfer
    net = DEPOSIT - DEPOSIT // 100
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", settings=FEE_OK) as alice:
            async with desk(
                desks,
                desks.bob,
                tmp_path / "b.sqlite",
                listen=0,
                trust=accepts(desks, token),
                settings=FEE_OK,
            ) as bob:
                async with alice.events() as a_events, bob.events() as b_events:
                    ch, bch = await open_on(alice, bob, desks, token)
                    await ch.wait_version(bch.state.version)
                    assert ch.phase is Phase.OPEN
                    assert ch.state.deposited == (net, net)
                    (ours,) = measured(a_events)
                    assert (ours.sent, ours.credited, ours.fee) == (DEPOSIT, net, DEPOSIT // 100)
                    while not measured(b_events):  # Bob funds in the background
                        await trio.sleep(0.05)
                    # Trading works on what the chain measured.
                    await ch.pay(1_000)
                    # A top-up returns once the credited amount is in a signed state.
                    state = await ch.top_up(100_000)
                    assert state.deposited[0] == net + 99_000
                    (top,) = measured(a_events)
                    assert top.fee == 1_000
                    assert sum(ch.state.balances) + ch.state.locked == 2 * net + 99_000


async def test_usdt_like_token_with_a_leftover_allowance_and_a_fee(
    desks: Desks, tmp_path: Path
) -> None:
    token = await deploy(desks, "TetherLikeToken", fee_bps=20)
    async with open_rpc(desks.url) as rpc:
        # An allowance left over from an earlier, smaller approval: USDT's approve refuses to
        # change it to another non-zero value.
        sender = TransactionSender(rpc, desks.alice.secret)
        await approve(rpc, sender, token, desks.adjudicator, 7)
        assert await allowance(rpc, token, desks.alice.address, desks.adjudicator) == 7
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", settings=FEE_OK) as alice:
            async with desk(
                desks,
                desks.bob,
                tmp_path / "b.sqlite",
                listen=0,
                trust=accepts(desks, token),
                settings=FEE_OK,
            ) as bob:
                ch, _bch = await open_on(alice, bob, desks, token)
                net = DEPOSIT - DEPOSIT * 20 // 10_000
                await ch.wait_phase(Phase.OPEN)
                assert ch.state.deposited == (net, net)
    async with open_rpc(desks.url) as rpc:
        assert await balance_of(rpc, token, desks.adjudicator) == 2 * net


async def test_a_fee_is_refused_unless_the_desk_consented(desks: Desks, tmp_path: Path) -> None:
    """By default a desk loses nothing to a fee-on-transfer token without saying so: the open
    fails with DepositFeeRefused naming the setting (before: 1% vanished by default)."""
    token = await deploy(desks, "FeeOnTransferToken")  # keeps 1% of every transfer
    assert NodeSettings().max_deposit_fee_bps == 0
    strict = dataclasses.replace(FAST, open_timeout=60.0)
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", settings=strict) as alice:
            async with desk(
                desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=accepts(desks, token)
            ) as bob:
                with pytest.raises(DepositFeeRefused, match="max_deposit_fee_bps") as refused:
                    await open_on(alice, bob, desks, token)
                assert "kept 10000 of the 1000000" in str(refused.value)
                (ch,) = alice.channels
                assert ch.phase is Phase.FUNDING  # never counted as funded
