"""Firm quotes (RFQ): the Quote terms, their EIP-712 signature and the amounts of a fill (pure).

A quote is the quoting desk's signed promise to trade one option with its peer on one channel:
up to ``max_quantity`` at ``price`` per whole unit, until ``valid_until`` (chain time). The peer
fills it, all or part, with ONE channel update whose :class:`~channels.core.options.OpenOption`
names the quote (``quote_id``); the quoter countersigns only fills of its own live quotes with
exactly its terms (:mod:`channels.core.quote_book`). The signature makes the quote
non-repudiable: anyone holding the domain can recover the quoter from the typed data
(docs/PROTOCOL.md, "Firm quotes").

Amounts follow the channel's scales: ``price`` and ``collateral`` are asset units per whole
option (``QUANTITY_SCALE`` of quantity); a fill of ``q`` pays ``price * q / QUANTITY_SCALE`` and
locks ``collateral * q / QUANTITY_SCALE``, each rounded in the quoter's favour (see
:func:`fill_premium`, :func:`fill_collateral`), so both sides compute the same figures.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from channels.core import eip712
from channels.core.errors import BadSignature, InvalidField, LocalError, RemoteError, RuleViolation
from channels.core.hashing import keccak256
from channels.core.model import (
    QUANTITY_SCALE,
    ZERO_ADDRESS,
    ZERO_HASH,
    Address,
    Amount,
    ChannelId,
    Digest,
    OptionKind,
    Position,
    PositionId,
    Price,
    Quantity,
    Timestamp,
    check_bytes,
    check_uint,
    to_checksum,
)
from channels.core.options import OpenOption
from channels.core.signing import Signer, SignRequest, recover, sign

QUOTE_TYPE = (
    "Quote(bytes32 quoteId,bytes32 channelId,address quoter,uint64 requestId,bytes32 underlying,"
    "uint8 kind,uint256 strike,uint64 expiry,bool quoterWrites,uint256 price,uint256 collateral,"
    "uint256 maxQuantity,uint64 validUntil,bytes32 replaces)"
)
QUOTE_TYPEHASH = keccak256(QUOTE_TYPE.encode())
#: Longest decline reason carried on the wire.
MAX_DECLINE_REASON = 256


def _w(value: int) -> bytes:
    return value.to_bytes(32, "big")


# Errors: each names the rule a fill (or a quote message) breaks. ---------------------------------


# Each rule is Local when our own call can break it, Remote when only the peer's messages can.
class QuoteUnknown(RuleViolation, LocalError):
    """The fill names a quote we never issued on this channel (or one we no longer hold)."""


class QuoteExpired(RuleViolation, LocalError):
    """The fill arrived at or after the quote's ``valid_until`` (chain time)."""


class QuoteOverfilled(RuleViolation, LocalError):
    """The fill's quantity is above what is left of the quote (fills in flight count)."""


class QuotePriceChanged(RuleViolation, RemoteError):
    """The fill's premium is not the quote's price for the filled quantity."""


class QuoteTermsChanged(RuleViolation, RemoteError):
    """The fill's option (underlying, kind, strike, expiry, side, collateral) is not the quote's."""


class QuoteReplaced(RuleViolation, LocalError):
    """The quote was replaced by a newer quote of ours before the fill reached us (they crossed)."""


class QuoteWithdrawn(RuleViolation, RemoteError):
    """The quote was withdrawn (cancelled) by its quoter before the fill reached it."""


class BadQuote(RuleViolation, RemoteError):
    """A quote message is malformed, bound to another channel, or not signed by its quoter."""


class TooManyQuoteRequests(RuleViolation, RemoteError):
    """The peer has too many quote requests (or quotes) outstanding; the excess is refused."""


class QuoteDeclined(RuleViolation, RemoteError):
    """The quoting desk declined our request (its reason is in the message)."""


# The model ------------------------------------------------------------------------------------


class Side(enum.IntEnum):
    """The requester's side of a requested trade."""

    BUY = 0  # the requester holds the option, the quoter writes it
    SELL = 1  # the requester writes the option, the quoter holds it

    @classmethod
    def parse(cls, value: str | int | Side) -> Side:
        if isinstance(value, Side):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise InvalidField(f"side must be 'buy' or 'sell', not {value!r}") from None
        if type(value) is int and value in (0, 1):
            return cls(value)
        raise InvalidField(f"side must be 'buy' or 'sell', not {value!r}")


def _kind(value: object) -> OptionKind:
    if type(value) is OptionKind:
        return value
    if type(value) is int and value in (0, 1):
        return OptionKind(value)
    raise InvalidField("kind must be OptionKind.CALL or OptionKind.PUT")


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    """A request for a firm quote (peer message): one option, one size, the requester's side."""

    channel_id: ChannelId
    request_id: int
    underlying: bytes
    kind: OptionKind
    strike: Price
    expiry: Timestamp
    quantity: Quantity
    side: Side

    def __post_init__(self) -> None:
        check_bytes(self.channel_id, 32, "channel_id")
        check_uint(self.request_id, 64, "request_id")
        if self.request_id == 0:
            raise InvalidField("request_id 0 is reserved for unsolicited quotes")
        check_bytes(self.underlying, 32, "underlying")
        object.__setattr__(self, "kind", _kind(self.kind))
        if check_uint(self.strike, 256, "strike") == 0:
            raise InvalidField("strike must be above zero")
        check_uint(self.expiry, 64, "expiry")
        if check_uint(self.quantity, 256, "quantity") == 0:
            raise InvalidField("quantity must be above zero")
        object.__setattr__(self, "side", Side.parse(self.side))


@dataclass(frozen=True, slots=True)
class Quote:
    """Firm terms a quoter signs (the EIP-712 ``Quote``).

    ``quoter_writes`` says which side the quoter takes: True, it writes (sells) the option and the
    filler pays the premium; False, it buys and pays. ``request_id`` is the request it answers
    (0: an unsolicited offer). ``replaces`` names an earlier quote of ours it supersedes (zero:
    none); from the moment it is issued the earlier one can no longer be filled.
    """

    quote_id: bytes
    channel_id: ChannelId
    quoter: Address
    request_id: int
    underlying: bytes
    kind: OptionKind
    strike: Price
    expiry: Timestamp
    quoter_writes: bool
    price: Amount
    collateral: Amount
    max_quantity: Quantity
    valid_until: Timestamp
    replaces: bytes = ZERO_HASH

    def __post_init__(self) -> None:
        check_bytes(self.quote_id, 32, "quote_id")
        if self.quote_id == ZERO_HASH:
            raise InvalidField("quote_id cannot be zero")
        check_bytes(self.channel_id, 32, "channel_id")
        check_bytes(self.quoter, 20, "quoter")
        if self.quoter == ZERO_ADDRESS:
            raise InvalidField("the quoter cannot be the zero address")
        check_uint(self.request_id, 64, "request_id")
        check_bytes(self.underlying, 32, "underlying")
        object.__setattr__(self, "kind", _kind(self.kind))
        if check_uint(self.strike, 256, "strike") == 0:
            raise InvalidField("strike must be above zero")
        check_uint(self.expiry, 64, "expiry")
        if type(self.quoter_writes) is not bool:
            raise InvalidField("quoter_writes must be a bool")
        check_uint(self.price, 128, "price")
        if check_uint(self.collateral, 128, "collateral") == 0:
            raise InvalidField("collateral per unit must be above zero")
        if check_uint(self.max_quantity, 128, "max_quantity") == 0:
            raise InvalidField("max_quantity must be above zero")
        check_uint(self.valid_until, 64, "valid_until")
        check_bytes(self.replaces, 32, "replaces")
        if self.replaces == self.quote_id:
            raise InvalidField("a quote cannot replace itself")

    def writer_index(self, quoter_index: int) -> int:
        """The participant index of the option's writer in a fill of this quote."""
        return quoter_index if self.quoter_writes else 1 - quoter_index


@dataclass(frozen=True, slots=True)
class SignedQuote:
    """A quote with its quoter's EIP-712 signature (the peer message that carries a quote)."""

    quote: Quote
    signature: bytes

    @property
    def channel_id(self) -> ChannelId:
        return self.quote.channel_id


@dataclass(frozen=True, slots=True)
class QuoteDecline:
    """The quoting desk will not quote this request (peer message)."""

    channel_id: ChannelId
    request_id: int
    reason: str

    def __post_init__(self) -> None:
        check_bytes(self.channel_id, 32, "channel_id")
        check_uint(self.request_id, 64, "request_id")
        if type(self.reason) is not str or len(self.reason) > MAX_DECLINE_REASON:
            raise InvalidField(f"a decline reason is a str of at most {MAX_DECLINE_REASON} chars")


QuoteMessage = QuoteRequest | SignedQuote | QuoteDecline
QUOTE_MESSAGES = (QuoteRequest, SignedQuote, QuoteDecline)


def quote_id_for(channel_id: bytes, quoter: bytes, sequence: int) -> bytes:
    """A quote id unique to this quoter and channel: ``keccak(channelId ‖ quoter ‖ sequence)``."""
    check_uint(sequence, 64, "sequence")
    return keccak256(channel_id + quoter + _w(sequence))


# EIP-712 --------------------------------------------------------------------------------------


def quote_struct_hash(q: Quote) -> bytes:
    return keccak256(
        b"".join(
            (
                QUOTE_TYPEHASH,
                q.quote_id,
                q.channel_id,
                bytes(12) + q.quoter,
                _w(q.request_id),
                q.underlying,
                _w(int(q.kind)),
                _w(q.strike),
                _w(q.expiry),
                _w(1 if q.quoter_writes else 0),
                _w(q.price),
                _w(q.collateral),
                _w(q.max_quantity),
                _w(q.valid_until),
                q.replaces,
            )
        )
    )


def quote_digest(domain: eip712.Domain, q: Quote) -> bytes:
    return eip712.digest(domain, quote_struct_hash(q))


def sign_quote(signer: Signer, domain: eip712.Domain, q: Quote) -> SignedQuote:
    """Sign ``q``; only its quoter may (a quote signed by anyone else would not verify)."""
    if signer.address != q.quoter:
        raise InvalidField("a quote is signed by its quoter")
    request = SignRequest(domain, q, Digest(quote_digest(domain, q)), quote_typed_data)
    return SignedQuote(q, sign(signer, request))


def verify_quote(domain: eip712.Domain, signed: SignedQuote) -> None:
    """Raise :class:`BadQuote` unless the signature over the quote recovers to its quoter."""
    try:
        signer = recover(quote_digest(domain, signed.quote), signed.signature)
    except BadSignature as exc:
        raise BadQuote(f"quote signature: {exc}") from exc
    if signer != signed.quote.quoter:
        raise BadQuote("the quote is not signed by its quoter")


_DOMAIN_FIELDS = (
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
)


def _type_fields(type_string: str) -> list[dict[str, str]]:
    inner = type_string[type_string.index("(") + 1 : -1]
    return [
        {"name": name, "type": typ} for typ, name in (part.split(" ") for part in inner.split(","))
    ]


def quote_typed_data(domain: eip712.Domain, q: Quote) -> dict[str, Any]:
    """The quote as ``eth_signTypedData_v4`` JSON (a wallet or eth-account can sign or check it)."""
    return {
        "types": {
            "EIP712Domain": [dict(f) for f in _DOMAIN_FIELDS],
            "Quote": _type_fields(QUOTE_TYPE),
        },
        "primaryType": "Quote",
        "domain": domain.as_json(),
        "message": {
            "quoteId": "0x" + q.quote_id.hex(),
            "channelId": "0x" + q.channel_id.hex(),
            "quoter": to_checksum(q.quoter),
            # uints as decimal strings: exact in every wallet (docs/PROTOCOL.md section 13)
            "requestId": str(q.request_id),
            "underlying": "0x" + q.underlying.hex(),
            "kind": str(int(q.kind)),
            "strike": str(q.strike),
            "expiry": str(q.expiry),
            "quoterWrites": q.quoter_writes,
            "price": str(q.price),
            "collateral": str(q.collateral),
            "maxQuantity": str(q.max_quantity),
            "validUntil": str(q.valid_until),
            "replaces": "0x" + q.replaces.hex(),
        },
    }


# Fill amounts -----------------------------------------------------------------------------------


def _scaled(per_unit: int, quantity: int, round_up: bool) -> int:
    numerator = per_unit * quantity
    scale: int = QUANTITY_SCALE
    return -(-numerator // scale) if round_up else numerator // scale


def fill_premium(q: Quote, quantity: int) -> int:
    """Premium for a fill of ``quantity``: rounded up when the quoter sells, down when it buys."""
    return _scaled(q.price, quantity, round_up=q.quoter_writes)


def fill_collateral(q: Quote, quantity: int) -> int:
    """Collateral locked for a fill: rounded down when the quoter writes, up when the filler does
    (the quoter's exposure is never above its terms, its protection never below)."""
    return _scaled(q.collateral, quantity, round_up=not q.quoter_writes)


def fill_trade(q: Quote, quantity: int, position_id: int, quoter_index: int) -> OpenOption:
    """The trade that fills ``quantity`` of ``q`` (built by the filler, checked by the quoter)."""
    if check_uint(quantity, 256, "quantity") == 0:
        raise InvalidField("a fill needs a quantity above zero")
    position = Position(
        id=PositionId(position_id),
        underlying=q.underlying,
        kind=q.kind,
        strike=q.strike,
        expiry=q.expiry,
        quantity=Quantity(quantity),
        writer=q.writer_index(quoter_index),
        collateral=Amount(fill_collateral(q, quantity)),
    )
    return OpenOption(position, Amount(fill_premium(q, quantity)), q.quote_id)


def check_fill_terms(q: Quote, trade: OpenOption, quoter_index: int) -> None:
    """Raise unless ``trade`` is exactly a fill of ``q`` (quantity aside, checked by the book)."""
    pos = trade.position
    if (pos.underlying, pos.kind, pos.strike, pos.expiry) != (
        q.underlying,
        q.kind,
        q.strike,
        q.expiry,
    ):
        raise QuoteTermsChanged(
            "the fill's option (underlying, kind, strike, expiry) is not the quote's"
        )
    if pos.writer != q.writer_index(quoter_index):
        raise QuoteTermsChanged("the fill takes the quoter's side of the quote")
    expected_collateral = fill_collateral(q, pos.quantity)
    if pos.collateral != expected_collateral:
        raise QuoteTermsChanged(
            f"the fill locks collateral {pos.collateral}, the quote says {expected_collateral}"
        )
    expected_premium = fill_premium(q, pos.quantity)
    if trade.premium != expected_premium:
        raise QuotePriceChanged(
            f"the fill pays premium {trade.premium}, the quote's price gives {expected_premium}"
        )
