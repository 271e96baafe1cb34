"""Firm quotes in the core: the EIP-712 Quote against eth-account, fill amounts, the quote book's
fill rule as properties, and the quote messages on the wire (docs/PROTOCOL.md, "Firm quotes")."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.core import quote_wire
from channels.core.errors import SchemaError, UnknownType, WireError
from channels.core.hashing import keccak256
from channels.core.model import QUANTITY_SCALE, OptionKind, symbol
from channels.core.options import OpenOption
from channels.core.quote_book import Fill, QuoteBook, QuoteLimits, QuoteStatus
from channels.core.quotes import (
    QUOTE_TYPE,
    BadQuote,
    Quote,
    QuoteDecline,
    QuoteExpired,
    QuoteOverfilled,
    QuotePriceChanged,
    QuoteReplaced,
    QuoteRequest,
    QuoteTermsChanged,
    QuoteUnknown,
    QuoteWithdrawn,
    Side,
    SignedQuote,
    TooManyQuoteRequests,
    fill_collateral,
    fill_premium,
    fill_trade,
    quote_digest,
    quote_id_for,
    quote_struct_hash,
    quote_typed_data,
    sign_quote,
    verify_quote,
)
from channels.core.signing import LocalSigner

from ._strategies import ALICE, BOB, DOMAIN, MALLORY, bytes32, domains, uint

FAST = settings(max_examples=200, deadline=None)
CHANNEL = keccak256(b"channel")
NOW = 1_000_000


def nonzero(bits: int) -> st.SearchStrategy[int]:
    return uint(bits).filter(lambda v: v > 0)


quotes = st.builds(
    Quote,
    quote_id=bytes32.filter(any),
    channel_id=bytes32,
    quoter=st.just(ALICE.address),
    request_id=uint(64),
    underlying=bytes32,
    kind=st.sampled_from([OptionKind.CALL, OptionKind.PUT]),
    strike=nonzero(256),
    expiry=uint(64),
    quoter_writes=st.booleans(),
    price=uint(128),
    collateral=nonzero(128),
    max_quantity=nonzero(128),
    valid_until=uint(64),
    replaces=st.just(bytes(32)),
)


def make_quote(**changes: object) -> Quote:
    base = Quote(
        quote_id=quote_id_for(CHANNEL, ALICE.address, 1),
        channel_id=CHANNEL,
        quoter=ALICE.address,
        request_id=7,
        underlying=symbol("ETH"),
        kind=OptionKind.CALL,
        strike=2000 * 10**8,
        expiry=NOW + 30 * 86400,
        quoter_writes=True,
        price=50_000,
        collateral=1_000_000,
        max_quantity=10 * QUANTITY_SCALE,
        valid_until=NOW + 60,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# EIP-712 --------------------------------------------------------------------------------------


@FAST
@given(domain=domains, quote=quotes)
def test_quote_digest_matches_eth_account(domain, quote) -> None:  # type: ignore[no-untyped-def]
    signable = encode_typed_data(full_message=quote_typed_data(domain, quote))  # type: ignore[arg-type]
    assert _hash_eip191_message(signable) == quote_digest(domain, quote)
    assert keccak256(QUOTE_TYPE.encode()) == keccak256(
        b"Quote(bytes32 quoteId,bytes32 channelId,address quoter,uint64 requestId,"
        b"bytes32 underlying,uint8 kind,uint256 strike,uint64 expiry,bool quoterWrites,"
        b"uint256 price,uint256 collateral,uint256 maxQuantity,uint64 validUntil,bytes32 replaces)"
    )


@FAST
@given(quote=quotes)
def test_quote_signature_recovers_independently_with_eth_account(quote) -> None:  # type: ignore[no-untyped-def]
    signed = sign_quote(ALICE, DOMAIN, quote)
    signable = encode_typed_data(full_message=quote_typed_data(DOMAIN, quote))  # type: ignore[arg-type]
    recovered = Account.recover_message(signable, signature=signed.signature)
    assert bytes.fromhex(recovered[2:]) == ALICE.address
    verify_quote(DOMAIN, signed)


def test_a_quote_is_signed_only_by_its_quoter_and_verifies_only_unchanged() -> None:
    quote = make_quote()
    with pytest.raises(Exception, match="signed by its quoter"):
        sign_quote(BOB, DOMAIN, quote)
    signed = sign_quote(ALICE, DOMAIN, quote)
    forged = SignedQuote(dataclasses.replace(quote, price=quote.price - 1), signed.signature)
    with pytest.raises(BadQuote):
        verify_quote(DOMAIN, forged)
    mallory = SignedQuote(quote, MALLORY.sign_digest(quote_digest(DOMAIN, quote)))
    with pytest.raises(BadQuote, match="not signed by its quoter"):
        verify_quote(DOMAIN, mallory)
    with pytest.raises(BadQuote):
        verify_quote(DOMAIN, SignedQuote(quote, b"\x00" * 65))
    assert quote_struct_hash(quote) != quote_struct_hash(
        dataclasses.replace(quote, quoter_writes=False)
    )


# Fill amounts ---------------------------------------------------------------------------------


@FAST
@given(quote=quotes, data=st.data())
def test_fill_amounts_round_in_the_quoters_favour(quote, data) -> None:  # type: ignore[no-untyped-def]
    quantity = data.draw(st.integers(1, quote.max_quantity))
    premium = fill_premium(quote, quantity)
    collateral = fill_collateral(quote, quantity)
    exact_premium = quote.price * quantity
    exact_collateral = quote.collateral * quantity
    if quote.quoter_writes:  # the filler pays at least the price, the quoter locks at most
        assert premium * QUANTITY_SCALE >= exact_premium > (premium - 1) * QUANTITY_SCALE
        assert collateral * QUANTITY_SCALE <= exact_collateral
    else:  # the quoter pays at most the price, the filler locks at least
        assert premium * QUANTITY_SCALE <= exact_premium
        assert collateral * QUANTITY_SCALE >= exact_collateral


# The book's fill rule -------------------------------------------------------------------------


def booked(quote: Quote | None = None, limits: QuoteLimits | None = None) -> QuoteBook:
    book = QuoteBook(limits or QuoteLimits())
    book.issue(sign_quote(ALICE, DOMAIN, quote or make_quote()), BOB.address, 0, NOW)
    return book


def test_an_exact_fill_is_accepted_and_taken_off_the_quote() -> None:
    quote = make_quote()
    book = booked(quote)
    trade = fill_trade(quote, 4 * QUANTITY_SCALE, position_id=1, quoter_index=0)
    fill = book.check_fill(CHANNEL, BOB.address, trade, NOW)
    assert fill is not None and fill.quantity == 4 * QUANTITY_SCALE
    assert fill.remaining == 6 * QUANTITY_SCALE
    assert trade.position.writer == 0 and trade.premium == 200_000


def test_fills_refused_naming_the_rule() -> None:
    quote = make_quote()
    book = booked(quote)
    good = fill_trade(quote, QUANTITY_SCALE, position_id=1, quoter_index=0)
    with pytest.raises(QuoteExpired):
        book.check_fill(CHANNEL, BOB.address, good, quote.valid_until)
    book = booked(quote)
    with pytest.raises(QuotePriceChanged):
        book.check_fill(
            CHANNEL, BOB.address, dataclasses.replace(good, premium=good.premium - 1), NOW
        )
    pos = good.position
    for changed in (
        dataclasses.replace(pos, strike=pos.strike + 1),
        dataclasses.replace(pos, writer=1),
        dataclasses.replace(pos, collateral=pos.collateral + 1),
        dataclasses.replace(pos, expiry=pos.expiry + 1),
        dataclasses.replace(pos, kind=OptionKind.PUT),
    ):
        with pytest.raises(QuoteTermsChanged):
            book.check_fill(
                CHANNEL, BOB.address, OpenOption(changed, good.premium, quote.quote_id), NOW
            )
    with pytest.raises(QuoteOverfilled):
        book.check_fill(
            CHANNEL, BOB.address, fill_trade(quote, 11 * QUANTITY_SCALE, 2, quoter_index=0), NOW
        )
    with pytest.raises(QuoteUnknown):
        book.check_fill(keccak256(b"other"), BOB.address, good, NOW)
    with pytest.raises(QuoteUnknown):
        book.check_fill(CHANNEL, MALLORY.address, good, NOW)
    # None of the refusals took anything off the quote.
    entry = book.get(quote.quote_id)
    assert entry is not None and entry.remaining == quote.max_quantity
    # A trade naming no quote of ours is not ours to decide as quoter.
    assert (
        book.check_fill(CHANNEL, BOB.address, dataclasses.replace(good, quote_id=None), NOW) is None
    )
    assert (
        book.check_fill(
            CHANNEL, BOB.address, dataclasses.replace(good, quote_id=bytes([1]) * 32), NOW
        )
        is None
    )


def test_a_replaced_or_withdrawn_quote_cannot_be_filled() -> None:
    first = make_quote()
    book = booked(first)
    second = make_quote(quote_id=quote_id_for(CHANNEL, ALICE.address, 2), replaces=first.quote_id)
    assert book.issue(sign_quote(ALICE, DOMAIN, second), BOB.address, 0, NOW) == [first.quote_id]
    with pytest.raises(QuoteReplaced):
        book.check_fill(CHANNEL, BOB.address, fill_trade(first, 1, 1, 0), NOW)
    assert book.withdraw(second.quote_id)
    with pytest.raises(QuoteWithdrawn):
        book.check_fill(CHANNEL, BOB.address, fill_trade(second, 1, 1, 0), NOW)


@FAST
@given(
    quote=quotes.filter(lambda q: q.valid_until > NOW and q.collateral * q.max_quantity < 2**180),
    sizes=st.lists(st.integers(1, 2**130), min_size=1, max_size=12),
)
def test_fills_never_exceed_the_quote(quote, sizes) -> None:  # type: ignore[no-untyped-def]
    quote = dataclasses.replace(quote, channel_id=CHANNEL)
    book = booked(quote)
    taken = 0
    for size in sizes:
        quantity = size % (quote.max_quantity + 2) or 1
        trade = fill_trade(quote, quantity, 1, quoter_index=0)
        try:
            fill = book.check_fill(CHANNEL, BOB.address, trade, NOW)
        except QuoteOverfilled:
            assert taken + quantity > quote.max_quantity
            continue
        assert fill is not None
        taken += quantity
        assert taken <= quote.max_quantity
        assert fill.remaining == quote.max_quantity - taken
    entry = book.get(quote.quote_id)
    assert entry is not None
    assert entry.status is (QuoteStatus.FILLED if taken == quote.max_quantity else QuoteStatus.LIVE)


def test_a_released_fill_gives_its_quantity_back() -> None:
    quote = make_quote(max_quantity=5)
    book = booked(quote)
    fill = book.check_fill(CHANNEL, BOB.address, fill_trade(quote, 5, 1, 0), NOW)
    assert fill is not None
    with pytest.raises(QuoteOverfilled):
        book.check_fill(CHANNEL, BOB.address, fill_trade(quote, 1, 2, 0), NOW)
    book.release(fill)
    assert book.check_fill(CHANNEL, BOB.address, fill_trade(quote, 5, 3, 0), NOW) is not None


def test_held_fills_are_given_back_when_dropped_and_kept_when_signed() -> None:
    """A fill in our proposal of version 7 holds its size; the peer refuses 7 (dropped): the
    size is back. Held for 8 and 9, then 9 is signed (the resync case: 8 was signed too): both
    stay taken, and a later drop of 8 gives nothing back."""
    quote = make_quote(max_quantity=6)
    book = booked(quote)
    qid = quote.quote_id

    def take(size: int, position_id: int) -> Fill:
        fill = book.check_fill(CHANNEL, BOB.address, fill_trade(quote, size, position_id, 0), NOW)
        assert fill is not None
        return fill

    book.hold(CHANNEL, 7, [take(6, 1)])
    assert book.held == 1 and book.get(qid).remaining == 0  # type: ignore[union-attr]
    book.dropped(CHANNEL, 7)
    assert book.held == 0 and book.get(qid).remaining == 6  # type: ignore[union-attr]
    book.hold(CHANNEL, 8, [take(2, 2)])
    book.hold(CHANNEL, 9, [take(3, 3)])
    book.signed(CHANNEL, 9)
    book.dropped(CHANNEL, 8)
    assert book.held == 0 and book.get(qid).remaining == 1  # type: ignore[union-attr]
    book.hold(b"\x01" * 32, 3, [take(1, 4)])  # another channel's versions are its own
    book.signed(CHANNEL, 100)
    assert book.held == 1


def test_expiry_marks_quotes_and_drops_stale_requests() -> None:
    quote = make_quote()
    book = booked(quote, QuoteLimits(request_ttl=600))
    request = QuoteRequest(CHANNEL, 1, symbol("ETH"), OptionKind.CALL, 1, NOW + 99, 1, Side.BUY)
    book.admit_request(request, BOB.address, NOW)
    assert [b.quote.quote_id for b in book.expire(quote.valid_until)] == [quote.quote_id]
    assert book.expire(quote.valid_until + 1) == []
    assert book.incoming_requests() == [request]
    book.expire(NOW + 600)
    assert book.incoming_requests() == []


def test_a_flood_of_requests_is_refused_not_stored() -> None:
    book = QuoteBook(QuoteLimits(max_requests_per_peer=3))
    for i in range(1, 4):
        book.admit_request(
            QuoteRequest(CHANNEL, i, symbol("ETH"), 0, 1, NOW, 1, Side.SELL),  # type: ignore[arg-type]
            BOB.address,
            NOW,
        )
    for i in range(4, 100):
        with pytest.raises(TooManyQuoteRequests):
            book.admit_request(
                QuoteRequest(CHANNEL, i, symbol("ETH"), 0, 1, NOW, 1, Side.SELL),  # type: ignore[arg-type]
                BOB.address,
                NOW,
            )
    assert len(book.incoming_requests()) == 3
    assert book.close_request(CHANNEL, 2) is not None
    book.admit_request(
        QuoteRequest(CHANNEL, 50, symbol("ETH"), 0, 1, NOW, 1, Side.SELL),  # type: ignore[arg-type]
        BOB.address,
        NOW,
    )


def test_received_quotes_are_bounded_and_must_come_from_their_quoter() -> None:
    book = QuoteBook(QuoteLimits(max_received_per_peer=2))
    for i in range(1, 3):
        q = make_quote(quote_id=quote_id_for(CHANNEL, ALICE.address, i))
        book.receive(sign_quote(ALICE, DOMAIN, q), ALICE.address, 0, NOW)
    with pytest.raises(TooManyQuoteRequests):
        q = make_quote(quote_id=quote_id_for(CHANNEL, ALICE.address, 3))
        book.receive(sign_quote(ALICE, DOMAIN, q), ALICE.address, 0, NOW)
    with pytest.raises(BadQuote):
        q = make_quote(quote_id=quote_id_for(CHANNEL, ALICE.address, 4))
        QuoteBook().receive(sign_quote(ALICE, DOMAIN, q), MALLORY.address, 0, NOW)
    with pytest.raises(QuoteExpired):
        QuoteBook().receive(sign_quote(ALICE, DOMAIN, make_quote()), ALICE.address, 0, NOW + 60)


# Wire -------------------------------------------------------------------------------------------

requests = st.builds(
    QuoteRequest,
    channel_id=bytes32,
    request_id=nonzero(64),
    underlying=bytes32,
    kind=st.sampled_from([OptionKind.CALL, OptionKind.PUT]),
    strike=nonzero(256),
    expiry=uint(64),
    quantity=nonzero(256),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
declines = st.builds(
    QuoteDecline, channel_id=bytes32, request_id=uint(64), reason=st.text(max_size=256)
)
signed_quotes = st.builds(SignedQuote, quote=quotes, signature=st.binary(min_size=65, max_size=65))


@FAST
@given(message=st.one_of(requests, declines, signed_quotes))
def test_quote_messages_round_trip(message) -> None:  # type: ignore[no-untyped-def]
    data = quote_wire.encode_peer_message(message)
    assert len(data) <= quote_wire.MAX_QUOTE_MESSAGE
    assert quote_wire.decode_peer_message(data) == message


@FAST
@given(quote=quotes)
def test_the_audit_record_round_trips(quote) -> None:  # type: ignore[no-untyped-def]
    signed = sign_quote(ALICE, DOMAIN, quote)
    assert quote_wire.decode_quote_record(quote_wire.encode_quote_record(signed)) == signed


def test_malformed_quote_messages_are_refused() -> None:
    import msgpack

    good = quote_wire.encode_peer_message(sign_quote(ALICE, DOMAIN, make_quote()))
    envelope = msgpack.unpackb(good, raw=False)
    fields = envelope[2]
    for broken in (
        {**fields, "extra": 1},
        {k: v for k, v in fields.items() if k != "signature"},
        {**fields, "quote": {**fields["quote"], "quoter_writes": 1}},
        {**fields, "quote": {**fields["quote"], "kind": 2}},
        {**fields, "quote": {**fields["quote"], "price": b"\x01"}},
        {**fields, "quote": {**fields["quote"], "quote_id": bytes(32)}},
        {**fields, "signature": b"\x00" * 64},
    ):
        with pytest.raises(SchemaError):
            quote_wire.decode_peer_message(msgpack.packb([1, 17, broken], use_bin_type=True))
    with pytest.raises(UnknownType):
        quote_wire.decode_peer_message(msgpack.packb([1, 99, {}], use_bin_type=True))
    request = msgpack.unpackb(
        quote_wire.encode_peer_message(
            QuoteRequest(CHANNEL, 1, symbol("ETH"), OptionKind.PUT, 1, 1, 1, Side.SELL)
        ),
        raw=False,
    )[2]
    for broken in (
        {**request, "side": 2},
        {**request, "request_id": 0},
        {**request, "strike": bytes(32)},
    ):
        with pytest.raises(SchemaError):
            quote_wire.decode_peer_message(msgpack.packb([1, 16, broken], use_bin_type=True))
    with pytest.raises(WireError):  # a long reason never decodes
        quote_wire.decode_peer_message(
            msgpack.packb([1, 18, {"channel_id": CHANNEL, "request_id": 1, "reason": "x" * 257}])
        )
    with pytest.raises(WireError):  # nor does an oversized message
        quote_wire.decode_quote_message(b"\x00" * (quote_wire.MAX_QUOTE_MESSAGE + 1))


def test_a_fill_carries_its_quote_id_on_the_wire() -> None:
    from channels.core.wire import decode_trades, encode_trades

    quote = make_quote()
    fill = fill_trade(quote, 3, 9, quoter_index=1)
    plain = dataclasses.replace(fill, quote_id=None)
    assert decode_trades(encode_trades((fill, plain))) == (fill, plain)


def test_side_parsing() -> None:
    assert (
        Side.parse("buy") is Side.BUY
        and Side.parse("SELL") is Side.SELL
        and Side.parse(1) is Side.SELL
    )
    with pytest.raises(Exception, match="buy"):
        Side.parse("hold")
    assert LocalSigner  # the signer type used across these tests


def test_quote_messages_of_a_peer_are_rate_limited_by_chain_time() -> None:
    book = QuoteBook(QuoteLimits(max_messages_per_minute=5, max_requests_per_peer=100))

    def request(i: int) -> QuoteRequest:
        return QuoteRequest(CHANNEL, i, symbol("ETH"), OptionKind.CALL, 1, NOW, 1, Side.BUY)

    for i in range(1, 6):
        book.admit_request(request(i), BOB.address, NOW)
    with pytest.raises(TooManyQuoteRequests, match="in a minute"):
        book.admit_request(request(6), BOB.address, NOW + 59)
    with pytest.raises(TooManyQuoteRequests):
        q = make_quote(quote_id=quote_id_for(CHANNEL, BOB.address, 1), quoter=BOB.address)
        book.receive(sign_quote(BOB, DOMAIN, q), BOB.address, 1, NOW)
    assert len(book.incoming_requests()) == 5 and len(book) == 0
    book.admit_request(request(7), BOB.address, NOW + 60)  # a new minute
