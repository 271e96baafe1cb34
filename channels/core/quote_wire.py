"""Wire codec of the firm-quote messages (sans-IO), in the envelope of :mod:`channels.core.wire`.

==== ============= ===========================================================================
tag  type          keys of ``fields``
==== ============= ===========================================================================
16   QuoteRequest  channel_id, request_id (>= 1), underlying (hash), kind (0 call, 1 put),
                   strike (u256), expiry, quantity (u256), side (0 buy, 1 sell)
17   SignedQuote   quote (Quote map), signature (65-byte bin)
18   QuoteDecline  channel_id, request_id, reason (str of at most 256 characters)
40   SignedQuote   the same map as tag 17, as a record of the store's audit trail
==== ============= ===========================================================================

Quote map: quote_id, channel_id, underlying, replaces (32-byte bins), quoter (address),
request_id, expiry, valid_until (uint64), kind (0 or 1), quoter_writes (bool), strike, price,
collateral, max_quantity (u256 bins). Decoding is as strict as the channel messages (exact key
sets, exact types and lengths); a quote message is at most :data:`MAX_QUOTE_MESSAGE` bytes.

:func:`decode_peer_message` reads any peer message: the channel messages first (the hot path is
unchanged), a quote message only when the tag is not a channel message's.
"""

from __future__ import annotations

from typing import Any

from channels.core.errors import SchemaError, UnencodableMessage, UnknownType
from channels.core.messages import Message
from channels.core.quotes import (
    MAX_DECLINE_REASON,
    Quote,
    QuoteDecline,
    QuoteMessage,
    QuoteRequest,
    Side,
    SignedQuote,
)
from channels.core.schema import Field, Schema, nested
from channels.core.wire import decode_message, encode_message, open_envelope, pack_envelope
from channels.core.wire_kinds import (
    ADDRESS,
    BOOL,
    HASH,
    OPTION_KIND,
    SIG,
    U64,
    U256,
    Kind,
    bounded_text,
)

TAG_QUOTE_REQUEST = 16
TAG_QUOTE = 17
TAG_QUOTE_DECLINE = 18
TAG_QUOTE_RECORD = 40
#: Largest quote message (bytes); a quote is about 500.
MAX_QUOTE_MESSAGE = 4096


def _d_side(value: Any, name: str) -> Any:
    if type(value) is not int or value not in (0, 1):
        raise SchemaError(f"{name} must be 0 (buy) or 1 (sell)")
    return Side(value)


SIDE = Kind(int, _d_side)

QUOTE_REQUEST = Schema("QuoteRequest", QuoteRequest, (
    Field("channel_id", HASH),
    Field("request_id", U64),
    Field("underlying", HASH),
    Field("kind", OPTION_KIND),
    Field("strike", U256),
    Field("expiry", U64),
    Field("quantity", U256),
    Field("side", SIDE),
))  # fmt: skip
QUOTE = Schema("Quote", Quote, (
    Field("quote_id", HASH),
    Field("channel_id", HASH),
    Field("quoter", ADDRESS),
    Field("request_id", U64),
    Field("underlying", HASH),
    Field("kind", OPTION_KIND),
    Field("strike", U256),
    Field("expiry", U64),
    Field("quoter_writes", BOOL),
    Field("price", U256),
    Field("collateral", U256),
    Field("max_quantity", U256),
    Field("valid_until", U64),
    Field("replaces", HASH),
))  # fmt: skip
SIGNED_QUOTE = Schema("SignedQuote", SignedQuote, (
    Field("quote", nested(QUOTE)),
    Field("signature", SIG),
))  # fmt: skip
QUOTE_DECLINE = Schema("QuoteDecline", QuoteDecline, (
    Field("channel_id", HASH),
    Field("request_id", U64),
    Field("reason", bounded_text(MAX_DECLINE_REASON)),
))  # fmt: skip

#: quote message tag -> schema
QUOTE_MESSAGES: dict[int, Schema] = {
    TAG_QUOTE_REQUEST: QUOTE_REQUEST,
    TAG_QUOTE: SIGNED_QUOTE,
    TAG_QUOTE_DECLINE: QUOTE_DECLINE,
}
_TAGS = {schema.cls: (tag, schema) for tag, schema in QUOTE_MESSAGES.items()}


def encode_quote_message(msg: QuoteMessage) -> bytes:
    entry = _TAGS.get(type(msg))
    if entry is None:
        raise UnencodableMessage(f"not a quote message: {type(msg).__name__}")
    return pack_envelope(entry[0], entry[1], msg)


def decode_quote_message(data: bytes) -> QuoteMessage:
    """The quote message in ``data``; a :class:`WireError` for anything else."""
    message: QuoteMessage = open_envelope(data, MAX_QUOTE_MESSAGE, QUOTE_MESSAGES, "message")
    return message


def encode_peer_message(msg: Message | QuoteMessage) -> bytes:
    if isinstance(msg, QuoteRequest | SignedQuote | QuoteDecline):
        return encode_quote_message(msg)
    return encode_message(msg)


def decode_peer_message(data: bytes) -> Message | QuoteMessage:
    """Any peer message: a channel message, else a quote message (the hot path is unchanged:
    a quote message is decoded a second time only after its tag was found unknown)."""
    try:
        return decode_message(data)
    except UnknownType:
        return decode_quote_message(data)


def encode_quote_record(signed: SignedQuote) -> bytes:
    """A signed quote as a store record (tag 40), for the audit trail."""
    return pack_envelope(TAG_QUOTE_RECORD, SIGNED_QUOTE, signed)


def decode_quote_record(data: bytes) -> SignedQuote:
    records = {TAG_QUOTE_RECORD: SIGNED_QUOTE}
    signed: SignedQuote = open_envelope(data, MAX_QUOTE_MESSAGE, records, "record")
    return signed
