"""A market-making bot: it answers requests for quotes with firm, signed quotes priced by
Black-Scholes at a configured volatility, and streams unsolicited offers to its peer.

Bob runs the market maker; Alice asks him for quotes and fills one of them. A quote is the
maker's EIP-712 signed promise: Bob's node countersigns a fill only at exactly its price and
terms, within its size and before it expires (chain time). The maker's edge is a spread around
the model price: it sells above it and buys below it.

    .venv/bin/python examples/market_maker.py
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio

from channels import open_node
from channels.core.model import PRICE_SCALE, OptionKind, symbol_text
from channels.core.quotes import Side
from channels.runtime.node import Node
from channels.runtime.quoting import Decline, IncomingRequest, QuoteTerms
from channels.testing.devnet import PRICE, UNIT, USD, dev_network

YEAR = 365 * 86400


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(kind: OptionKind, spot: float, strike: float, years: float, vol: float) -> float:
    """The model price of a European option (no rates, no dividends), in price units."""
    if years <= 0 or vol <= 0:
        intrinsic = spot - strike if kind is OptionKind.CALL else strike - spot
        return max(0.0, intrinsic)
    sd = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if kind is OptionKind.CALL:
        return spot * normal_cdf(d1) - strike * normal_cdf(d2)
    return strike * normal_cdf(-d2) - spot * normal_cdf(-d1)


@dataclass
class MarketMaker:
    """Bob's pricer: Black-Scholes at ``volatility``, a spread, a size limit, full collateral."""

    spots: dict[str, float]  # underlying -> spot price (USD)
    volatility: float = 0.6
    spread: float = 0.05  # 5% over the model price when we sell, under it when we buy
    max_size: int = 10 * UNIT
    valid_for: int = 30
    quoted: int = 0

    def collateral_per_unit(self, kind: OptionKind, strike: float, spot: float) -> int:
        # A put pays at most its strike; a call's payoff is capped at twice the spot.
        cap = strike if kind is OptionKind.PUT else 2 * spot
        return int(cap * USD)

    def terms(
        self, name: str, kind: OptionKind, strike: float, expiry: int, side: Side, now: int
    ) -> QuoteTerms | Decline:
        """Firm terms for a requester on ``side`` (it buys: we sell above the model)."""
        spot = self.spots.get(name)
        if spot is None:
            return Decline(f"we make no market in {name}")
        years = (expiry - now) / YEAR
        if years <= 0:
            return Decline("the option has expired")
        model = black_scholes(kind, spot, strike, years, self.volatility)
        factor = 1 + self.spread if side is Side.BUY else 1 - self.spread
        return QuoteTerms(
            price=max(1, int(model * factor * USD)),
            collateral=self.collateral_per_unit(kind, strike, spot),
            max_quantity=self.max_size,
            valid_for=self.valid_for,
        )

    def __call__(self, incoming: IncomingRequest) -> QuoteTerms | Decline:
        """The node's pricer: called for each request of the peer."""
        r = incoming.request
        terms = self.terms(
            symbol_text(r.underlying),
            r.kind,
            r.strike / PRICE_SCALE,
            r.expiry,
            r.side,
            incoming.now,
        )
        if isinstance(terms, QuoteTerms):
            self.quoted += 1
            return QuoteTerms(
                terms.price, terms.collateral, min(r.quantity, self.max_size), terms.valid_for
            )
        return terms


async def stream_offers(
    node: Node, channel_id: bytes, maker: MarketMaker, strikes: list[int]
) -> None:
    """Unsolicited offers: the maker's two-week calls at each strike, offered for sale."""
    expiry = node.now() + 14 * 86400
    for strike in strikes:
        terms = maker.terms("ETH-USD", OptionKind.CALL, strike, expiry, Side.BUY, node.now())
        assert isinstance(terms, QuoteTerms)
        await node.quotes.offer(
            channel_id,
            underlying="ETH-USD",
            kind="call",
            strike=strike * PRICE,
            expiry=expiry,
            side="buy",  # the peer's side: it buys, we write
            price=terms.price,
            collateral=terms.collateral,
            max_quantity=maker.max_size,
            valid_for=maker.valid_for,
        )


async def main(workdir: Path) -> None:
    maker = MarketMaker(spots={"ETH-USD": 3_000.0})
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
            expiry = alice.now() + 30 * 86400
            for kind, strike, side in (("call", 3_200, "buy"), ("put", 2_800, "sell")):
                quote = await channel.request_quote(
                    "ETH-USD", kind, strike * PRICE, expiry, 2 * UNIT, side
                )
                q = quote.quote
                print(
                    f"bob quotes a {strike} {kind}: {'sells' if q.quoter_writes else 'buys'} "
                    f"at {q.price / USD:,.2f} USD per unit, up to {q.max_quantity / UNIT:g}"
                )
            position = await channel.fill_quote(quote, UNIT)
            print(f"alice filled 1 unit of bob's put bid: position {position.id}")
            try:
                await channel.request_quote("BTC-USD", "call", 90_000 * PRICE, expiry, UNIT, "buy")
            except Exception as exc:  # QuoteDeclined
                print(f"BTC request declined: {exc}")
            await stream_offers(bob, channel.id, maker, [3_300, 3_400])
            with trio.fail_after(10):
                while len(alice.quotes.live(channel.id)) < 4:
                    await trio.sleep(0.05)
            print(f"alice holds {len(alice.quotes.live(channel.id))} live quotes from bob")
            print(f"market maker quoted {maker.quoted} requests")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp))
