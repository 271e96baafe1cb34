"""The gas reserve (issue 12): a desk near its reserve refuses to fund, yet defends its channels.

The attack: two channel proposals took a desk's ETH from 10,000 to 0.000027; the peer then
registered an old state and the desk's refute failed for lack of gas. Here the desk keeps the gas
to defend every open channel at a configured fee cap, refuses deposits that would cut into it
(the proposer learns the rule), alarms when its balance nears the reserve, and still refutes: by
itself, from its own gas account, paying out of the reserve it kept, and is paid in full.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from adjudicator.client import connect_adjudicator
from adjudicator.rpc import open_rpc
from adjudicator.rpc_types import Receipt
from adjudicator.tokens import balance_of, mint
from adjudicator.transactions import TransactionSender
from channels.core import eip712
from channels.core.model import Attestation, Price, symbol
from channels.core.node_events import Alarm
from channels.core.protocol import Phase
from channels.core.reserve import GasReserve, GasReserveTooLow, required
from channels.core.signing import LocalSigner
from channels.core.terms import TermsRefused
from tests.partners import partners

from ._desk_process import Cli, desk_toml, funded_key, served_desk, short_dir
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
STRIKE = 3000 * 10**8
COLLATERAL = 1_000


async def fresh_desk(desks: Desks, wei: int) -> LocalSigner:
    signer = LocalSigner.generate()
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.set_balance("0x" + signer.address.hex(), wei)
        await mint(rpc, TransactionSender(rpc, signer.secret), desks.token, signer.address, DEPOSIT)
    return signer


async def eth_balance(desks: Desks, who: bytes, block: int | str = "latest") -> int:
    async with open_rpc(desks.url) as rpc:
        return await rpc.get_balance("0x" + who.hex(), block)


async def token_balance(desks: Desks, who: bytes) -> int:
    async with open_rpc(desks.url) as rpc:
        return await balance_of(rpc, desks.token, who)


async def sent_by(desks: Desks, who: bytes, after_block: int) -> list[Receipt]:
    """Receipts of every transaction ``who`` sent in the blocks after ``after_block``."""
    sender = "0x" + who.hex()
    receipts = []
    async with open_rpc(desks.url) as rpc:
        for number in range(after_block + 1, await rpc.block_number() + 1):
            block = await rpc.get_block(number, full=True)
            assert block is not None
            for tx in block.transactions:
                if str(tx["from"]).lower() == sender:
                    receipt = await rpc.get_transaction_receipt(str(tx["hash"]))
                    assert receipt is not None
                    receipts.append(receipt)
    return receipts


def fee(receipt: Receipt) -> int:
    assert receipt.effective_gas_price is not None
    return receipt.gas_used * receipt.effective_gas_price


async def advance(desks: Desks, seconds: int) -> None:
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.increase_time(seconds)
        await rpc.dev.evm_mine()


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
            c_node.events() as events,
        ):
            assert c_node.listen_port is not None
            async with desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust) as alice:

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

                # The attack: an ETH channel asking for most of Carol's ETH. Refused,
                # with the rule; nothing deposited.
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
                # An open position adds its settlement to the reserve: now even Carol's own
                # top-up (its gas alone) would cut into it. Alice writes, Carol holds.
                call = await ch.write_option(  # type: ignore[attr-defined]
                    kind="call", underlying="ETH-USD", strike=STRIKE,
                    expiry=alice.now() + 7 * 86400, quantity=10**18, premium=1,
                    collateral=COLLATERAL,
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
                for _ in range(3):
                    done = await ch.pay(10_000)  # type: ignore[attr-defined]
                await cch.wait_version(done.version)
                old = (await alice.store.history(ch.id))[1].signed  # type: ignore[attr-defined]
                params = ch.params  # type: ignore[attr-defined]
            # Alice's node is gone: no watcher of hers can refute for Carol. Alice drives the
            # chain herself and registers an old state in which Carol has less.
            latest = cch.state
            assert old.state.balances[1] < latest.balances[1]
            async with connect_adjudicator(
                desks.url, desks.adjudicator, desks.alice.secret
            ) as cheat:
                registered = await cheat.register(params, old)
                kept = await eth_balance(desks, carol.address, registered.block_number)
                assert kept >= required(RESERVE, [1])  # the reserve her open channel needs
                with trio.fail_after(30):
                    while (await cheat.channel(cch.id)).version != latest.version:
                        await trio.sleep(0.05)
                # Carol's node refuted: one transaction, from her own gas account, carrying her
                # latest state, paid from the ETH she kept and nothing else.
                (refute,) = await sent_by(desks, carol.address, registered.block_number)
                assert refute.succeeded
                assert refute.from_address.lower() == "0x" + carol.address.hex()
                assert c_node.chain.account == carol.address  # the account that pays her gas
                assert refute.to_address is not None
                assert refute.to_address.lower() == "0x" + desks.adjudicator.hex()
                carried = await cheat.signed_state_of(bytes.fromhex(refute.transaction_hash[2:]))
                assert carried.state.version == latest.version
                assert await eth_balance(desks, carol.address, refute.block_number) == kept - fee(
                    refute
                )
                assert refute.gas_used <= RESERVE.gas.refute  # within the reserve's figure
            assert await cch.wait_phase(Phase.DISPUTED) is Phase.DISPUTED
            # The challenge period ends; Carol's node concludes and she is paid her latest state.
            assert await token_balance(desks, carol.address) == 0  # all of it is in the channel
            await advance(desks, PERIOD + 1)
            with trio.fail_after(30):
                await cch.wait_phase(Phase.CLOSED)
            assert await token_balance(desks, carol.address) == latest.balances[1]
            # At expiry the oracle says 3,100: Carol's call is worth Alice's whole collateral,
            # and Carol's node settles it on chain.
            await advance(desks, call.expiry - c_node.now() + 1)
            attestation = Attestation(symbol("ETH-USD"), call.expiry, Price(3100 * 10**8))
            domain = eip712.Domain(desks.deployment.chain_id, params.adjudicator)
            signature = desks.oracle.sign_digest(eip712.attestation_digest(domain, attestation))
            c_node.add_attestation(attestation, signature)
            with trio.fail_after(30):
                while await token_balance(desks, carol.address) < latest.balances[1] + COLLATERAL:
                    await trio.sleep(0.05)
            assert await token_balance(desks, carol.address) == latest.balances[1] + COLLATERAL
            # Her whole defence (refute, conclude, settlement) was paid by her gas account, and
            # cost less than the reserve she kept for it.
            defence = await sent_by(desks, carol.address, registered.block_number)
            assert all(r.succeeded for r in defence) and len(defence) >= 3
            spent = sum(fee(r) for r in defence)
            assert await eth_balance(desks, carol.address) == kept - spent
            assert spent <= required(RESERVE, [1])


async def test_channels_status_shows_the_reserve_of_a_running_desk(
    desks: Desks, capsys: pytest.CaptureFixture[str]
) -> None:
    """A desk run from its TOML (``max_fee_per_gas_gwei = 50``): ``channels status`` shows its
    gas account against the reserve its channel needs at that fee, and LOW once the account
    falls within the configured margin."""
    fee_cap = 50 * 10**9
    reserve = GasReserve(max_fee_per_gas=fee_cap, alarm_margin_percent=100)
    one_channel = required(reserve, [0])
    dora = await funded_key(desks, 10**18, DEPOSIT)
    alice_trust = partners(dora.address, assets=[desks.token], oracles=[desks.oracle.address])
    guards = "max_fee_per_gas_gwei = 50\ngas_reserve_alarm_margin_percent = 100\n"
    with short_dir() as workdir, trio.fail_after(120):
        config = desk_toml(workdir, desks, peers={"alice": desks.alice.address}, node_lines=guards)
        async with (
            served_desk(config, dora) as dora_desk,
            desk(desks, desks.alice, workdir / "a.sqlite", trust=alice_trust) as alice,
        ):
            channels = Cli(capsys, config)
            gas = (await dora_desk.call("ping"))["gas_reserve"]
            assert (gas["reserve"], gas["max_fee_per_gas"]) == (0, fee_cap)  # nothing to defend
            await alice.open_channel(
                peer=("127.0.0.1", dora_desk.listen_port),
                peer_address=dora.address,
                asset=desks.token,
                deposit=DEPOSIT,
                peer_deposit=DEPOSIT,
                oracle=desks.oracle.address,
                challenge_period=PERIOD,
            )
            balance = await eth_balance(desks, dora.address)  # less the gas of her deposit

            async def shown() -> dict[str, object]:
                """The figures once the desk has read the balance it now has."""
                with trio.fail_after(30):
                    while True:
                        gas = (await dora_desk.call("ping"))["gas_reserve"]
                        if gas["balance"] == balance and gas["reserve"] == one_channel:
                            return dict(gas)
                        await trio.sleep(0.1)

            assert not (await shown())["low"]
            text = await channels("status")
            reserve_text = f"(reserve {one_channel / 10**18:.6f} ETH at 50 gwei"
            assert f"gas {balance / 10**18:.6f} ETH {reserve_text})" in text, text
            as_json = (await channels.json("status"))["node"]["gas_reserve"]
            assert as_json == {
                "balance": balance, "reserve": one_channel, "max_fee_per_gas": fee_cap,
                "low": False,
            }  # fmt: skip
            # The account drains to 1.5 times the reserve: within the 100 % margin.
            balance = one_channel * 3 // 2
            async with open_rpc(desks.url) as rpc:
                await rpc.dev.set_balance("0x" + dora.address.hex(), balance)
            assert (await shown())["low"]
            text = await channels("status")
            assert f"gas {balance / 10**18:.6f} ETH {reserve_text}, LOW: add ETH)" in text, text
            with trio.fail_after(10):  # the alarm reaches the alarm book over the event bus
                while not (alarms := (await dora_desk.call("alarms"))["alarms"]):
                    await trio.sleep(0.05)
            assert [a["kind"] for a in alarms] == ["GasReserveLow"], alarms
