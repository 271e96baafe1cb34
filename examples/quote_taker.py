"""A quote-taking bot: it watches the firm quotes its peer streams, checks each signature on its
own (eth-account, from the EIP-712 typed data), and fills the ones cheaper than its own model.

Bob runs the market maker of examples/market_maker.py (Black-Scholes at 60% volatility) and
streams offers to sell calls; Alice's bot values the same calls at 75% volatility, so it buys
every offer priced below its model, in one channel update per fill, and leaves the rest.

    .venv/bin/python examples/quote_taker.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
from eth_account import Account
from eth_account.messages import encode_typed_data
from market_maker import MarketMaker, black_scholes, stream_offers

from channels import open_node
from channels.core import eip712
from channels.core.model import PRICE_SCALE, symbol_text, to_checksum
from channels.core.quotes import quote_typed_data
from channels.runtime.node import Node
from channels.runtime.quote_events import QuoteFilled, QuoteReceived
from channels.testing.devnet import UNIT, USD, dev_network

YEAR = 365 * 86400


async def taking_bot(
    node: Node, spot: float, volatility: float, offers_wanted: int, done: trio.Event
) -> None:
    """Alice's bot: fill every offered call priced below its own Black-Scholes value."""
    seen = 0
    domain = eip712.Domain(node.chain_id, node.chain.address)  # type: ignore[arg-type]
    async with node.events() as events:
        async for event in events:
            if not isinstance(event, QuoteReceived) or event.channel_id is None:
                continue
            quote = event.quote.quote
            # Non-repudiation, checked independently of our node: recover the quoter.
            signable = encode_typed_data(full_message=quote_typed_data(domain, quote))  # type: ignore[arg-type]
            signer = Account.recover_message(signable, signature=event.quote.signature)
            assert signer == to_checksum(quote.quoter)
            seen += 1
            years = (quote.expiry - node.now()) / YEAR
            ours = black_scholes(quote.kind, spot, quote.strike / PRICE_SCALE, years, volatility)
            offered = quote.price / USD
            name = f"{quote.strike // PRICE_SCALE} {quote.kind.name.lower()}"
            if quote.quoter_writes and offered < ours:
                channel = node.channel(event.channel_id)
                position = await channel.fill_quote(event.quote, UNIT)
                print(
                    f"taker: bought 1 {symbol_text(quote.underlying)} {name} at {offered:,.2f} "
                    f"(our value {ours:,.2f}): position {position.id}"
                )
            else:
                print(f"taker: passed on the {name} at {offered:,.2f} (our value {ours:,.2f})")
            if seen >= offers_wanted:
                done.set()
                return


async def main(workdir: Path) -> None:
    maker = MarketMaker(spots={"ETH-USD": 3_000.0}, volatility=0.6)
    async with dev_network() as net:
        alice_key, bob_key = net.desks
        async with (
            open_node(
                signer=bob_key,
                store=workdir / "bob.sqlite",
                chain=net.url,
                adjudicator=net.adjudicator,
                listen=("127.0.0.1", 0),
                pricer=maker,
                trust=net.trust(bob_key),  # bob signs options only as fills of his quotes
            ) as bob,
            open_node(
                signer=alice_key,
                store=workdir / "alice.sqlite",
                chain=net.url,
                adjudicator=net.adjudicator,
                trust=net.trust(alice_key),
            ) as alice,
            trio.open_nursery() as nursery,
        ):
            assert bob.listen_port is not None
            channel = await alice.open_channel(
                peer=("127.0.0.1", bob.listen_port),
                peer_address=bob_key.address,
                asset=net.token,
                deposit=100_000 * USD,
                peer_deposit=100_000 * USD,
                oracle=net.oracle.address,
            )
            done = trio.Event()
            nursery.start_soon(taking_bot, alice, 3_000.0, 0.75, 3, done)
            fills = 0
            async with bob.events() as bob_events:
                # A deep in-the-money call is priced near intrinsic by both models: passed on.
                await stream_offers(bob, channel.id, maker, [3_100, 3_500, 1_000])
                with trio.fail_after(30):
                    await done.wait()
                    while fills < 2:
                        if isinstance(await bob_events.receive(), QuoteFilled):
                            fills += 1
            print(f"maker: {fills} of its offers were filled; {len(channel.positions)} positions")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
