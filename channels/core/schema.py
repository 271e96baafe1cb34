"""The wire format as data: one line per field of every message and store record.

:mod:`channels.core.wire` packs and unpacks the envelope and walks these tables; nothing else
knows the format. A :class:`Schema` is a map with its fields in wire order; a
:class:`~channels.core.wire_kinds.Kind` says how one value is written and read back (with its
checks, :mod:`channels.core.wire_kinds`). The message tags are 1-8, the store
record tags 32-36, the trade tags 1-7; ``docs/PROTOCOL.md`` section 9 shows the same tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channels.core.errors import SchemaError, UnknownType
from channels.core.messages import (
    RESYNC_HISTORY,
    Accept,
    OpenAccept,
    OpenCounter,
    OpenProposal,
    Proposal,
    Reestablish,
    Reject,
    UpdateRequest,
)
from channels.core.model import (
    Attestation,
    Params,
    Position,
    SignedState,
    SignedUpdate,
    State,
    Withdrawal,
)
from channels.core.options import (
    MAX_TRADES,
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Trade,
    Unwind,
)
from channels.core.positions import BookSnapshot, check_slot
from channels.core.schema_functions import build_decoder, build_encoder
from channels.core.terms import CounterOffer
from channels.core.wire_kinds import (
    ADDRESS,
    BOOL,
    HASH,
    INDEX,
    OPTION_KIND,
    SIG,
    SLOT_COUNT,
    U64,
    U256,
    Kind,
    Unencodable,
    bounded_text,
    decode_u64,
    optional,
    pair_of,
)

MAX_RULE_LEN = 64
MAX_REASON_LEN = 4096


# Schemas ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Field:
    """One key of a map: its name, its kind, and where the value lives in the object."""

    key: str
    kind: Kind
    #: Reads the value from the object (default: the attribute named ``key``).
    get: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class Schema:
    """A map: its fields in wire order, and how the decoded values become the object again.

    ``encode(obj)`` gives the map of an object (exactly of ``cls``); ``decode(map)`` checks a map
    (exactly these keys, each value by its kind, in wire order) and builds the object. Both are
    functions written for this schema when it is made (:mod:`channels.core.schema_functions`).
    """

    name: str
    cls: type
    fields: tuple[Field, ...]
    #: Builds the object from the decoded values by key (default: ``cls(**values)``).
    build: Callable[[dict[str, Any]], Any] | None = None
    encode: Callable[[Any], dict[str, Any]] = field(init=False, repr=False, compare=False)
    #: ``decode(map, name=None)``: ``name`` (the field the map sits in) lets it serve as a kind.
    decode: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        functions = [(f.key, f.kind.encode, f.kind.decode, f.get) for f in self.fields]
        encode = build_encoder(self.name, self.cls, functions, Unencodable)
        decode = build_decoder(self.name, self.cls, functions, self.build, SchemaError)
        object.__setattr__(self, "encode", encode)
        object.__setattr__(self, "decode", decode)


def nested(schema: Schema) -> Kind:
    """A field holding one object of ``schema``, as its map."""
    return Kind(schema.encode, schema.decode)


def _e_slots(slots: Any) -> Any:
    if type(slots) is not tuple:
        raise Unencodable("slots must be a tuple")
    return tuple((check_slot(slot), POSITION.encode(pos)) for slot, pos in slots)


def _d_slots(value: Any, name: str) -> Any:
    if type(value) is not tuple:
        raise SchemaError(f"{name} must be an array")
    out = []
    for entry in value:
        if type(entry) is not tuple or len(entry) != 2:
            raise SchemaError("a slot entry must be an array of two")
        out.append((check_slot(decode_u64(entry[0], "slot")), POSITION.decode(entry[1])))
    return tuple(out)


PARAMS = Schema("Params", Params, (
    Field("chain_id", U256),
    Field("adjudicator", ADDRESS),
    Field("asset", ADDRESS),
    Field("asset_decimals", U64),
    Field("participants", pair_of(ADDRESS)),
    Field("challenge_period", U64),
    Field("oracle", ADDRESS),
    Field("nonce", U256),
))  # fmt: skip
STATE = Schema("State", State, (
    Field("channel_id", HASH),
    Field("version", U64),
    Field("balances", pair_of(U256)),
    Field("deposited", pair_of(U256)),
    Field("withdrawn", pair_of(U256)),
    Field("locked", U256),
    Field("positions_root", HASH),
    Field("position_count", U64),
    Field("is_final", BOOL),
))  # fmt: skip
POSITION = Schema("Position", Position, (
    Field("id", U64),
    Field("underlying", HASH),
    Field("kind", OPTION_KIND),
    Field("strike", U256),
    Field("expiry", U64),
    Field("quantity", U256),
    Field("writer", INDEX),
    Field("collateral", U256),
))  # fmt: skip
BOOK = Schema("BookSnapshot", BookSnapshot, (
    Field("high_water", SLOT_COUNT),
    Field("slots", Kind(_e_slots, _d_slots)),
))  # fmt: skip
WITHDRAWAL = Schema("Withdrawal", Withdrawal, (
    Field("channel_id", HASH),
    Field("version", U64),
    Field("participant", INDEX),
    Field("amount", U256),
    Field("recipient", ADDRESS),
))  # fmt: skip
COUNTER_OFFER = Schema("CounterOffer", CounterOffer, (
    Field("deposit", U256),
    Field("challenge_period", U64),
))  # fmt: skip
ATTESTATION = Schema("Attestation", Attestation, (
    Field("underlying", HASH),
    Field("expiry", U64),
    Field("price", U256),
))  # fmt: skip


@dataclass(frozen=True, slots=True)
class _WithOptionalKey(Schema):
    """A schema with one more key written only when its value is not None (firm quotes: an
    OpenOption that fills a quote names it; any other keeps the plain map, and its bytes)."""

    extra: Field = Field("", HASH)

    def __post_init__(self) -> None:
        Schema.__post_init__(self)
        plain_encode, plain_decode = self.encode, self.decode
        key, kind, fields = self.extra.key, self.extra.kind, self.fields

        def encode(obj: Any) -> dict[str, Any]:
            encoded = plain_encode(obj)
            value = getattr(obj, key)
            if value is not None:
                encoded[key] = kind.encode(value)
            return encoded

        def decode(obj: Any, name: str | None = None) -> Any:
            if type(obj) is not dict or key not in obj:
                return plain_decode(obj)
            rest = {k: v for k, v in obj.items() if k != key}
            value = kind.decode(obj[key], key)
            plain = plain_decode(rest)
            return type(plain)(**{f.key: getattr(plain, f.key) for f in fields}, **{key: value})

        object.__setattr__(self, "encode", encode)
        object.__setattr__(self, "decode", decode)


#: trade tag -> schema (the tag is the trade's position in the union, from 1).
TRADES: dict[int, Schema] = {
    1: Schema("Pay", Pay, (Field("payer", INDEX), Field("amount", U256))),
    2: _WithOptionalKey("OpenOption", OpenOption, (
        Field("position", nested(POSITION)),
        Field("premium", U256),
    ), extra=Field("quote_id", HASH)),
    3: Schema("Unwind", Unwind, (Field("position_id", U64), Field("holder_share", U256))),
    4: Schema("Settle", Settle, (
        Field("position_id", U64),
        Field("attestation", nested(ATTESTATION)),
        Field("signature", SIG),
    )),
    5: Schema("CreditDeposit", CreditDeposit, (Field("participant", INDEX), Field("amount", U256))),
    6: Schema("DebitWithdrawal", DebitWithdrawal, (
        Field("participant", INDEX),
        Field("amount", U256),
        Field("recipient", ADDRESS),
    )),
    7: Schema("Finalize", Finalize, ()),
}  # fmt: skip
TRADE_TAGS = {schema.cls: (tag, schema) for tag, schema in TRADES.items()}


# The leader encodes the same trades twice: in its Proposal, and in the store record of the
# update once it is accepted (in the store's writer thread). A tuple of frozen trades encodes
# the same every time, so the last few encodings are kept by the tuple's identity, each entry
# holding its tuple (an identity cannot be reused while it is kept). Each entry is one tuple
# written and read whole, and a hit needs the very same tuple: two threads can only miss.
# Only batches of up to _KEPT_MOST_TRADES are kept: what a peer's large proposals can make us
# hold stays bounded (about 1 kB per trade, so a few MB at most).
_KEPT_ENCODINGS = 32
_KEPT_MOST_TRADES = 256
_kept: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
_kept_ids: list[int] = [0] * _KEPT_ENCODINGS
_kept_count = itertools.count()


def _e_trades(trades: Any) -> Any:
    if type(trades) is not tuple:
        raise Unencodable("trades must be a tuple")
    kept = _kept.get(id(trades))
    if kept is not None and kept[0] is trades:
        return kept[1]
    if len(trades) > MAX_TRADES:
        raise Unencodable(f"more than {MAX_TRADES} trades")
    out = []
    for trade in trades:
        entry = TRADE_TAGS.get(type(trade))
        if entry is None:
            raise Unencodable(f"not a trade: {type(trade).__name__}")
        out.append((entry[0], entry[1].encode(trade)))
    encoded = tuple(out)
    _keep(trades, encoded)
    return encoded


def _keep(trades: tuple[Any, ...], encoded: tuple[Any, ...]) -> None:
    if len(trades) > _KEPT_MOST_TRADES:
        return
    slot = next(_kept_count) % _KEPT_ENCODINGS
    _kept.pop(_kept_ids[slot], None)
    _kept_ids[slot] = id(trades)
    _kept[id(trades)] = (trades, encoded)


# The follower keeps the trades it decoded too, as the map it read, when that map is what
# encoding them gives (the store record of the update then needs no encoding): every value a
# trade's kinds accept encodes back to itself (a bin to the same bin, an int to the same int),
# so only the order of each map's keys can differ. Checked here, after every other check.
_KEY_ORDER = {tag: tuple(f.key for f in schema.fields) for tag, schema in TRADES.items()}
_QUOTED_ORDER = (*_KEY_ORDER[2], "quote_id")  # an OpenOption filling a quote: its key last
_NESTED_ORDER = {
    2: ("position", tuple(f.key for f in POSITION.fields)),
    4: ("attestation", tuple(f.key for f in ATTESTATION.fields)),
}


def _as_encoded(value: tuple[Any, ...]) -> bool:
    """Whether decoded trades ``value`` (checked) is what encoding its trades gives."""
    for tag, fields in value:
        order = tuple(fields)
        if order != _KEY_ORDER[tag] and not (tag == 2 and order == _QUOTED_ORDER):
            return False
        nested = _NESTED_ORDER.get(tag)
        if nested is not None and tuple(fields[nested[0]]) != nested[1]:
            return False
    return True


def _d_trades(value: Any, name: str) -> Any:
    if type(value) is not tuple:
        raise SchemaError(f"{name} must be an array")
    if len(value) > MAX_TRADES:
        raise SchemaError(f"more than {MAX_TRADES} trades")
    out: list[Trade] = []
    for entry in value:
        if type(entry) is not tuple or len(entry) != 2:
            raise SchemaError("a trade must be an array of two")
        tag, fields = entry
        if type(tag) is not int:
            raise SchemaError("a trade tag must be an int")
        schema = TRADES.get(tag)
        if schema is None:
            raise UnknownType(f"unknown trade tag {tag}")
        out.append(schema.decode(fields))
    trades = tuple(out)
    if _as_encoded(value):
        _keep(trades, value)
    return trades


TRADE_LIST = Kind(_e_trades, _d_trades)
_OPT_SIG = optional(SIG)
_OPT_U64 = optional(U64)


def _signed(update: Any) -> SignedState:
    if type(update.signed) is not SignedState:
        raise Unencodable("signed must be a SignedState")
    return update.signed


SIGNED_UPDATE = Schema("SignedUpdate", SignedUpdate, (
    Field("state", nested(STATE), lambda u: _signed(u).state),
    Field("signatures", pair_of(_OPT_SIG), lambda u: _signed(u).signatures),
    Field("trades", TRADE_LIST),
    Field("withdrawal", optional(nested(WITHDRAWAL))),
    Field("withdrawal_signatures", optional(pair_of(SIG))),
), build=lambda v: SignedUpdate(
    SignedState(v["state"], v["signatures"]), v["trades"], v["withdrawal"],
    v["withdrawal_signatures"],
))  # fmt: skip


def _updates(limit: int) -> Kind:
    """An array of at most ``limit`` signed updates (a Reestablish's recent history)."""

    def encode(value: Any) -> Any:
        if type(value) is not tuple or len(value) > limit:
            raise Unencodable(f"expected a tuple of at most {limit} updates")
        return tuple(SIGNED_UPDATE.encode(u) for u in value)

    def decode(value: Any, name: str) -> Any:
        if type(value) is not tuple or len(value) > limit:
            raise SchemaError(f"{name} must be an array of at most {limit} updates")
        return tuple(SIGNED_UPDATE.decode(u) for u in value)

    return Kind(encode, decode)


#: message tag -> schema
MESSAGES: dict[int, Schema] = {
    1: Schema("OpenProposal", OpenProposal, (
        Field("params", nested(PARAMS)),
        Field("deposits", pair_of(U256)),
        Field("signature", SIG),
    )),
    2: Schema("OpenAccept", OpenAccept, (Field("channel_id", HASH), Field("signature", SIG))),
    3: Schema("UpdateRequest", UpdateRequest, (
        Field("channel_id", HASH),
        Field("request_id", U64),
        Field("trades", TRADE_LIST),
    )),
    4: Schema("Proposal", Proposal, (
        Field("channel_id", HASH),
        Field("base_version", U64),
        Field("trades", TRADE_LIST),
        Field("state", nested(STATE)),
        Field("signature", SIG),
        Field("request_id", _OPT_U64),
        Field("withdrawal_signature", _OPT_SIG),
    )),
    5: Schema("Accept", Accept, (
        Field("channel_id", HASH),
        Field("version", U64),
        Field("signature", SIG),
        Field("withdrawal_signature", _OPT_SIG),
    )),
    6: Schema("Reject", Reject, (
        Field("channel_id", HASH),
        Field("version", _OPT_U64),
        Field("request_id", _OPT_U64),
        Field("rule", bounded_text(MAX_RULE_LEN)),
        Field("reason", bounded_text(MAX_REASON_LEN)),
    )),
    7: Schema("Reestablish", Reestablish, (
        Field("channel_id", HASH),
        Field("state", nested(STATE)),
        Field("signatures", pair_of(SIG)),
        Field("book", nested(BOOK)),
        Field("recent", _updates(RESYNC_HISTORY)),
    )),
    8: Schema("OpenCounter", OpenCounter, (
        Field("channel_id", HASH),
        Field("rule", bounded_text(MAX_RULE_LEN)),
        Field("reason", bounded_text(MAX_REASON_LEN)),
        Field("counter", nested(COUNTER_OFFER)),
    )),
}  # fmt: skip
MESSAGE_TYPES: tuple[type, ...] = tuple(schema.cls for schema in MESSAGES.values())
MESSAGE_TAGS = {schema.cls: (tag, schema) for tag, schema in MESSAGES.items()}

TRADES_RECORD = Schema(
    "trades record", tuple, (Field("trades", TRADE_LIST, lambda t: t),), build=lambda v: v["trades"]
)

#: record tag -> schema (store records, never accepted from the peer).
RECORDS: dict[int, Schema] = {
    32: SIGNED_UPDATE, 33: PARAMS, 34: STATE, 35: BOOK, 36: TRADES_RECORD,
}  # fmt: skip
