"""Embedding a node in a trading bot: react to the peer's trades as they become final.

Bob's bot watches its node's event stream and, each time Alice buys a call from him, buys a
small put back from her (a toy hedge). Everything a bot needs is an async trio API.

    .venv/bin/python examples/trading_bot.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

from channels import open_node
from channels.core.consent import (
    Approved,
    DecisionHook,
    Refusal,
    TradeClass,
    UpdateView,
    Verdict,
    needs_consent,
)
from channels.core.node_events import StateUpdated
from channels.core.options import OpenOption
from channels.runtime.node import Node
from channels.testing.devnet import PRICE, UNIT, USD, dev_network


async def hedging_bot(node: Node, hedges_wanted: int, done: trio.Event) -> None:
    """Bob's bot: for every option the peer opens, buy a put from the peer."""
    hedged = 0
    async with node.events() as events:
        async for event in events:
            if not isinstance(event, StateUpdated) or event.ours or event.channel_id is None:
                continue
            channel = node.channel(event.channel_id)
            for trade in event.trades:
                if isinstance(trade, OpenOption) and trade.position.writer == channel.our_index:
                    await channel.buy_option(
                        kind="put",
                        underlying="ETH-USD",
                        strike=2_500 * PRICE,
                        expiry=trade.position.expiry,
                        quantity=trade.position.quantity // 2,
                        premium=5 * USD,
                        collateral=100 * USD,
                    )
                    hedged += 1
                    print(f"bot: hedged option {trade.position.id} with a put")
            if hedged >= hedges_wanted:
                done.set()
                return


def writes_at(kind_allowed: TradeClass, min_premium: int) -> DecisionHook:
    """A desk's decision on what its peer asks of it: it writes options for at least
    ``min_premium``; anything else that would cost it is refused."""

    def decide(view: UpdateView) -> Verdict:
        for trade, kind in zip(view.trades, view.classes, strict=True):
            if kind is kind_allowed and isinstance(trade, OpenOption):
                if trade.premium >= min_premium:
                    continue
                return Refusal("PremiumTooLow", f"{trade.premium} < {min_premium}")
            if needs_consent(kind):
                return Refusal("NotOurBusiness", f"we do not agree to: {kind.value}")
        return Approved("the desk's pricing rule")

    return decide


async def main(workdir: Path) -> None:
    async with dev_network() as net:
        alice_key, bob_key = net.desks
        async with (
            open_node(
                signer=bob_key,
                store=workdir / "bob.sqlite",
                chain=net.url,
                adjudicator=net.adjudicator,
                listen=("127.0.0.1", 0),
                trust=net.trust(bob_key, decide=writes_at(TradeClass.WE_WRITE, 30 * USD)),
            ) as bob,
            open_node(
                signer=alice_key,
                store=workdir / "alice.sqlite",
                chain=net.url,
                adjudicator=net.adjudicator,
                trust=net.trust(alice_key, decide=writes_at(TradeClass.WE_WRITE, 5 * USD)),
            ) as alice,
            trio.open_nursery() as nursery,
        ):
            done = trio.Event()
            nursery.start_soon(hedging_bot, bob, 3, done)
            assert bob.listen_port is not None
            channel = await alice.open_channel(
                peer=("127.0.0.1", bob.listen_port),
                peer_address=bob_key.address,
                asset=net.token,
                deposit=10_000 * USD,
                peer_deposit=10_000 * USD,
                oracle=net.oracle.address,
            )
            for strike in (3_000, 3_100, 3_200):
                await channel.buy_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=strike * PRICE,
                    expiry=alice.now() + 7 * 86400,
                    quantity=UNIT,
                    premium=40 * USD,
                    collateral=500 * USD,
                )
                print(f"alice bought a {strike} call from bob")
            with trio.fail_after(30):
                await done.wait()
            positions = alice.channel(channel.id).positions
            print(f"{len(positions)} open positions between the desks")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
