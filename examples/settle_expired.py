"""Settling an expired option: off chain with the oracle's attestation, or on chain after a
dispute when the peer is gone.

    .venv/bin/python examples/settle_expired.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

from adjudicator.client import connect_adjudicator
from channels import open_node
from channels.core.consent import (
    Approved,
    Refusal,
    TradeClass,
    UpdateView,
    Verdict,
    needs_consent,
)
from channels.core.options import OpenOption
from channels.core.protocol import Phase
from channels.testing.devnet import PRICE, UNIT, USD, dev_network

PERIOD = 600


def bob_writes_calls(view: UpdateView) -> Verdict:
    """Bob's decision on what Alice asks of him: he writes calls for a premium of at least 5% of
    the collateral he locks; anything else that would cost him is refused."""
    for trade, kind in zip(view.trades, view.classes, strict=True):
        if kind is TradeClass.WE_WRITE and isinstance(trade, OpenOption):
            if trade.premium * 20 >= trade.position.collateral:
                continue
            return Refusal("PremiumTooLow", f"premium {trade.premium} for {trade.position}")
        if needs_consent(kind):
            return Refusal("BobsRules", f"bob does not agree to: {kind.value}")
    return Approved("bob's pricing rule")


async def main(workdir: Path) -> None:
    async with dev_network() as net:
        alice_key, bob_key = net.desks
        async with open_node(
            signer=alice_key,
            store=workdir / "alice.sqlite",
            chain=net.url,
            adjudicator=net.adjudicator,
            trust=net.trust(alice_key),
        ) as alice:
            async with open_node(
                signer=bob_key,
                store=workdir / "bob.sqlite",
                chain=net.url,
                adjudicator=net.adjudicator,
                listen=("127.0.0.1", 0),
                trust=net.trust(bob_key, decide=bob_writes_calls),
            ) as bob:
                assert bob.listen_port is not None
                channel = await alice.open_channel(
                    peer=("127.0.0.1", bob.listen_port),
                    peer_address=bob_key.address,
                    asset=net.token,
                    deposit=5_000 * USD,
                    peer_deposit=5_000 * USD,
                    oracle=net.oracle.address,
                    challenge_period=PERIOD,
                )
                expiry = alice.now() + 3 * PERIOD
                first = await channel.buy_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=3_000 * PRICE,
                    expiry=expiry,
                    quantity=UNIT,
                    premium=50 * USD,
                    collateral=400 * USD,
                )
                second = await channel.buy_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=3_200 * PRICE,
                    expiry=expiry,
                    quantity=UNIT,
                    premium=20 * USD,
                    collateral=400 * USD,
                )
                await net.advance(3 * PERIOD)
                await alice.refresh_chain_time()
                await bob.refresh_chain_time()
                attestation, signature = net.attest("ETH-USD", expiry, 3_150 * PRICE)
                state = await channel.settle(first.id, attestation, signature)
                print(
                    f"call {first.id} settled off chain at 3,150: alice gets 150 USD "
                    f"(balance {channel.our_balance / USD:,.2f}, version {state.version})"
                )
            # Bob vanished with the second call still open: Alice goes on chain.
            await alice.dispute(channel.id)
            await net.advance(PERIOD + 1)
            await channel.wait_phase(Phase.CLOSED)
            alice.add_attestation(attestation, signature)
            async with connect_adjudicator(net.url, net.adjudicator, None) as view:
                while (await view.channel(channel.id)).locked_remaining:
                    await trio.sleep(0.05)
            print(
                f"call {second.id} (strike 3,200) settled on chain: out of the money, "
                "its collateral went back to bob"
            )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
