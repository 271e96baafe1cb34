"""Cooperative close: both sign a final state, one transaction pays both sides.

.venv/bin/python examples/cooperative_close.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import open_node
from channels.testing.devnet import USD, dev_network


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
                trust=net.trust(bob_key),  # Alice pays Bob: no decision needed
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
                deposit=1_000 * USD,
                peer_deposit=1_000 * USD,
                oracle=net.oracle.address,
            )
            await channel.pay(123 * USD)
            final = channel.state
            await channel.close()
            print(f"closed at version {channel.version}: phase {channel.phase.value}")
        async with open_rpc(net.url) as rpc:
            for name, key, index in (("alice", alice_key, 0), ("bob", bob_key, 1)):
                wallet = await balance_of(rpc, net.token, key.address)
                print(
                    f"{name}: channel balance {final.balances[index] / USD:,.2f} USD, "
                    f"wallet now {wallet / USD:,.2f} USD"
                )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
