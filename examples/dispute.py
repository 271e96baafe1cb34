"""A dispute: Bob goes offline and registers an old state; Alice's watcher defends her.

.venv/bin/python examples/dispute.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

from adjudicator.client import connect_adjudicator
from channels import open_node
from channels.core.node_events import Alarm
from channels.core.protocol import Phase
from channels.testing.devnet import USD, dev_network

PERIOD = 600  # ten minutes of chain time, fast-forwarded on the local chain


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
                trust=net.trust(bob_key),  # Bob pays by his own call: his consent
            ) as bob:
                assert bob.listen_port is not None
                channel = await alice.open_channel(
                    peer=("127.0.0.1", bob.listen_port),
                    peer_address=bob_key.address,
                    asset=net.token,
                    deposit=1_000 * USD,
                    peer_deposit=1_000 * USD,
                    oracle=net.oracle.address,
                    challenge_period=PERIOD,
                )
                bobs = bob.channel(channel.id)
                for _ in range(3):
                    latest = await bobs.pay(100 * USD)
                await channel.wait_version(latest.version)
                old = (await bob.store.history(channel.id))[1].signed
            print(f"bob owes alice 300 USD at version {channel.version}; bob goes offline")
            async with (
                alice.events() as events,
                connect_adjudicator(net.url, net.adjudicator, bob_key.secret) as bobs_wallet,
            ):
                await bobs_wallet.register(channel.params, old)
                print(f"bob registers his old version {old.state.version} on chain")
                with trio.fail_after(30):
                    async for event in events:
                        if isinstance(event, Alarm) and event.kind == "StaleRegistration":
                            print(f"alice's watcher: {event.detail}; refuting")
                            break
                while (await bobs_wallet.channel(channel.id)).version != channel.version:
                    await trio.sleep(0.05)
                print(f"registered version is now {channel.version}; waiting out the period")
                await net.advance(PERIOD + 1)
                await channel.wait_phase(Phase.CLOSED)
            print(
                f"concluded: alice paid {channel.our_balance / USD:,.2f} USD, "
                f"bob {channel.their_balance / USD:,.2f} USD (version {channel.version})"
            )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
