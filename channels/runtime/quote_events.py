"""Events of the firm-quote layer (:mod:`channels.runtime.quoting`), on the node's event stream."""

from __future__ import annotations

from dataclasses import dataclass

from channels.core.model import Address
from channels.core.node_events import Event
from channels.core.quotes import QuoteRequest, SignedQuote


@dataclass(frozen=True, slots=True)
class QuoteRequested(Event):
    """The peer asks us for a firm quote (our pricer, or the operator, answers)."""

    peer: Address
    request: QuoteRequest


@dataclass(frozen=True, slots=True)
class QuoteReceived(Event):
    """The peer sent us a firm quote (an answer to our request, or an unsolicited offer); its
    signature is verified and it is in the audit trail."""

    peer: Address
    quote: SignedQuote


@dataclass(frozen=True, slots=True)
class QuoteFilled(Event):
    """A fill of a quote is in a fully signed state. ``ours``: the quote is ours (the peer
    filled it); otherwise we filled the peer's quote."""

    quote_id: bytes
    quantity: int
    premium: int
    remaining: int
    ours: bool
    position_id: int


@dataclass(frozen=True, slots=True)
class QuoteExpired(Event):
    """A live quote reached its ``valid_until`` (chain time): no fill of it is possible now."""

    quote_id: bytes
    ours: bool


@dataclass(frozen=True, slots=True)
class QuoteDeclinedEvent(Event):
    """A request for a quote was declined (``ours``: by us)."""

    request_id: int
    reason: str
    ours: bool


def describe(event: Event) -> str | None:
    """One log line for a quote event (None for other events)."""
    if isinstance(event, QuoteRequested):
        r = event.request
        return (
            f"quote requested id={r.request_id} side={r.side.name.lower()} "
            f"kind={r.kind.name.lower()} strike={r.strike} expiry={r.expiry} qty={r.quantity}"
        )
    if isinstance(event, QuoteReceived):
        q = event.quote.quote
        return (
            f"quote received quote=0x{q.quote_id.hex()[:16]} price={q.price} "
            f"max={q.max_quantity} valid_until={q.valid_until}"
        )
    if isinstance(event, QuoteFilled):
        return (
            f"quote filled quote=0x{event.quote_id.hex()[:16]} by={'peer' if event.ours else 'us'} "
            f"qty={event.quantity} premium={event.premium} left={event.remaining}"
        )
    if isinstance(event, QuoteExpired):
        return f"quote expired quote=0x{event.quote_id.hex()[:16]} ours={event.ours}"
    if isinstance(event, QuoteDeclinedEvent):
        return f"quote declined request={event.request_id} reason={event.reason[:80]!r}"
    return None
