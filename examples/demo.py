"""The two-desk demo: a local chain, two desk nodes, options traded both ways, a close.

Run it with ``make demo`` (which sets everything up first) or ``.venv/bin/python examples/demo.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import trio

from adjudicator import devchain
from adjudicator.deploy import deploy_dev_setup
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import LocalSigner, open_node
from channels.core import eip712
from channels.core.model import Attestation, symbol
from channels.node import NodeSettings

USD = 10**6  # the demo token has 6 decimals
PRICE = 10**8  # prices have 8 decimals
ETH = 10**18  # quantities have 18 decimals


def line(text: str) -> None:
    print(text, flush=True)


async def run_demo(workdir: Path) -> None:
    with devchain.anvil(devchain.AnvilConfig()) as chain:
        keys = chain.private_keys
        alice_key, bob_key, oracle_key = (LocalSigner.from_hex(keys[i]) for i in (1, 2, 9))
        async with open_rpc(chain.url) as rpc:
            dep = await deploy_dev_setup(
                rpc, keys[0], fund=[alice_key.address, bob_key.address], amount=100_000 * USD
            )
        assert dep.token is not None
        line(f"local chain {chain.url} (chain id {dep.chain_id})")
        line(f"adjudicator 0x{dep.adjudicator.hex()}, token 0x{dep.token.hex()}")
        settings = NodeSettings(chain_poll_interval=0.05)
        async with (
            open_node(
                signer=bob_key,
                store=workdir / "bob.sqlite",
                chain=chain.url,
                adjudicator=dep.adjudicator,
                listen=("127.0.0.1", 0),
                settings=settings,
            ) as bob,
            open_node(
                signer=alice_key,
                store=workdir / "alice.sqlite",
                chain=chain.url,
                adjudicator=dep.adjudicator,
                settings=settings,
            ) as alice,
        ):
            assert bob.listen_port is not None
            ch = await alice.open_channel(
                peer=("127.0.0.1", bob.listen_port),
                peer_address=bob_key.address,
                asset=dep.token,
                deposit=10_000 * USD,
                peer_deposit=10_000 * USD,
                oracle=oracle_key.address,
                challenge_period=3600,
            )
            bch = bob.channel(ch.id)
            line(f"channel 0x{ch.id.hex()[:16]}… funded: 10,000 USD each")
            expiry = alice.now() + 2 * 86400
            call = await ch.write_option(
                kind="call",
                underlying="ETH-USD",
                strike=3000 * PRICE,
                expiry=expiry,
                quantity=2 * ETH,
                premium=150 * USD,
                collateral=2_000 * USD,
            )
            put = await bch.write_option(
                kind="put",
                underlying="ETH-USD",
                strike=2800 * PRICE,
                expiry=expiry,
                quantity=1 * ETH,
                premium=90 * USD,
                collateral=2_800 * USD,
            )
            line("alice wrote 2 ETH calls at 3,000 (premium 150); bob wrote 1 ETH put at 2,800")
            started = time.perf_counter()
            n = 200
            for i in range(n):
                if i % 2:
                    await ch.pay(1 * USD)
                else:
                    await bch.pay(1 * USD)
            rate = n / (time.perf_counter() - started)
            line(f"{n} payments both ways: {rate:,.0f} updates/s (sequential, durable)")
            latest = await bch.unwind(put.id, holder_share=40 * USD)
            await ch.wait_version(latest.version)
            line("bob's put unwound early: alice (holder) gets 40 of its collateral")
            # Two days later the oracle attests the price at expiry; the call settles off chain.
            async with open_rpc(chain.url) as rpc:
                await rpc.dev.increase_time(2 * 86400 + 1)
                await rpc.dev.evm_mine()
            await alice.refresh_chain_time()
            await bob.refresh_chain_time()
            attestation = Attestation(symbol("ETH-USD"), expiry, 3_250 * PRICE)
            domain = eip712.Domain(dep.chain_id, ch.params.adjudicator)
            signature = oracle_key.sign_digest(eip712.attestation_digest(domain, attestation))
            latest = await bch.settle(call.id, attestation, signature)
            await ch.wait_version(latest.version)
            line("call settled at 3,250: bob receives 2 x 250 = 500 USD from alice's collateral")
            final_state = ch.state
            await ch.close()
            line(f"closed cooperatively at version {final_state.version}")
        async with open_rpc(chain.url) as rpc:
            a = await balance_of(rpc, dep.token, alice_key.address)
            b = await balance_of(rpc, dep.token, bob_key.address)
        line("")
        line(f"{'desk':<8}{'channel balance':>18}{'wallet after close':>22}")
        line(f"{'alice':<8}{final_state.balances[0] / USD:>18,.2f}{a / USD:>22,.2f}")
        line(f"{'bob':<8}{final_state.balances[1] / USD:>18,.2f}{b / USD:>22,.2f}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="optchan-demo-") as tmp:
        trio.run(run_demo, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
