"""A refused fill does not consume the quote (issue 12, firm quotes), over real TCP and anvil.

The attack: a peer sends updates that fill the whole of our live quote together with something we
refuse (a payment from us, no consent), again and again. Each is refused; before the fix each
refusal still took the fill's quantity off the quote, so the peer emptied our quote without
trading and our real counterparties got ``QuoteOverfilled``. Now the quantity a refused or failed
update took is given back; only signed fills consume the quote.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest
import trio

from channels.core.messages import Proposal, Reestablish, Reject, UpdateRequest
from channels.core.model import QUANTITY_SCALE, Address, Amount
from channels.core.options import Pay
from channels.core.quote_wire import decode_peer_message, encode_peer_message
from channels.core.quotes import fill_trade
from channels.runtime.node import UpdateRefusedError
from channels.transport import Prologue, connect

from ._helpers import DEPOSIT, PERIOD, WEEK, wait_until
from ._quoting import COLLATERAL, PRICE, STRIKE, quoting_desk, quoting_pair
from .conftest import Desks

SIZE = 3 * QUANTITY_SCALE
T = TypeVar("T")


async def test_refused_fills_do_not_exhaust_the_quote(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with quoting_pair(desks, tmp_path) as (_, bob, ch, bch):
            signed = await bch.offer_quote(
                "ETH", "call", STRIKE, bob.now() + WEEK, "buy",
                price=PRICE, collateral=COLLATERAL, max_quantity=SIZE, valid_for=600,
            )  # fmt: skip
            quote = signed.quote
            for _ in range(3):  # the whole quote, with a payment Bob never agreed to
                fill = fill_trade(quote, SIZE, ch.new_position_id(), bch.our_index)
                with pytest.raises(UpdateRefusedError) as refused:
                    await ch.trade(fill, Pay(bch.our_index, Amount(1)))
                assert refused.value.rule == "ConsentRequired", refused.value
            booked = bob.quotes.book.get(quote.quote_id)
            assert booked is not None and booked.remaining == SIZE
            # A real fill of the whole quote still goes through, and then the quote is used up.
            position = await ch.fill_quote(signed)
            assert position.quantity == SIZE
            assert booked.remaining == 0


async def test_fills_the_peer_refuses_after_we_proposed_them_do_not_exhaust_the_quote(
    desks: Desks, tmp_path: Path
) -> None:
    """Bob leads the channel, so a fill Alice asks for is Bob's proposal; the attacker (Alice's
    key, on a raw link) asks for the whole quote and refuses Bob's proposal of it, again and
    again. Each refusal gives the quantity back."""
    with trio.fail_after(120):
        async with quoting_desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
            async with quoting_desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=True
            ) as alice:
                assert alice.listen_port is not None
                bch = await bob.open_channel(
                    peer=("127.0.0.1", alice.listen_port),
                    peer_address=desks.alice.address,
                    asset=desks.token,
                    deposit=DEPOSIT,
                    peer_deposit=DEPOSIT,
                    oracle=desks.oracle.address,
                    challenge_period=PERIOD,
                )
                assert bch.our_index == 0  # Bob leads
            # Alice's node is down; the attacker holds her key and dials Bob.
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect(
                "127.0.0.1", bob.listen_port or 0, desks.alice, desks.bob.address, prologue
            )

            async def next_message(kind: type[T]) -> T:
                while True:
                    message = decode_peer_message(await link.receive())
                    if isinstance(message, kind):
                        return message

            theirs = await next_message(Reestablish)
            await link.send(encode_peer_message(theirs))  # agree on Bob's latest state
            await wait_until(lambda: bch.in_sync)
            signed = await bch.offer_quote(
                "ETH", "call", STRIKE, bob.now() + WEEK, "buy",
                price=PRICE, collateral=COLLATERAL, max_quantity=SIZE, valid_for=600,
            )  # fmt: skip
            booked = bob.quotes.book.get(signed.quote.quote_id)
            assert booked is not None
            for request_id in range(1, 4):
                fill = fill_trade(signed.quote, SIZE, (1 << 63) | request_id, bch.our_index)
                await link.send(encode_peer_message(UpdateRequest(bch.id, request_id, (fill,))))
                proposal = await next_message(Proposal)  # not a QuoteOverfilled refusal
                assert proposal.request_id == request_id
                assert booked.remaining == 0  # taken while the proposal is out
                version = proposal.state.version
                await link.send(encode_peer_message(Reject(bch.id, version, None, "No", "no")))
                await wait_until(lambda: booked.remaining == SIZE)
            assert bob.quotes.book.held == 0
            await link.aclose()
