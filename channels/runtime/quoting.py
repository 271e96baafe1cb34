"""Firm quotes (RFQ) on a node: requests, answers, offers and fills over the peer link.

The pure parts live in the core (:mod:`channels.core.quotes`, :mod:`channels.core.quote_book`);
this is the glue a node owns as ``node.quotes``:

* ``request_quote``: send a :class:`QuoteRequest`, wait for the peer's signed quote (verified,
  stored in the audit trail) or its decline (:class:`QuoteDeclined`).
* the peer's requests go to our pricer (a bot callback, sync or async, or a quote table);
  it returns :class:`QuoteTerms` (we sign and send a firm quote) or :class:`Decline`. At most
  ``QuoteLimits.max_requests_per_peer`` requests of one peer wait for the pricer; more are
  declined at once with ``TooManyQuoteRequests`` and never stored.
* ``offer``: an unsolicited firm quote (stream quotes to the peer).
* ``fill``: one channel update whose OpenOption names the quote.
* the fill rule as the consent rule's :class:`~channels.core.consent.QuoteAuthority`: a trade the
  peer initiated that names a quote of ours is countersigned only if the book accepts it
  (``node.quotes.fills``, :mod:`channels.runtime.quote_fills`; a fill that is not signed after
  all gives its quantity back);
* ``restore``: the book again after a restart (:mod:`channels.runtime.quote_restore`).

Events: QuoteRequested, QuoteReceived, QuoteFilled, QuoteExpired, QuoteDeclined
(:mod:`channels.runtime.quote_events`).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from channels.core import eip712
from channels.core.errors import ChannelError, IllegalCall, UnknownChannel
from channels.core.model import (
    ZERO_HASH,
    Address,
    Amount,
    ChannelId,
    OptionKind,
    Position,
    Price,
    Quantity,
    State,
    Timestamp,
    symbol,
)
from channels.core.node_events import Event
from channels.core.options import Trade
from channels.core.protocol import ChannelMachine
from channels.core.quote_book import BookedQuote, QuoteBook, QuoteLimits, QuoteStatus
from channels.core.quotes import (
    Quote,
    QuoteDecline,
    QuoteDeclined,
    QuoteMessage,
    QuoteOverfilled,
    QuoteReplaced,
    QuoteRequest,
    QuoteUnknown,
    Side,
    SignedQuote,
    TooManyQuoteRequests,
    fill_trade,
    quote_id_for,
    sign_quote,
    verify_quote,
)
from channels.core.quotes import (
    QuoteExpired as QuoteExpiredError,
)
from channels.core.signing import Signer
from channels.runtime.quote_events import (
    QuoteDeclinedEvent,
    QuoteExpired,
    QuoteReceived,
    QuoteRequested,
)
from channels.runtime.quote_fills import FillRule
from channels.runtime.quote_restore import restore_book
from channels.signers.calling import call_signer
from channels.store import AsyncStore
from channels.store.quotes import QuoteEntry, QuoteRecord


class QuoteHost(Protocol):
    """The node as its quote desk sees it (:class:`channels.runtime.quote_host.NodeQuoteHost`)."""

    @property
    def address(self) -> Address: ...
    @property
    def signer(self) -> Signer: ...
    @property
    def chain_id(self) -> int: ...
    @property
    def adjudicator(self) -> Address: ...
    @property
    def store(self) -> AsyncStore: ...
    def now(self) -> int: ...
    def machine(self, channel_id: bytes) -> ChannelMachine | None: ...
    def channel(self, channel_id: bytes) -> QuotedChannel: ...
    def send(self, peer: Address, message: QuoteMessage) -> None: ...
    def emit(self, event: Event) -> None: ...
    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None: ...


class QuotedChannel(Protocol):
    """A channel handle as the quote desk uses it to fill a quote."""

    @property
    def our_index(self) -> int: ...
    def new_position_id(self) -> int: ...
    async def trade(self, *trades: Trade) -> State: ...


log = logging.getLogger("channels.runtime.quoting")

#: How often expired quotes are swept (seconds).
SWEEP_INTERVAL = 1.0
#: Retired quotes kept in memory (the audit trail keeps them all).
KEEP_RETIRED = 1024


@dataclass(frozen=True, slots=True)
class QuoteTerms:
    """A pricer's answer: firm terms for the request.

    ``price`` and ``collateral`` are asset units per whole option (10**18 of quantity);
    ``max_quantity`` defaults to the requested quantity; the quote is valid ``valid_for``
    seconds of chain time.
    """

    price: int
    collateral: int
    max_quantity: int | None = None
    valid_for: int = 30


@dataclass(frozen=True, slots=True)
class Decline:
    """A pricer's answer: no quote, with a reason the requester sees."""

    reason: str


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """What a pricer sees of a request for a quote."""

    channel_id: ChannelId
    peer: Address
    request: QuoteRequest
    asset_decimals: int
    now: int


Pricer = Callable[[IncomingRequest], "QuoteTerms | Decline | Awaitable[QuoteTerms | Decline]"]


@dataclass
class _Waiting:
    done: trio.Event = field(default_factory=trio.Event)
    quote: SignedQuote | None = None
    decline: str | None = None


def _kind(kind: str | OptionKind) -> OptionKind:
    if isinstance(kind, OptionKind):
        return kind
    try:
        return OptionKind[kind.upper()]
    except KeyError:
        raise IllegalCall(f"kind must be 'call' or 'put', not {kind!r}") from None


def _underlying(underlying: str | bytes) -> bytes:
    return symbol(underlying) if isinstance(underlying, str) else underlying


class QuoteDesk:
    """The firm-quote layer of one node (``node.quotes``)."""

    def __init__(
        self,
        node: QuoteHost,
        pricer: Pricer | None = None,
        limits: QuoteLimits | None = None,
        pricer_timeout: float = 10.0,
    ) -> None:
        self._node = node
        self.pricer = pricer
        self.pricer_timeout = pricer_timeout
        self.book = QuoteBook(limits or QuoteLimits())
        self._request_ids = itertools.count(secrets.randbits(32) + 1)
        self._waiting: dict[tuple[bytes, int], _Waiting] = {}
        self._audit_lock = trio.Lock()
        #: The fill rule (the consent rule's QuoteAuthority) and the fills in flight.
        self.fills = FillRule(
            self.book, emit=node.emit, start_soon=node.start_soon, record=self._record
        )

    # reading ----------------------------------------------------------------------------------
    def quotes(self, channel_id: bytes | None = None) -> list[BookedQuote]:
        """Quotes in the book (ours and the peer's), optionally of one channel."""
        return [b for b in self.book if channel_id is None or b.quote.channel_id == channel_id]

    def live(self, channel_id: bytes | None = None) -> list[BookedQuote]:
        now = self._node.now()
        return [
            b
            for b in self.quotes(channel_id)
            if b.status is QuoteStatus.LIVE and b.quote.valid_until > now
        ]

    def pending_requests(self) -> list[QuoteRequest]:
        """Requests of peers waiting for our answer (for an operator's ``answer``)."""
        return self.book.incoming_requests()

    async def audit(self, channel_id: bytes | None = None) -> list[QuoteRecord]:
        return await self._node.store.run(lambda s: s.quote_audit(channel_id))

    # helpers ----------------------------------------------------------------------------------
    def _machine(self, channel_id: bytes) -> ChannelMachine:
        try:
            machine = self._node.machine(channel_id)
        except KeyError:
            machine = None
        if machine is None:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}")
        return machine

    def _domain(self) -> eip712.Domain:
        return eip712.Domain(self._node.chain_id, self._node.adjudicator)

    async def _record(self, *entries: QuoteEntry) -> None:
        entry_list = list(entries)
        async with self._audit_lock:
            await self._node.store.run(lambda s: s.append_quote_entries(entry_list))

    def _send(self, peer: Address, message: QuoteMessage) -> None:
        self._node.send(peer, message)

    # requesting -------------------------------------------------------------------------------
    async def request_quote(
        self,
        channel_id: bytes,
        *,
        underlying: str | bytes,
        kind: str | OptionKind,
        strike: int,
        expiry: int,
        quantity: int,
        side: str | Side,
        timeout: float = 10.0,
    ) -> SignedQuote:
        """Ask the peer for a firm quote; returns it (verified, stored) or raises
        :class:`QuoteDeclined` with the peer's reason."""
        machine = self._machine(channel_id)
        request = QuoteRequest(
            channel_id=machine.channel_id,
            request_id=next(self._request_ids),
            underlying=_underlying(underlying),
            kind=_kind(kind),
            strike=Price(strike),
            expiry=Timestamp(expiry),
            quantity=Quantity(quantity),
            side=Side.parse(side),
        )
        peer = machine.peer_address
        self.book.add_our_request(request, peer)
        key = (request.channel_id, request.request_id)
        waiting = self._waiting[key] = _Waiting()
        try:
            self._send(peer, request)
            with trio.fail_after(timeout):
                await waiting.done.wait()
        finally:
            self._waiting.pop(key, None)
            self.book.close_our_request(*key)
        if waiting.quote is None:
            raise QuoteDeclined(waiting.decline or "declined")
        return waiting.quote

    # quoting ----------------------------------------------------------------------------------
    async def offer(
        self,
        channel_id: bytes,
        *,
        underlying: str | bytes,
        kind: str | OptionKind,
        strike: int,
        expiry: int,
        side: str | Side,
        price: int,
        collateral: int,
        max_quantity: int,
        valid_for: int = 30,
        replaces: bytes | None = None,
        request_id: int = 0,
    ) -> SignedQuote:
        """Sign and send a firm quote. ``side`` is the PEER's side (it buys: we write)."""
        machine = self._machine(channel_id)
        now = self._node.now()
        quote = Quote(
            quote_id=quote_id_for(machine.channel_id, self._node.address, secrets.randbits(64)),
            channel_id=machine.channel_id,
            quoter=self._node.address,
            request_id=request_id,
            underlying=_underlying(underlying),
            kind=_kind(kind),
            strike=Price(strike),
            expiry=Timestamp(expiry),
            quoter_writes=Side.parse(side) is Side.BUY,
            price=Amount(price),
            collateral=Amount(collateral),
            max_quantity=Quantity(max_quantity),
            valid_until=Timestamp(now + valid_for),
            replaces=replaces or ZERO_HASH,
        )
        signer, domain = self._node.signer, self._domain()
        signed = await call_signer(signer, lambda: sign_quote(signer, domain, quote))
        self.book.issue(signed, machine.peer_address, machine.index, Timestamp(now))
        await self._record(
            QuoteEntry(
                quote.channel_id, "issued", quote.quote_id, request_id or None, signed=signed
            )
        )
        self._send(machine.peer_address, signed)
        return signed

    async def answer(
        self, channel_id: bytes, request_id: int, answer: QuoteTerms | Decline
    ) -> SignedQuote | None:
        """Answer a peer's waiting request (what the pricer does; the CLI's ``answer``)."""
        request = self.book.close_request(channel_id, request_id)
        if request is None:
            raise IllegalCall(f"no request {request_id} from the peer is waiting on this channel")
        machine = self._machine(channel_id)
        if isinstance(answer, Decline):
            await self._decline(machine.peer_address, request, answer.reason)
            return None
        return await self.offer(
            channel_id,
            underlying=request.underlying,
            kind=request.kind,
            strike=request.strike,
            expiry=request.expiry,
            side=request.side,
            price=answer.price,
            collateral=answer.collateral,
            max_quantity=answer.max_quantity or request.quantity,
            valid_for=answer.valid_for,
            request_id=request.request_id,
        )

    async def withdraw(self, quote_id: bytes) -> bool:
        """Withdraw a live quote of ours: fills of it are refused from now on."""
        booked = self.book.get(quote_id)
        if not self.book.withdraw(quote_id):
            return False
        assert booked is not None
        await self._record(QuoteEntry(booked.quote.channel_id, "withdrawn", quote_id))
        return True

    async def _decline(self, peer: Address, request: QuoteRequest, reason: str) -> None:
        reason = reason[:256]
        await self._record(
            QuoteEntry(request.channel_id, "declined", request_id=request.request_id, detail=reason)
        )
        self._send(peer, QuoteDecline(request.channel_id, request.request_id, reason))
        self._node.emit(
            QuoteDeclinedEvent(request.channel_id, request.request_id, reason, ours=True)
        )

    # filling ----------------------------------------------------------------------------------
    async def fill(
        self, channel_id: bytes, quote_id: bytes, quantity: int | None = None
    ) -> Position:
        """Fill (all or part of) the peer's quote in ONE channel update; returns the position."""
        booked = self.book.get(quote_id)
        if booked is None or booked.ours:
            raise QuoteUnknown("no quote of the peer with this id is in our book")
        quote = booked.quote
        if quote.channel_id != channel_id:
            raise QuoteUnknown("the quote was given on another channel")
        # What the quoter would refuse anyway is refused here, before anything is signed.
        if booked.status is QuoteStatus.REPLACED:
            raise QuoteReplaced("the quoter replaced this quote with a newer one")
        now = self._node.now()
        if booked.status is QuoteStatus.EXPIRED or now >= quote.valid_until:
            raise QuoteExpiredError(f"the quote was valid until {quote.valid_until}, now is {now}")
        size = quantity if quantity is not None else booked.remaining
        if size > booked.remaining:
            raise QuoteOverfilled(f"{booked.remaining} of the quote is left, not {size}")
        handle = self._node.channel(channel_id)
        trade = fill_trade(quote, size, handle.new_position_id(), booked.quoter_index)
        await handle.trade(trade)
        return trade.position

    # peer messages ----------------------------------------------------------------------------
    async def on_message(self, peer: Address, message: QuoteMessage) -> None:
        machine = self._machine(message.channel_id)
        if machine.peer_address != peer:
            raise UnknownChannel("a quote message for a channel that is not with this peer")
        if isinstance(message, QuoteRequest):
            await self._on_request(peer, message)
        elif isinstance(message, SignedQuote):
            await self._on_quote(peer, message, machine.index)
        else:
            self._on_decline(message)

    async def _on_request(self, peer: Address, request: QuoteRequest) -> None:
        now = Timestamp(self._node.now())
        try:
            self.book.admit_request(request, peer, now)
        except TooManyQuoteRequests as exc:
            # Refused, not stored: the answer is sent, nothing waits.
            self._send(peer, QuoteDecline(request.channel_id, request.request_id, str(exc)[:256]))
            return
        self._node.emit(QuoteRequested(request.channel_id, peer, request))
        if self.pricer is None:
            return  # an operator answers (CLI ``answer``) before the request's TTL
        self._node.start_soon(self._price, peer, request)

    async def _price(self, peer: Address, request: QuoteRequest) -> None:
        machine = self._machine(request.channel_id)
        view = IncomingRequest(
            request.channel_id, peer, request, machine.params.asset_decimals, self._node.now()
        )
        answer: QuoteTerms | Decline = Decline("no price")
        assert self.pricer is not None
        with trio.move_on_after(self.pricer_timeout):
            try:
                result = self.pricer(view)
                if inspect.isawaitable(result):
                    result = await result
                if isinstance(result, QuoteTerms | Decline):
                    answer = result
            except Exception as exc:  # the bot's code: a failure declines, never crashes us
                log.warning("the pricer failed on request %d: %s", request.request_id, exc)
                answer = Decline("the pricer failed")
        try:
            await self.answer(request.channel_id, request.request_id, answer)
        except ChannelError as exc:
            log.info("could not answer request %d: %s", request.request_id, exc)

    async def _on_quote(self, peer: Address, signed: SignedQuote, our_index: int) -> None:
        quote = signed.quote
        verify_quote(self._domain(), signed)
        key = (quote.channel_id, quote.request_id)
        if quote.request_id and key not in self._waiting:
            # An answer to nothing we asked (or asked too long ago): not stored.
            raise QuoteUnknown(f"a quote for request {quote.request_id} we are not waiting for")
        self.book.receive(signed, peer, 1 - our_index, Timestamp(self._node.now()))
        await self._record(
            QuoteEntry(
                quote.channel_id,
                "received",
                quote.quote_id,
                quote.request_id or None,
                signed=signed,
            )
        )
        self._node.emit(QuoteReceived(quote.channel_id, peer, signed))
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.quote = signed
            waiting.done.set()

    def _on_decline(self, decline: QuoteDecline) -> None:
        key = (decline.channel_id, decline.request_id)
        waiting = self._waiting.get(key)
        if waiting is None:
            return
        self._node.emit(
            QuoteDeclinedEvent(decline.channel_id, decline.request_id, decline.reason, ours=False)
        )
        waiting.decline = decline.reason
        waiting.done.set()

    # time -------------------------------------------------------------------------------------
    def sweep(self) -> list[BookedQuote]:
        """Mark expired quotes (and drop requests past their TTL); emits QuoteExpired."""
        expired = self.book.expire(Timestamp(self._node.now()))
        for booked in expired:
            self._node.emit(
                QuoteExpired(booked.quote.channel_id, booked.quote.quote_id, booked.ours)
            )
        self.book.forget_retired(KEEP_RETIRED)
        return expired

    async def restore(self) -> int:
        """After a restart: book again the live quotes of the audit trail, with what the signed
        history of their channel has filled of them. Returns how many are live."""
        return await restore_book(self.book, self._node, await self.audit())

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep expired quotes until cancelled (the node restores the book before)."""
        task_status.started()
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            expired = self.sweep()
            if expired:
                try:
                    await self._record(
                        *(
                            QuoteEntry(b.quote.channel_id, "expired", b.quote.quote_id)
                            for b in expired
                        )
                    )
                except ChannelError as exc:
                    log.warning("could not record expiries in the quote audit trail: %s", exc)
