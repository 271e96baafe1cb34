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

from collections.abc import Callable
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
from channels.core.wire import (
    _build,
    _dbytes,
    _dsig,
    _dstr,
    _du64,
    _du256,
    _ebytes,
    _esig,
    _estr,
    _eu64,
    _eu256,
    _fields,
    _open,
    _pack,
    decode_message,
    encode_message,
)

TAG_QUOTE_REQUEST = 16
TAG_QUOTE = 17
TAG_QUOTE_DECLINE = 18
TAG_QUOTE_RECORD = 40
#: Largest quote message (bytes); a quote is about 500.
MAX_QUOTE_MESSAGE = 4096

_ADDRESS_LEN = 20
_HASH_LEN = 32
_KINDS = (0, 1)


def _ekind(value: int) -> int:
    if int(value) not in _KINDS:
        raise UnencodableMessage("kind must be 0 or 1")
    return int(value)


def _e_request(m: QuoteRequest) -> dict[str, object]:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "request_id": _eu64(m.request_id),
        "underlying": _ebytes(m.underlying, _HASH_LEN),
        "kind": _ekind(m.kind),
        "strike": _eu256(m.strike),
        "expiry": _eu64(m.expiry),
        "quantity": _eu256(m.quantity),
        "side": int(m.side),
    }


def _e_quote(q: Quote) -> dict[str, object]:
    if type(q.quoter_writes) is not bool:
        raise UnencodableMessage("quoter_writes must be a bool")
    return {
        "quote_id": _ebytes(q.quote_id, _HASH_LEN),
        "channel_id": _ebytes(q.channel_id, _HASH_LEN),
        "quoter": _ebytes(q.quoter, _ADDRESS_LEN),
        "request_id": _eu64(q.request_id),
        "underlying": _ebytes(q.underlying, _HASH_LEN),
        "kind": _ekind(q.kind),
        "strike": _eu256(q.strike),
        "expiry": _eu64(q.expiry),
        "quoter_writes": q.quoter_writes,
        "price": _eu256(q.price),
        "collateral": _eu256(q.collateral),
        "max_quantity": _eu256(q.max_quantity),
        "valid_until": _eu64(q.valid_until),
        "replaces": _ebytes(q.replaces, _HASH_LEN),
    }


def _e_signed(m: SignedQuote) -> dict[str, object]:
    return {"quote": _e_quote(m.quote), "signature": _esig(m.signature)}


def _e_decline(m: QuoteDecline) -> dict[str, object]:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "request_id": _eu64(m.request_id),
        "reason": _estr(m.reason, MAX_DECLINE_REASON),
    }


_ENCODERS: dict[type, tuple[int, Callable[[Any], dict[str, object]]]] = {
    QuoteRequest: (TAG_QUOTE_REQUEST, _e_request),
    SignedQuote: (TAG_QUOTE, _e_signed),
    QuoteDecline: (TAG_QUOTE_DECLINE, _e_decline),
}


def _dkind(value: Any, name: str) -> int:
    if type(value) is not int or value not in _KINDS:
        raise SchemaError(f"{name} must be 0 (call) or 1 (put)")
    return value


_REQUEST_KEYS = frozenset(
    ("channel_id", "request_id", "underlying", "kind", "strike", "expiry", "quantity", "side")
)
_QUOTE_KEYS = frozenset(
    (
        "quote_id",
        "channel_id",
        "quoter",
        "request_id",
        "underlying",
        "kind",
        "strike",
        "expiry",
        "quoter_writes",
        "price",
        "collateral",
        "max_quantity",
        "valid_until",
        "replaces",
    )
)
_SIGNED_KEYS = frozenset(("quote", "signature"))
_DECLINE_KEYS = frozenset(("channel_id", "request_id", "reason"))


def _d_request(obj: Any) -> QuoteRequest:
    f = _fields(obj, _REQUEST_KEYS, "QuoteRequest")
    side = f["side"]
    if type(side) is not int or side not in (0, 1):
        raise SchemaError("side must be 0 (buy) or 1 (sell)")
    return QuoteRequest(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        request_id=_du64(f["request_id"], "request_id"),
        underlying=_dbytes(f["underlying"], _HASH_LEN, "underlying"),
        kind=_dkind(f["kind"], "kind"),  # type: ignore[arg-type]
        strike=_du256(f["strike"], "strike"),
        expiry=_du64(f["expiry"], "expiry"),
        quantity=_du256(f["quantity"], "quantity"),
        side=Side(side),
    )


def _d_quote(obj: Any) -> Quote:
    f = _fields(obj, _QUOTE_KEYS, "Quote")
    writes = f["quoter_writes"]
    if type(writes) is not bool:
        raise SchemaError("quoter_writes must be a msgpack bool")
    return Quote(
        quote_id=_dbytes(f["quote_id"], _HASH_LEN, "quote_id"),
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        quoter=_dbytes(f["quoter"], _ADDRESS_LEN, "quoter"),
        request_id=_du64(f["request_id"], "request_id"),
        underlying=_dbytes(f["underlying"], _HASH_LEN, "underlying"),
        kind=_dkind(f["kind"], "kind"),  # type: ignore[arg-type]
        strike=_du256(f["strike"], "strike"),
        expiry=_du64(f["expiry"], "expiry"),
        quoter_writes=writes,
        price=_du256(f["price"], "price"),
        collateral=_du256(f["collateral"], "collateral"),
        max_quantity=_du256(f["max_quantity"], "max_quantity"),
        valid_until=_du64(f["valid_until"], "valid_until"),
        replaces=_dbytes(f["replaces"], _HASH_LEN, "replaces"),
    )


def _d_signed(obj: Any) -> SignedQuote:
    f = _fields(obj, _SIGNED_KEYS, "SignedQuote")
    return SignedQuote(quote=_d_quote(f["quote"]), signature=_dsig(f["signature"], "signature"))


def _d_decline(obj: Any) -> QuoteDecline:
    f = _fields(obj, _DECLINE_KEYS, "QuoteDecline")
    return QuoteDecline(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        request_id=_du64(f["request_id"], "request_id"),
        reason=_dstr(f["reason"], MAX_DECLINE_REASON, "reason"),
    )


_DECODERS: dict[int, Callable[[Any], QuoteMessage]] = {
    TAG_QUOTE_REQUEST: _d_request,
    TAG_QUOTE: _d_signed,
    TAG_QUOTE_DECLINE: _d_decline,
}


def encode_quote_message(msg: QuoteMessage) -> bytes:
    entry = _ENCODERS.get(type(msg))
    if entry is None:
        raise UnencodableMessage(f"not a quote message: {type(msg).__name__}")
    return _pack(entry[0], entry[1], msg)


def decode_quote_message(data: bytes) -> QuoteMessage:
    """The quote message in ``data``; a :class:`WireError` for anything else."""
    tag, fields = _open(data, MAX_QUOTE_MESSAGE)
    decode = _DECODERS.get(tag)
    if decode is None:
        raise UnknownType(f"unknown message tag {tag}")
    message: QuoteMessage = _build(decode, fields)
    return message


def encode_peer_message(msg: Message | QuoteMessage) -> bytes:
    if isinstance(msg, QuoteRequest | SignedQuote | QuoteDecline):
        return encode_quote_message(msg)
    return encode_message(msg)


def decode_peer_message(data: bytes) -> Message | QuoteMessage:
    """Any peer message: a channel message, else a quote message."""
    try:
        return decode_message(data)
    except UnknownType:
        return decode_quote_message(data)


def encode_quote_record(signed: SignedQuote) -> bytes:
    """A signed quote as a store record (tag 40), for the audit trail."""
    return _pack(TAG_QUOTE_RECORD, _e_signed, signed)


def decode_quote_record(data: bytes) -> SignedQuote:
    tag, fields = _open(data, MAX_QUOTE_MESSAGE)
    if tag != TAG_QUOTE_RECORD:
        raise UnknownType(f"expected record tag {TAG_QUOTE_RECORD}, got {tag}")
    signed: SignedQuote = _build(_d_signed, fields)
    return signed
