"""Control-socket commands of firm quotes: request_quote, offer (optionally replacing a live quote
of ours), quotes, answer, fill, withdraw_quote.

Every field is checked like the other commands' (:class:`Fields`); a quote is shown as JSON with
its id, terms, status and what is left, plus its signature so it can be checked independently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from channels.control.errors import BadRequest
from channels.control.fields import Fields, Handler
from channels.control.views import trade_json
from channels.core.model import symbol_text, to_checksum
from channels.core.quote_book import BookedQuote, QuoteStatus
from channels.core.quotes import QuoteRequest, SignedQuote
from channels.runtime.quoting import Decline, QuoteTerms

if TYPE_CHECKING:
    from channels.runtime.channel import Channel
    from channels.runtime.node import Node


class _Server(Protocol):
    """What the handlers need of the control server."""

    node: Node

    def resolve(self, text: str) -> Channel: ...


_TERMS = ("channel", "kind", "underlying", "strike", "expiry", "expiry_in", "side")


def quote_json(signed: SignedQuote, booked: BookedQuote | None = None) -> dict[str, Any]:
    q = signed.quote
    row: dict[str, Any] = {
        "quote_id": "0x" + q.quote_id.hex(),
        "channel": "0x" + q.channel_id.hex(),
        "quoter": to_checksum(q.quoter),
        "request_id": q.request_id,
        "underlying": symbol_text(q.underlying),
        "kind": q.kind.name.lower(),
        "strike": q.strike,
        "expiry": q.expiry,
        "quoter_side": "sell" if q.quoter_writes else "buy",
        "price": q.price,
        "collateral": q.collateral,
        "max_quantity": q.max_quantity,
        "valid_until": q.valid_until,
        "replaces": "0x" + q.replaces.hex() if any(q.replaces) else None,
        "signature": "0x" + signed.signature.hex(),
    }
    if booked is not None:
        row.update(ours=booked.ours, status=booked.status.value, remaining=booked.remaining)
    return row


def request_json(r: QuoteRequest) -> dict[str, Any]:
    return {
        "channel": "0x" + r.channel_id.hex(),
        "request_id": r.request_id,
        "underlying": symbol_text(r.underlying),
        "kind": r.kind.name.lower(),
        "strike": r.strike,
        "expiry": r.expiry,
        "quantity": r.quantity,
        "side": r.side.name.lower(),
    }


class QuoteCommands:
    """The handlers; :meth:`table` lists them for the server."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.node = server.node

    def table(self) -> list[tuple[str, tuple[str, ...], Handler]]:
        return [
            ("request_quote", (*_TERMS, "quantity", "timeout"), self._request),
            (
                "offer",
                (*_TERMS, "price", "collateral", "max_quantity", "valid_for", "replaces"),
                self._offer,
            ),
            ("quotes", ("channel",), self._quotes),
            (
                "answer",
                (
                    "channel",
                    "request_id",
                    "price",
                    "collateral",
                    "max_quantity",
                    "valid_for",
                    "decline",
                ),
                self._answer,
            ),
            ("fill", ("channel", "quote", "quantity"), self._fill),
            ("withdraw_quote", ("quote",), self._withdraw),
        ]

    def _terms(self, f: Fields) -> dict[str, Any]:
        kind = f.get_str("kind").lower()
        if kind not in ("call", "put"):
            raise BadRequest(f"{f.cmd}: kind must be 'call' or 'put', not {kind!r}")
        side = f.get_str("side").lower()
        if side not in ("buy", "sell"):
            raise BadRequest(f"{f.cmd}: side must be 'buy' or 'sell', not {side!r}")
        if f.has("expiry") == f.has("expiry_in"):
            raise BadRequest(f"{f.cmd}: give exactly one of expiry and expiry_in")
        expiry = (
            f.get_int("expiry") if f.has("expiry") else self.node.now() + f.get_int("expiry_in")
        )
        return {
            "underlying": f.get_str("underlying"),
            "kind": kind,
            "strike": f.get_int("strike"),
            "expiry": expiry,
            "side": side,
        }

    async def _request(self, f: Fields) -> Any:
        terms = self._terms(f)
        quantity = f.get_int("quantity")
        timeout = f.get_int("timeout", 10)
        if not 1 <= timeout <= 600:
            raise BadRequest(f"{f.cmd}: timeout must be 1 to 600 seconds")
        channel = self.server.resolve(f.get_str("channel"))
        signed = await self.node.quotes.request_quote(
            channel.id, quantity=quantity, timeout=timeout, **terms
        )
        return quote_json(signed, self.node.quotes.book.get(signed.quote.quote_id))

    async def _offer(self, f: Fields) -> Any:
        terms = self._terms(f)
        valid_for = f.get_int("valid_for", 30)
        if not 1 <= valid_for <= 86400:
            raise BadRequest(f"{f.cmd}: valid_for must be 1 to 86400 seconds")
        channel = self.server.resolve(f.get_str("channel"))
        replaces = None
        if f.has("replaces"):
            # The new quote names the old one: booking it retires the old one at once (a fill
            # of it is refused from then on, by us and by the peer's book).
            old = self._our_live(f, self._find(f.get_str("replaces")))
            if old.quote.channel_id != channel.id:
                raise BadRequest(f"{f.cmd}: the quote to replace was given on another channel")
            replaces = old.quote.quote_id
        signed = await self.node.quotes.offer(
            channel.id,
            price=f.get_int("price"),
            collateral=f.get_int("collateral"),
            max_quantity=f.get_int("max_quantity"),
            valid_for=valid_for,
            replaces=replaces,
            **terms,
        )
        return quote_json(signed, self.node.quotes.book.get(signed.quote.quote_id))

    @staticmethod
    def _our_live(f: Fields, booked: BookedQuote) -> BookedQuote:
        quote_id = "0x" + booked.quote.quote_id.hex()[:16]
        if not booked.ours:
            raise BadRequest(f"{f.cmd}: quote {quote_id} is the peer's, not ours")
        if booked.status is not QuoteStatus.LIVE:
            raise BadRequest(f"{f.cmd}: quote {quote_id} is {booked.status.value}, not live")
        return booked

    async def _withdraw(self, f: Fields) -> Any:
        booked = self._our_live(f, self._find(f.get_str("quote")))
        if not await self.node.quotes.withdraw(booked.quote.quote_id):
            raise BadRequest(f"{f.cmd}: the quote is no longer live")
        return quote_json(booked.signed, booked)

    async def _quotes(self, f: Fields) -> Any:
        channel_id = self.server.resolve(f.get_str("channel")).id if f.has("channel") else None
        desk = self.node.quotes
        return {
            "now": self.node.now(),
            "quotes": [quote_json(b.signed, b) for b in desk.quotes(channel_id)],
            "requests": [
                request_json(r)
                for r in desk.pending_requests()
                if channel_id is None or r.channel_id == channel_id
            ],
        }

    async def _answer(self, f: Fields) -> Any:
        channel = self.server.resolve(f.get_str("channel"))
        request_id = f.get_int("request_id")
        answer: QuoteTerms | Decline
        if f.has("decline"):
            if f.has("price") or f.has("collateral"):
                raise BadRequest(f"{f.cmd}: give a price and collateral, or decline, not both")
            answer = Decline(f.get_str("decline"))
        else:
            valid_for = f.get_int("valid_for", 30)
            if not 1 <= valid_for <= 86400:
                raise BadRequest(f"{f.cmd}: valid_for must be 1 to 86400 seconds")
            answer = QuoteTerms(
                price=f.get_int("price"),
                collateral=f.get_int("collateral"),
                max_quantity=f.get_int("max_quantity") if f.has("max_quantity") else None,
                valid_for=valid_for,
            )
        signed = await self.node.quotes.answer(channel.id, request_id, answer)
        if signed is None:
            return {"declined": True, "request_id": request_id}
        return quote_json(signed, self.node.quotes.book.get(signed.quote.quote_id))

    def _find(self, text: str) -> BookedQuote:
        want = (text[2:] if text[:2] in ("0x", "0X") else text).lower()
        if not want or any(c not in "0123456789abcdef" for c in want):
            raise BadRequest(f"quote must be a hex id or id prefix, not {text!r}")
        found = [b for b in self.node.quotes.quotes() if b.quote.quote_id.hex().startswith(want)]
        if len(found) != 1:
            raise BadRequest(f"quote 0x{want} matches {len(found)} quotes in the book")
        return found[0]

    async def _fill(self, f: Fields) -> Any:
        channel = self.server.resolve(f.get_str("channel"))
        booked = self._find(f.get_str("quote"))
        quantity = f.get_int("quantity") if f.has("quantity") else None
        position = await channel.fill_quote(booked.quote.quote_id, quantity)
        return {**trade_json(channel, position), "quote": quote_json(booked.signed, booked)}
