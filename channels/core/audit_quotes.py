"""The firm quotes of an audit export: how a signed quote is written, and how the verifier
checks a quote record and each trade that cites one (docs/PROTOCOL.md section 14). Pure.

A fill cannot be judged without its quote: the quote record carries every field of the EIP-712
``Quote`` and the quoter's signature, so the verifier recovers the quoter itself and recomputes
what a fill of the cited quantity must lock and pay (channels/core/quotes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.core import eip712
from channels.core.audit_fields import hex_field, uint_field
from channels.core.model import (
    Address,
    Amount,
    OptionKind,
    Params,
    Price,
    Quantity,
    Timestamp,
    address,
    symbol_text,
    to_checksum,
)
from channels.core.quotes import (
    Quote,
    SignedQuote,
    fill_collateral,
    fill_premium,
    verify_quote,
)

_KINDS = {"call": OptionKind.CALL, "put": OptionKind.PUT}


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def quote_record(signed: SignedQuote) -> dict[str, Any]:
    """A signed firm quote as the export writes it (every field of the EIP-712 Quote)."""
    q = signed.quote
    return {
        "quote_id": _hex(q.quote_id),
        "quoter": to_checksum(q.quoter),
        "request_id": q.request_id,
        "underlying": _hex(q.underlying),
        "kind": q.kind.name.lower(),
        "strike": str(q.strike),
        "expiry": q.expiry,
        "quoter_writes": q.quoter_writes,
        "price": str(q.price),
        "collateral": str(q.collateral),
        "max_quantity": str(q.max_quantity),
        "valid_until": q.valid_until,
        "replaces": _hex(q.replaces),
        "signature": _hex(signed.signature),
    }




@dataclass
class CheckedQuote:
    """A quote record that checked out, and how much of it the trades so far filled."""

    quote: Quote
    quoter_index: int
    filled: int = 0


def parse_quote(raw: object, params: Params, domain: eip712.Domain) -> CheckedQuote:
    """Check one quote record: its fields, the quoter's signature, the channel, the quoter."""
    if not isinstance(raw, dict):
        raise ValueError("a quote must be an object")
    kind = _KINDS.get(raw["kind"]) if isinstance(raw.get("kind"), str) else None
    if kind is None:
        raise ValueError("a quote's kind must be call or put")
    writes = raw["quoter_writes"]
    if not isinstance(writes, bool):
        raise ValueError("quoter_writes must be a boolean")
    quote = Quote(
        quote_id=hex_field(raw["quote_id"], 32, "quote_id"),
        channel_id=params.channel_id,
        quoter=address(raw["quoter"]),
        request_id=uint_field(raw["request_id"], "request_id"),
        underlying=hex_field(raw["underlying"], 32, "underlying"),
        kind=kind,
        strike=Price(uint_field(raw["strike"], "strike")),
        expiry=Timestamp(uint_field(raw["expiry"], "expiry")),
        quoter_writes=writes,
        price=Amount(uint_field(raw["price"], "price")),
        collateral=Amount(uint_field(raw["collateral"], "collateral")),
        max_quantity=Quantity(uint_field(raw["max_quantity"], "max_quantity")),
        valid_until=Timestamp(uint_field(raw["valid_until"], "valid_until")),
        replaces=hex_field(raw["replaces"], 32, "replaces"),
    )
    # The signature covers the channel id: a quote of another channel does not verify here.
    verify_quote(domain, SignedQuote(quote, hex_field(raw["signature"], 65, "signature")))
    if quote.quoter not in params.participants:
        raise ValueError(f"quote {_hex(quote.quote_id)}: the quoter is not a participant")
    return CheckedQuote(quote, params.participants.index(Address(quote.quoter)))


def check_fill(trade: Mapping[str, Any], quotes: Mapping[bytes, CheckedQuote]) -> bool:
    """Check a trade (as exported) that cites a quote against it; False if it cites none."""
    cited = trade.get("quote_id")
    if trade.get("type") != "OpenOption" or cited is None:
        return False
    quote_id = hex_field(cited, 32, "quote_id")
    entry = quotes.get(quote_id)
    if entry is None:
        raise ValueError(f"a trade fills quote {cited}, which the export does not hold")
    q = entry.quote
    quantity = uint_field(trade["quantity"], "quantity")
    got = (
        trade["underlying"],
        trade["kind"],
        uint_field(trade["strike"], "strike"),
        uint_field(trade["expiry"], "expiry"),
        uint_field(trade["writer"], "writer"),
        uint_field(trade["collateral"], "collateral"),
        uint_field(trade["premium"], "premium"),
    )
    want = (
        symbol_text(q.underlying),
        q.kind.name.lower(),
        q.strike,
        q.expiry,
        q.writer_index(entry.quoter_index),
        fill_collateral(q, quantity),
        fill_premium(q, quantity),
    )
    if got != want:
        raise ValueError(f"the fill of quote {cited} is not on the quote's terms")
    entry.filled += quantity
    if entry.filled > q.max_quantity:
        raise ValueError(f"quote {cited} is filled beyond its maximum {q.max_quantity}")
    return True


__all__ = ["CheckedQuote", "check_fill", "parse_quote", "quote_record"]
