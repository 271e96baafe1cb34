"""Firm quotes between two nodes over real TCP on anvil: request, quote, fill; and every refusal of
the fill rule (expired, overfilled, another price, crossing fills, a fill crossing a replacement),
declines, and a flood of requests refused rather than stored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
from eth_account import Account
from eth_account.messages import encode_typed_data

from channels.core import eip712
from channels.core.model import QUANTITY_SCALE, Address
from channels.core.quote_book import QuoteLimits
from channels.core.quotes import QuoteDeclined, QuoteExpired, fill_trade, quote_typed_data
from channels.runtime.node import UpdateRefusedError
from channels.runtime.quote_events import (
    QuoteDeclinedEvent,
    QuoteFilled,
    QuoteReceived,
    QuoteRequested,
)
from channels.runtime.quoting import Decline

from ._helpers import WEEK, open_channel
from ._quoting import (
    COLLATERAL,
    PRICE,
    STRIKE,
    advance_chain,
    flat_pricer,
    quoting_desk,
    quoting_pair,
)
from .conftest import Desks


async def test_request_quote_and_fill_in_parts(desks: Desks, tmp_path: Path) -> None:
    """Alice (leader) asks Bob for a quote, checks its signature on her own, fills it in two
    parts; each fill is one update, both sides see the events and keep the audit trail."""
    with trio.fail_after(120):
        async with quoting_pair(desks, tmp_path, bob_pricer=flat_pricer) as (alice, bob, ch, bch):
            expiry = alice.now() + WEEK
            async with alice.events() as a_events, bob.events() as b_events:
                signed = await ch.request_quote(
                    "ETH", "call", STRIKE, expiry, 10 * QUANTITY_SCALE, "buy"
                )
                quote = signed.quote
                assert quote.quoter == desks.bob.address and quote.quoter_writes
                assert (quote.price, quote.max_quantity) == (PRICE, 10 * QUANTITY_SCALE)
                # Non-repudiable: eth-account recovers Bob from the typed data alone.
                domain = eip712.Domain(desks.deployment.chain_id, Address(desks.adjudicator))
                signable = encode_typed_data(full_message=quote_typed_data(domain, quote))  # type: ignore[arg-type]
                recovered = Account.recover_message(signable, signature=signed.signature)
                assert recovered.lower() == "0x" + desks.bob.address.hex()

                before = ch.our_balance
                first = await ch.fill_quote(signed, 4 * QUANTITY_SCALE)
                assert first.writer == bch.our_index and first.quantity == 4 * QUANTITY_SCALE
                assert ch.our_balance == before - 4 * PRICE
                second = await ch.fill_quote(signed)  # what is left
                assert second.quantity == 6 * QUANTITY_SCALE
                await bch.wait_version(ch.version)
                assert {p.id for p in bch.positions} >= {first.id, second.id}

                seen_b: list[object] = []
                seen_a: list[object] = []
                while sum(isinstance(e, QuoteFilled) for e in seen_b) < 2:
                    seen_b.append(await b_events.receive())
                while sum(isinstance(e, QuoteFilled) for e in seen_a) < 2:
                    seen_a.append(await a_events.receive())
            assert any(isinstance(e, QuoteRequested) for e in seen_b)
            assert any(isinstance(e, QuoteReceived) for e in seen_a)
            fills = [e for e in seen_b if isinstance(e, QuoteFilled)]
            assert [f.remaining for f in fills] == [6 * QUANTITY_SCALE, 0]
            assert all(f.ours for f in fills)

            # Nothing is left: a further fill is refused at once, before anything is signed.
            with pytest.raises(Exception, match="left"):
                await ch.fill_quote(signed, 1)
            for node, kind in ((bob, "issued"), (alice, "received")):
                trail = await node.quotes.audit(ch.id)
                assert [r.kind for r in trail].count(kind) == 1
                assert [r.kind for r in trail].count("filled") == 2
                record = next(r for r in trail if r.kind == kind)
                assert record.signed == signed


async def test_follower_fills_the_leaders_quote_and_a_put_is_declined(
    desks: Desks, tmp_path: Path
) -> None:
    """The quoter is the leader: it proposes the follower's fill only after the fill rule."""
    with trio.fail_after(120):
        async with quoting_pair(desks, tmp_path, alice_pricer=flat_pricer) as (_, bob, ch, bch):
            expiry = bob.now() + WEEK
            async with bob.events() as b_events:
                with pytest.raises(QuoteDeclined, match="puts"):
                    await bch.request_quote("ETH", "put", STRIKE, expiry, QUANTITY_SCALE, "buy")
                while not isinstance(event := await b_events.receive(), QuoteDeclinedEvent):
                    pass
                assert event.reason == "we do not quote puts"
            signed = await bch.request_quote("ETH", "call", STRIKE, expiry, QUANTITY_SCALE, "buy")
            position = await bch.fill_quote(signed)
            assert position.writer == ch.our_index
            await ch.wait_version(bch.version)
            assert position.id in {p.id for p in ch.positions}
            # Over the size, through the raw trade (as a hostile peer would): the leader
            # refuses to propose it and names the rule.
            over = fill_trade(signed.quote, 2 * QUANTITY_SCALE, bch.new_position_id(), 0)
            version = ch.version
            with pytest.raises(UpdateRefusedError) as refused:
                await bch.trade(over)
            assert refused.value.rule == "QuoteOverfilled"
            assert ch.version == version


async def test_refusals_of_the_fill_rule_over_tcp(desks: Desks, tmp_path: Path) -> None:
    """Bob quotes (he countersigns as the follower); Alice sends fills he must refuse."""
    with trio.fail_after(150):
        async with quoting_pair(desks, tmp_path, bob_pricer=flat_pricer) as (alice, bob, ch, bch):
            expiry = alice.now() + WEEK
            signed = await ch.request_quote(
                "ETH", "call", STRIKE, expiry, 10 * QUANTITY_SCALE, "buy"
            )
            quote = signed.quote
            bob_index = bch.our_index

            async def refused(trade: object) -> str:
                version = bch.version
                with pytest.raises(UpdateRefusedError) as info:
                    await ch.trade(trade)  # type: ignore[arg-type]
                assert bch.version == version and ch.version == version
                return info.value.rule

            good = fill_trade(quote, 2 * QUANTITY_SCALE, ch.new_position_id(), bob_index)
            # Another price.
            cheaper = dataclasses.replace(good, premium=good.premium - 1)
            assert await refused(cheaper) == "QuotePriceChanged"
            # Other terms: Alice would write instead of buy.
            pos = dataclasses.replace(good.position, writer=ch.our_index)
            assert await refused(dataclasses.replace(good, position=pos)) == "QuoteTermsChanged"
            # Over the size.
            too_big = fill_trade(quote, 11 * QUANTITY_SCALE, ch.new_position_id(), bob_index)
            assert await refused(too_big) == "QuoteOverfilled"

            # Crossing fills: two fills of 6 sent at once; together they exceed the 10 left.
            results: list[object] = []

            async def fill_six() -> None:
                trade = fill_trade(quote, 6 * QUANTITY_SCALE, ch.new_position_id(), bob_index)
                try:
                    results.append(await ch.trade(trade))
                except UpdateRefusedError as exc:
                    results.append(exc.rule)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(fill_six)
                nursery.start_soon(fill_six)
            assert sorted(r == "QuoteOverfilled" for r in results) == [False, True]
            booked = bob.quotes.book.get(quote.quote_id)
            assert booked is not None and booked.remaining == 4 * QUANTITY_SCALE

            # A fill crossing a replacement: Bob re-quotes, Alice's fill of the old one is
            # already on its way.
            newer = await bob.quotes.offer(
                ch.id,
                underlying="ETH",
                kind="call",
                strike=STRIKE,
                expiry=expiry,
                side="buy",
                price=PRICE + 1,
                collateral=COLLATERAL,
                max_quantity=QUANTITY_SCALE,
                replaces=quote.quote_id,
            )
            old_fill = fill_trade(quote, QUANTITY_SCALE, ch.new_position_id(), bob_index)
            assert await refused(old_fill) == "QuoteReplaced"

            # Expiry by chain time: the replacement is refused once its time has passed.
            await advance_chain(desks, 3600, alice, bob)
            late = fill_trade(newer.quote, QUANTITY_SCALE, ch.new_position_id(), bob_index)
            assert await refused(late) == "QuoteExpired"
            # Filling through the helper refuses it locally, before signing.
            with pytest.raises(QuoteExpired):
                await ch.fill_quote(newer)
            trail = await bob.quotes.audit(ch.id)
            assert [r.kind for r in trail].count("filled") == 1


async def test_a_flood_of_quote_requests_is_refused_not_stored(
    desks: Desks, tmp_path: Path
) -> None:
    limits = QuoteLimits(max_requests_per_peer=4)
    with trio.fail_after(120):
        # No pricer: requests wait for the operator, so they pile up.
        async with quoting_desk(
            desks, desks.bob, tmp_path / "b.sqlite", listen=True, limits=limits
        ) as bob:
            async with quoting_desk(
                desks,
                desks.alice,
                tmp_path / "a.sqlite",
                listen=False,
                limits=QuoteLimits(max_our_requests_per_peer=100),
            ) as alice:
                ch, _ = await open_channel(alice, bob, desks)
                expiry = alice.now() + WEEK
                declined: list[str] = []
                unanswered = 0

                async def ask() -> None:
                    nonlocal unanswered
                    try:
                        await ch.request_quote(
                            "ETH", "call", STRIKE, expiry, QUANTITY_SCALE, "buy", timeout=3
                        )
                    except QuoteDeclined as exc:
                        declined.append(str(exc))
                    except trio.TooSlowError:
                        unanswered += 1

                async with trio.open_nursery() as nursery:
                    for _ in range(60):
                        nursery.start_soon(ask)
                assert unanswered == 4
                assert len(declined) == 56
                assert all("limit 4" in reason for reason in declined)
                assert len(bob.quotes.pending_requests()) == 4
                # The operator answers one of them; it is then no longer waiting.
                request = bob.quotes.pending_requests()[0]
                await bob.quotes.answer(ch.id, request.request_id, Decline("desk closed"))
                assert len(bob.quotes.pending_requests()) == 3


async def test_a_restarted_quoter_keeps_its_live_quotes_and_what_is_left(
    desks: Desks, tmp_path: Path
) -> None:
    """Alice quotes; Bob fills part; Alice restarts: the rest of her quote is still firm, and
    no more than the rest (counted from her signed history) can be filled."""
    with trio.fail_after(150):
        async with quoting_desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
            async with quoting_desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False, pricer=flat_pricer
            ) as alice:
                ch, bch = await open_channel(alice, bob, desks)
                expiry = bob.now() + WEEK
                signed = await bch.request_quote(
                    "ETH", "call", STRIKE, expiry, 10 * QUANTITY_SCALE, "buy"
                )
                await bch.fill_quote(signed, 4 * QUANTITY_SCALE)
                await ch.wait_version(bch.version)
            async with quoting_desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False, pricer=flat_pricer
            ) as alice:
                booked = alice.quotes.book.get(signed.quote.quote_id)
                assert booked is not None and booked.ours
                assert booked.remaining == 6 * QUANTITY_SCALE
                over = fill_trade(signed.quote, 7 * QUANTITY_SCALE, bch.new_position_id(), 0)
                with pytest.raises(UpdateRefusedError) as refused:
                    await bch.trade(over)
                assert refused.value.rule == "QuoteOverfilled"
                rest = await bch.fill_quote(signed)
                assert rest.quantity == 6 * QUANTITY_SCALE


async def test_crossing_quotes_filled_both_ways_at_once(desks: Desks, tmp_path: Path) -> None:
    """Both desks quote each other and fill each other's quotes at the same moment: each fill is
    checked against its own quoter's book, and both books end exactly where the fills leave them."""
    with trio.fail_after(150):
        async with quoting_pair(
            desks, tmp_path, alice_pricer=flat_pricer, bob_pricer=flat_pricer
        ) as (alice, bob, ch, bch):
            expiry = alice.now() + WEEK
            from_bob, from_alice = await _both(
                ch.request_quote("ETH", "call", STRIKE, expiry, 5 * QUANTITY_SCALE, "buy"),
                bch.request_quote("ETH", "call", STRIKE, expiry, 5 * QUANTITY_SCALE, "buy"),
            )
            a_pos, b_pos = await _both(
                ch.fill_quote(from_bob, 3 * QUANTITY_SCALE),
                bch.fill_quote(from_alice, 2 * QUANTITY_SCALE),
            )
            assert a_pos.writer == bch.our_index and b_pos.writer == ch.our_index
            await ch.wait_version(bch.version)
            await bch.wait_version(ch.version)
            assert {p.id for p in ch.positions} == {p.id for p in bch.positions}
            bob_book = bob.quotes.book.get(from_bob.quote.quote_id)
            alice_book = alice.quotes.book.get(from_alice.quote.quote_id)
            assert bob_book is not None and bob_book.remaining == 2 * QUANTITY_SCALE
            assert alice_book is not None and alice_book.remaining == 3 * QUANTITY_SCALE
            # Each desk's view of the other's quote agrees with the quoter's own book.
            seen_by_alice = alice.quotes.book.get(from_bob.quote.quote_id)
            assert seen_by_alice is not None and not seen_by_alice.ours
            assert seen_by_alice.remaining == bob_book.remaining


async def _both(first, second):  # type: ignore[no-untyped-def]
    results: list[object] = [None, None]

    async def run(i: int, awaitable) -> None:  # type: ignore[no-untyped-def]
        results[i] = await awaitable

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, 0, first)
        nursery.start_soon(run, 1, second)
    return results


async def test_without_a_live_quote_a_fill_is_not_consented(desks: Desks, tmp_path: Path) -> None:
    """A desk with no decision hook countersigns an option trade only as a fill of its own live
    quote: a made-up quote id, or the same trade without a quote id, is refused (consent rule)."""
    with trio.fail_after(120):
        async with quoting_pair(desks, tmp_path, bob_pricer=flat_pricer) as (alice, bob, ch, bch):
            signed = await ch.request_quote(
                "ETH", "call", STRIKE, alice.now() + WEEK, QUANTITY_SCALE, "buy"
            )
            good = fill_trade(signed.quote, QUANTITY_SCALE, ch.new_position_id(), bch.our_index)
            version = bch.version
            for trade in (
                dataclasses.replace(good, quote_id=bytes([7]) * 32),
                dataclasses.replace(good, quote_id=None),
            ):
                with pytest.raises(UpdateRefusedError) as refused:
                    await ch.trade(trade)
                assert refused.value.rule == "ConsentRequired"
                assert bch.version == version
            booked = bob.quotes.book.get(signed.quote.quote_id)
            assert booked is not None and booked.remaining == QUANTITY_SCALE
            await ch.trade(good)  # the real fill is countersigned
            await bch.wait_version(version + 1)
