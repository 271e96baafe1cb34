"""The quote book of one desk: the quotes it issued, the quotes it received, the requests
outstanding either way, and the fill rule (pure: time comes in as chain time, nothing is read).

The fill rule (docs/PROTOCOL.md, "Firm quotes"): we countersign a trade that names a quote of
ours only if

* we issued that quote on this channel, to this peer, and it is live: not replaced by a newer
  quote of ours, not withdrawn (:class:`QuoteReplaced`, :class:`QuoteWithdrawn`,
  :class:`QuoteUnknown`);
* chain time is before its ``valid_until`` (:class:`QuoteExpired`);
* the trade is exactly its option, side and collateral (:class:`QuoteTermsChanged`) at exactly
  its price (:class:`QuotePriceChanged`);
* its quantity is at most what is left, counting fills already accepted or in flight
  (:class:`QuoteOverfilled`). The quantity is taken when we sign, so two fills that cross
  can never together exceed the size.

A fill that is taken and then not signed gives its quantity back: the update it is in was refused
(another of its trades needs a consent nobody gave), our proposal of it was refused by the peer or
abandoned (:meth:`QuoteBook.hold`, :meth:`QuoteBook.dropped`). Otherwise a peer could empty our
quote with fills that are refused, without ever trading.

Every collection is bounded (per peer and per channel) so a peer cannot make it grow without
limit: the excess is refused with :class:`TooManyQuoteRequests`, never stored.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from channels.core.model import Address, ChannelId, Timestamp
from channels.core.options import OpenOption, Trade
from channels.core.quotes import (
    BadQuote,
    Quote,
    QuoteExpired,
    QuoteOverfilled,
    QuoteReplaced,
    QuoteRequest,
    QuoteUnknown,
    QuoteWithdrawn,
    SignedQuote,
    TooManyQuoteRequests,
    check_fill_terms,
)


@dataclass(frozen=True, slots=True)
class QuoteLimits:
    """Bounds on what the book keeps per peer (the excess is refused, not stored)."""

    #: Requests from one peer waiting for our answer.
    max_requests_per_peer: int = 16
    #: Our requests to one peer waiting for its answer.
    max_our_requests_per_peer: int = 64
    #: Live quotes received from one peer (unsolicited offers included).
    max_received_per_peer: int = 256
    #: Live quotes we issued to one peer.
    max_issued_per_peer: int = 1024
    #: How long a request from the peer may wait for our pricer (seconds of chain time).
    request_ttl: int = 60
    #: Requests plus quotes one peer may send us per minute of chain time: each costs a
    #: signature check and a row in the audit trail, so short-lived quotes cannot flood the disk.
    max_messages_per_minute: int = 600


class QuoteStatus(enum.Enum):
    LIVE = "live"
    FILLED = "filled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    WITHDRAWN = "withdrawn"


@dataclass(slots=True)
class BookedQuote:
    """A quote in the book, with what is left of it."""

    signed: SignedQuote
    peer: Address
    ours: bool
    quoter_index: int
    filled: int = 0
    status: QuoteStatus = QuoteStatus.LIVE

    @property
    def quote(self) -> Quote:
        return self.signed.quote

    @property
    def remaining(self) -> int:
        return self.quote.max_quantity - self.filled


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill the book accepted (the quantity is already taken off the quote)."""

    quote_id: bytes
    channel_id: ChannelId
    quantity: int
    premium: int
    remaining: int


@dataclass(slots=True)
class _PeerCounts:
    requests: int = 0
    our_requests: int = 0
    received: int = 0
    issued: int = 0
    window_start: int = 0
    window_count: int = 0


@dataclass(slots=True)
class QuoteBook:
    """All quotes and requests of one node (keyed by quote id; requests by channel and id)."""

    limits: QuoteLimits = field(default_factory=QuoteLimits)
    _quotes: dict[bytes, BookedQuote] = field(default_factory=dict)
    #: Requests from peers, waiting for our answer: (channel, request id) -> (request, deadline).
    _incoming: dict[tuple[bytes, int], tuple[QuoteRequest, Address, int]] = field(
        default_factory=dict
    )
    #: Our requests to peers, waiting for their answer.
    _outgoing: dict[tuple[bytes, int], tuple[QuoteRequest, Address]] = field(default_factory=dict)
    _counts: dict[Address, _PeerCounts] = field(default_factory=dict)
    #: Fills taken for an update we proposed, until it is signed or dropped: (channel, version).
    _held: dict[tuple[bytes, int], list[Fill]] = field(default_factory=dict)

    def _count(self, peer: Address) -> _PeerCounts:
        counts = self._counts.get(peer)
        if counts is None:
            counts = self._counts[peer] = _PeerCounts()
        return counts

    # reading ------------------------------------------------------------------------------------
    def get(self, quote_id: bytes) -> BookedQuote | None:
        return self._quotes.get(quote_id)

    def __iter__(self) -> Iterator[BookedQuote]:
        return iter(list(self._quotes.values()))

    def __len__(self) -> int:
        return len(self._quotes)

    def incoming_requests(self) -> list[QuoteRequest]:
        return [request for request, _, _ in self._incoming.values()]

    def _rate(self, counts: _PeerCounts, now: Timestamp) -> None:
        if now - counts.window_start >= 60:
            counts.window_start, counts.window_count = now, 0
        if counts.window_count >= self.limits.max_messages_per_minute:
            raise TooManyQuoteRequests(
                f"more than {self.limits.max_messages_per_minute} quote messages from this peer "
                "in a minute"
            )
        counts.window_count += 1

    # requests -------------------------------------------------------------------------------------
    def admit_request(self, request: QuoteRequest, peer: Address, now: Timestamp) -> None:
        """Take a peer's request for an answer; refuse it beyond the per-peer limits."""
        key = (request.channel_id, request.request_id)
        if key in self._incoming:
            raise BadQuote(f"request {request.request_id} is already waiting for our answer")
        counts = self._count(peer)
        self._rate(counts, now)
        if counts.requests >= self.limits.max_requests_per_peer:
            raise TooManyQuoteRequests(
                f"{counts.requests} quote requests from this peer are already waiting "
                f"(limit {self.limits.max_requests_per_peer})"
            )
        self._incoming[key] = (request, peer, now + self.limits.request_ttl)
        counts.requests += 1

    def close_request(self, channel_id: bytes, request_id: int) -> QuoteRequest | None:
        """The request is answered (quoted or declined) or dropped: forget it."""
        found = self._incoming.pop((channel_id, request_id), None)
        if found is None:
            return None
        self._count(found[1]).requests -= 1
        return found[0]

    def add_our_request(self, request: QuoteRequest, peer: Address) -> None:
        key = (request.channel_id, request.request_id)
        if key in self._outgoing:
            raise BadQuote(f"request {request.request_id} is already waiting")
        counts = self._count(peer)
        if counts.our_requests >= self.limits.max_our_requests_per_peer:
            raise TooManyQuoteRequests(
                f"{counts.our_requests} of our quote requests to this peer are unanswered"
            )
        self._outgoing[key] = (request, peer)
        counts.our_requests += 1

    def close_our_request(self, channel_id: bytes, request_id: int) -> QuoteRequest | None:
        found = self._outgoing.pop((channel_id, request_id), None)
        if found is None:
            return None
        self._count(found[1]).our_requests -= 1
        return found[0]

    # quotes -------------------------------------------------------------------------------------
    def _add(self, booked: BookedQuote) -> list[bytes]:
        q = booked.quote
        if q.quote_id in self._quotes:
            raise BadQuote("a quote with this id is already in the book")
        replaced: list[bytes] = []
        if any(q.replaces):
            old = self._quotes.get(q.replaces)
            if old is None or old.ours != booked.ours or old.quote.channel_id != q.channel_id:
                raise BadQuote("the quote replaces a quote that is not the same quoter's")
            if old.status is QuoteStatus.LIVE:
                self._retire(old, QuoteStatus.REPLACED)
                replaced.append(old.quote.quote_id)
        self._quotes[q.quote_id] = booked
        counts = self._count(booked.peer)
        if booked.ours:
            counts.issued += 1
        else:
            counts.received += 1
        return replaced

    def _retire(self, booked: BookedQuote, status: QuoteStatus) -> None:
        if booked.status is not QuoteStatus.LIVE:
            return
        booked.status = status
        counts = self._count(booked.peer)
        if booked.ours:
            counts.issued -= 1
        else:
            counts.received -= 1

    def issue(
        self, signed: SignedQuote, peer: Address, quoter_index: int, now: Timestamp
    ) -> list[bytes]:
        """Book a quote we signed; returns the ids of quotes of ours it replaced."""
        q = signed.quote
        if q.valid_until <= now:
            raise QuoteExpired(f"valid_until {q.valid_until} is not after now ({now})")
        counts = self._count(peer)
        if counts.issued >= self.limits.max_issued_per_peer:
            raise TooManyQuoteRequests(f"{counts.issued} live quotes to this peer already")
        return self._add(BookedQuote(signed, peer, True, quoter_index))

    def receive(
        self, signed: SignedQuote, peer: Address, quoter_index: int, now: Timestamp
    ) -> list[bytes]:
        """Book a verified quote from the peer; refused once the peer has too many live ones."""
        q = signed.quote
        if q.quoter != peer:
            raise BadQuote("the quote's quoter is not the peer that sent it")
        if q.valid_until <= now:
            raise QuoteExpired(f"the quote expired at {q.valid_until}, now is {now}")
        counts = self._count(peer)
        self._rate(counts, now)
        if counts.received >= self.limits.max_received_per_peer:
            raise TooManyQuoteRequests(
                f"{counts.received} live quotes from this peer already "
                f"(limit {self.limits.max_received_per_peer})"
            )
        return self._add(BookedQuote(signed, peer, False, quoter_index))

    def restore(self, booked: BookedQuote) -> None:
        """Put back a quote read from the audit trail after a restart (its fills counted from
        the signed history); quotes already in the book are left as they are."""
        if booked.quote.quote_id in self._quotes:
            return
        self._quotes[booked.quote.quote_id] = booked
        if booked.status is QuoteStatus.LIVE:
            counts = self._count(booked.peer)
            if booked.ours:
                counts.issued += 1
            else:
                counts.received += 1

    def withdraw(self, quote_id: bytes) -> bool:
        """Withdraw a live quote of ours: no fill of it is countersigned from now on."""
        booked = self._quotes.get(quote_id)
        if booked is None or not booked.ours or booked.status is not QuoteStatus.LIVE:
            return False
        self._retire(booked, QuoteStatus.WITHDRAWN)
        return True

    def expire(self, now: Timestamp) -> list[BookedQuote]:
        """Mark every live quote whose validity has passed; returns them (for the events).

        Requests of the peer older than the request TTL are dropped as well.
        """
        expired = []
        for booked in self._quotes.values():
            if booked.status is QuoteStatus.LIVE and booked.quote.valid_until <= now:
                self._retire(booked, QuoteStatus.EXPIRED)
                expired.append(booked)
        for key, (_, _, deadline) in list(self._incoming.items()):
            if deadline <= now:
                self.close_request(*key)
        return expired

    def forget_retired(self, keep: int) -> None:
        """Drop the oldest quotes that are no longer live, keeping at most ``keep`` of them
        (the audit trail in the store keeps every quote; this bounds memory)."""
        retired = [qid for qid, b in self._quotes.items() if b.status is not QuoteStatus.LIVE]
        for qid in retired[: max(0, len(retired) - keep)]:
            del self._quotes[qid]

    # the fill rule --------------------------------------------------------------------------------
    def check_fill(
        self, channel_id: bytes, peer: Address, trade: Trade, now: Timestamp
    ) -> Fill | None:
        """Take ``trade`` as a fill of one of our quotes, or refuse it naming the rule.

        Returns None when the trade names no quote of ours (not a fill we decide as quoter);
        otherwise the quantity is taken off the quote before returning.
        """
        if not isinstance(trade, OpenOption) or trade.quote_id is None:
            return None
        booked = self._quotes.get(trade.quote_id)
        if booked is None or not booked.ours:
            return None
        q = booked.quote
        if q.channel_id != channel_id or booked.peer != peer:
            raise QuoteUnknown("the quote was issued on another channel or to another peer")
        if booked.status is QuoteStatus.REPLACED:
            raise QuoteReplaced("the quote was replaced by a newer quote before this fill")
        if booked.status is QuoteStatus.WITHDRAWN:
            raise QuoteWithdrawn("the quote was withdrawn before this fill")
        if now >= q.valid_until:
            self._retire(booked, QuoteStatus.EXPIRED)
            raise QuoteExpired(f"the quote was valid until {q.valid_until}, chain time is {now}")
        if booked.status is not QuoteStatus.LIVE or booked.remaining == 0:
            raise QuoteOverfilled("nothing is left of the quote")
        check_fill_terms(q, trade, booked.quoter_index)
        quantity = trade.position.quantity
        if quantity > booked.remaining:
            raise QuoteOverfilled(
                f"the fill is for {quantity}, {booked.remaining} of {q.max_quantity} is left"
            )
        booked.filled += quantity
        if booked.remaining == 0:
            self._retire(booked, QuoteStatus.FILLED)
        return Fill(q.quote_id, q.channel_id, quantity, trade.premium, booked.remaining)

    def check_fills(
        self,
        channel_id: bytes,
        peer: Address,
        trades: tuple[Trade, ...] | list[Trade],
        now: Timestamp,
    ) -> list[Fill]:
        """:meth:`check_fill` for every trade of one update, all or nothing."""
        fills: list[Fill] = []
        try:
            for trade in trades:
                fill = self.check_fill(channel_id, peer, trade, now)
                if fill is not None:
                    fills.append(fill)
        except Exception:
            for fill in fills:
                self.release(fill)
            raise
        return fills

    def release(self, fill: Fill) -> None:
        """Give back a fill's quantity (its update was not signed after all)."""
        booked = self._quotes.get(fill.quote_id)
        if booked is None:
            return
        booked.filled -= fill.quantity
        if booked.status is QuoteStatus.FILLED:
            booked.status = QuoteStatus.LIVE
            counts = self._count(booked.peer)
            counts.issued += 1

    # fills in flight -------------------------------------------------------------------------
    def hold(self, channel_id: bytes, version: int, fills: list[Fill]) -> None:
        """Fills taken for ``version`` of a channel, which we proposed: they stay taken until that
        version is signed (:meth:`signed`) or dropped (:meth:`dropped`)."""
        if fills:
            self._held.setdefault((channel_id, version), []).extend(fills)

    def signed(self, channel_id: bytes, version: int) -> None:
        """``version`` of the channel is fully signed: the fills held for it, and for every
        version before it (the signed state is built on them), are final."""
        for key in [k for k in self._held if k[0] == channel_id and k[1] <= version]:
            del self._held[key]

    def dropped(self, channel_id: bytes, version: int) -> None:
        """Our proposal of ``version`` will never be signed: its fills are given back."""
        for fill in self._held.pop((channel_id, version), []):
            self.release(fill)

    @property
    def holding(self) -> bool:
        """Whether any fill is in flight (cheaper than :attr:`held` on every machine step)."""
        return bool(self._held)

    @property
    def held(self) -> int:
        """Fills in flight (taken for proposals not yet countersigned)."""
        return sum(len(fills) for fills in self._held.values())

    def record_fill_seen(self, quote_id: bytes, quantity: int) -> BookedQuote | None:
        """A fill of a quote we received (we were the filler) became a signed state."""
        booked = self._quotes.get(quote_id)
        if booked is None or booked.ours:
            return booked
        booked.filled = min(booked.quote.max_quantity, booked.filled + quantity)
        if booked.remaining == 0:
            self._retire(booked, QuoteStatus.FILLED)
        return booked
