"""Two desks over TCP: open a channel, trade an option and a payment, look at the state.

.venv/bin/python examples/two_desks.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

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
from channels.testing.devnet import PRICE, UNIT, USD, dev_network


def bob_buys_cheap_options(view: UpdateView) -> Verdict:
    """Bob's decision on what Alice asks of him: he buys options for at most 50 USD of premium;
    anything else that would cost him is refused (a payment to him needs no decision)."""
    for trade, kind in zip(view.trades, view.classes, strict=True):
        if (
            kind is TradeClass.WE_BUY
            and isinstance(trade, OpenOption)
            and trade.premium <= 50 * USD
        ):
            continue
        if needs_consent(kind):
            return Refusal("BobsRules", f"bob does not agree to: {kind.value}")
    return Approved("bob's rules")


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
                trust=net.trust(bob_key, decide=bob_buys_cheap_options),
            ) as bob,
            open_node(
                signer=alice_key,
                store=workdir / "alice.sqlite",
                chain=net.url,
                adjudicator=net.adjudicator,
                trust=net.trust(alice_key),
            ) as alice,
        ):
            assert bob.listen_port is not None
            channel = await alice.open_channel(
                peer=("127.0.0.1", bob.listen_port),
                peer_address=bob_key.address,
                asset=net.token,
                deposit=5_000 * USD,
                peer_deposit=5_000 * USD,
                oracle=net.oracle.address,
                challenge_period=3600,
            )
            print(f"opened {channel}")
            position = await channel.write_option(
                kind="put",
                underlying="BTC-USD",
                strike=60_000 * PRICE,
                expiry=alice.now() + 30 * 86400,
                quantity=UNIT // 100,
                premium=25 * USD,
                collateral=600 * USD,
            )
            state = await channel.pay(10 * USD)
            print(f"alice wrote a put (id {position.id}) and paid 10 USD: version {state.version}")
            print(
                f"alice {channel.our_balance / USD:,.2f} USD free, "
                f"bob {channel.their_balance / USD:,.2f} USD free, "
                f"{state.locked / USD:,.2f} USD locked as collateral"
            )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
