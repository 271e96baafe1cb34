"""A hostile peer's quote messages against a real node over TCP: forged, misattributed, unasked,
misdirected, malformed and duplicate quotes are refused and never stored; a flood of requests
leaves a bounded number waiting and is answered with declines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack
import trio

from channels.core import eip712
from channels.core.model import QUANTITY_SCALE, Address, OptionKind, symbol
from channels.core.quote_book import QuoteLimits
from channels.core.quote_wire import decode_peer_message, encode_peer_message
from channels.core.quotes import (
    Quote,
    QuoteDecline,
    QuoteRequest,
    Side,
    SignedQuote,
    quote_digest,
    quote_id_for,
    sign_quote,
)
from channels.transport import Prologue, connect

from ._helpers import WEEK, open_channel, wait_until
from ._quoting import quoting_desk
from .conftest import Desks


async def test_hostile_quote_messages_are_refused_and_not_stored(
    desks: Desks, tmp_path: Path
) -> None:
    limits = QuoteLimits(max_requests_per_peer=4)
    with trio.fail_after(90):
        async with quoting_desk(
            desks, desks.bob, tmp_path / "b.sqlite", listen=True, limits=limits
        ) as bob:
            async with quoting_desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False
            ) as alice:
                ch, _ = await open_channel(alice, bob, desks)
            cid = ch.id
            # Alice's node is down; the attacker holds her key (an authenticated peer).
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect(
                "127.0.0.1", bob.listen_port or 0, desks.alice, desks.bob.address, prologue
            )
            domain = eip712.Domain(bob.chain_id, Address(bob.chain.address))
            expiry = bob.now() + WEEK
            good = Quote(
                quote_id=quote_id_for(cid, desks.alice.address, 1),
                channel_id=cid,
                quoter=desks.alice.address,
                request_id=0,
                underlying=symbol("ETH"),
                kind=OptionKind.CALL,
                strike=2_000 * 10**8,
                expiry=expiry,
                quoter_writes=True,
                price=1_000,
                collateral=100_000,
                max_quantity=QUANTITY_SCALE,
                valid_until=bob.now() + 600,
            )

            async def refused(payload: bytes) -> None:
                bad = bob.bad_messages
                await link.send(payload)
                await wait_until(lambda: bob.bad_messages == bad + 1)
                assert len(bob.quotes.book) == 0
                assert await bob.quotes.audit(cid) == []

            # Forged: signed by another key in Alice's name.
            forged = SignedQuote(good, desks.oracle.sign_digest(quote_digest(domain, good)))
            await refused(encode_peer_message(forged))
            # Misattributed: a quote "by Bob" sent by Alice.
            bobs = dataclasses.replace(good, quoter=desks.bob.address)
            await refused(encode_peer_message(sign_quote(desks.bob, domain, bobs)))
            # Unasked: an answer to a request Bob never made.
            unasked = dataclasses.replace(good, request_id=77)
            await refused(encode_peer_message(sign_quote(desks.alice, domain, unasked)))
            # Misdirected: for a channel Bob does not have.
            other = dataclasses.replace(good, channel_id=bytes(31) + b"\x01")
            await refused(encode_peer_message(sign_quote(desks.alice, domain, other)))
            # Already expired by chain time.
            stale = dataclasses.replace(good, valid_until=bob.now() - 1)
            await refused(encode_peer_message(sign_quote(desks.alice, domain, stale)))
            # Malformed: an unknown key, a quote message far above its size limit.
            fields = msgpack.unpackb(encode_peer_message(sign_quote(desks.alice, domain, good)))[2]
            await refused(msgpack.packb([1, 17, {**fields, "memo": "x"}]))
            await refused(msgpack.packb([1, 17, {**fields, "memo": "x" * 10_000}]))

            # A real unsolicited offer is taken, once.
            signed = sign_quote(desks.alice, domain, good)
            await link.send(encode_peer_message(signed))
            await wait_until(lambda: len(bob.quotes.book) == 1)
            await refused_duplicate(bob, link, encode_peer_message(signed))
            trail = await bob.quotes.audit(cid)
            assert [r.kind for r in trail] == ["received"] and trail[0].signed == signed

            # A flood of requests: 4 wait for Bob's operator, the rest are declined at once.
            for i in range(1, 31):
                request = QuoteRequest(
                    cid, i, symbol("ETH"), OptionKind.PUT, 10**8, expiry, 1, Side.BUY
                )
                await link.send(encode_peer_message(request))
            declines: list[QuoteDecline] = []
            with trio.fail_after(10):
                while len(declines) < 26:
                    message = decode_peer_message(await link.receive())
                    if isinstance(message, QuoteDecline):
                        declines.append(message)
            assert all("limit 4" in d.reason for d in declines)
            assert len(bob.quotes.pending_requests()) == 4
            await link.aclose()


async def refused_duplicate(bob, link, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    bad = bob.bad_messages
    await link.send(payload)
    await wait_until(lambda: bob.bad_messages == bad + 1)
    assert len(bob.quotes.book) == 1
