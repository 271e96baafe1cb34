"""The wire codec: protocol objects to msgpack bytes and back (sans-IO), driven by one schema table.

Envelope
--------
Every encoded object is the msgpack array ``[schema_version, tag, fields]``: ``schema_version`` is
:data:`PROTOCOL_VERSION` (1), ``tag`` a small int naming the type, ``fields`` a map with exactly
the string keys of the type's schema below, in that order (no key missing, unknown or repeated).
Tags 1-7 are peer messages (:func:`decode_message` takes only these); 32-36 are store records,
each read by its own decoder. Nested maps (Params, State, Position, Book, Withdrawal, Attestation)
carry no envelope. ``trades`` is an array of at most :data:`MAX_TRADES` pairs
``[trade_tag, fields]``. The tables in :mod:`channels.core.schema` (``MESSAGES``, ``RECORDS``,
``TRADES``) are the format, one line per field; ``docs/PROTOCOL.md`` section 9 shows them too.

Value kinds
-----------
* ``U256`` (amounts, prices, quantities, chain id, nonce): a 32-byte big-endian ``bin``, never a
  msgpack int (msgpack ints stop at 64 bits).
* ``U64`` (versions, expiries, ids, request ids, decimals, the challenge period): a non-negative
  msgpack int, never a bool; ``INDEX`` (participant, writer, payer) is 0 or 1.
* ``ADDRESS``: 20-byte ``bin``; ``HASH`` (channel ids, roots, underlyings): 32-byte ``bin``;
  ``SIG``: 65-byte ``bin`` (the signature's contents are checked by :mod:`channels.core.signing`).
* ``BOOL`` (``is_final``): a msgpack bool, never an int. ``rule`` and ``reason``: str of at most
  :data:`MAX_RULE_LEN` / :data:`MAX_REASON_LEN` characters. Pairs: arrays of exactly two.

Decoding is strict: no floats, ExtType or Timestamp, no trailing bytes, no non-str map keys, no
wrong ``bin`` lengths; msgpack's own nesting limit stops deep nesting. Every decode failure is a
:class:`~channels.core.errors.WireError` (Remote): :class:`MalformedMessage` for bytes that are not
one clean msgpack object, :class:`SchemaError` for a schema or range violation (the data model's
own checks included, chained as the cause), :class:`UnsupportedVersion`, :class:`UnknownType`,
:class:`FrameTooLarge` (a payload above :data:`MAX_MESSAGE`). Encoding a value the format cannot
carry raises :class:`~channels.core.errors.UnencodableMessage` (Local).

Payloads are not framed here: the transport (``channels/transport/``) carries each message in
encrypted frames and refuses a message above :data:`MAX_MESSAGE`. At about 225 bytes per position,
a ``Reestablish`` carries a book of up to about 4,500 open positions. Store records may be up to
:data:`MAX_RECORD` bytes.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgpack

from channels.core.errors import (
    ChannelError,
    FrameTooLarge,
    MalformedMessage,
    RuleViolation,
    SchemaError,
    UnencodableMessage,
    UnknownType,
    UnsupportedVersion,
)
from channels.core.messages import Message
from channels.core.model import Params, Position, SignedUpdate, State
from channels.core.options import MAX_TRADES, OpenOption, Trade
from channels.core.positions import BookSnapshot, check_high_water, check_slot
from channels.core.schema import (
    BOOK,
    MAX_REASON_LEN,
    MAX_RULE_LEN,
    MESSAGE_TAGS,
    MESSAGE_TYPES,
    MESSAGES,
    PARAMS,
    RECORDS,
    SIGNED_UPDATE,
    STATE,
    TRADES_RECORD,
    Schema,
)
from channels.core.wire_kinds import Unencodable

__all__ = [
    "MAX_MESSAGE",
    "MAX_REASON_LEN",
    "MAX_RECORD",
    "MAX_RULE_LEN",
    "MAX_TRADES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "UpdateRecord",
    "decode_book",
    "decode_message",
    "decode_params",
    "decode_state",
    "decode_trades",
    "decode_update",
    "encode_book",
    "encode_message",
    "encode_params",
    "encode_state",
    "encode_trades",
    "encode_update",
]

PROTOCOL_VERSION = 1
#: Largest peer message (bytes): the decoder refuses more, and so does the transport, before it
#: buffers the rest of a message.
MAX_MESSAGE = 1 << 20
#: Largest store record (bytes): a SignedUpdate or a book snapshot read back from disk.
MAX_RECORD = 1 << 26


# Encoding ---------------------------------------------------------------------------------------
#: What encoding an object that does not fit its schema raises (all become UnencodableMessage).
_ENCODE_ERRORS = (Unencodable, RuleViolation, AttributeError, TypeError, ValueError, OverflowError)


def pack_envelope(tag: int, schema: Schema, obj: object) -> bytes:
    """``obj`` encoded by ``schema`` in the envelope ``[1, tag, fields]`` (the quote codec uses
    it too)."""
    try:
        fields = schema.encode(obj)
        packed: bytes = msgpack.packb((PROTOCOL_VERSION, tag, fields), use_bin_type=True)
    except _ENCODE_ERRORS as exc:
        raise UnencodableMessage(f"cannot encode {type(obj).__name__}: {exc}") from exc
    return packed


def encode_message(msg: Message) -> bytes:
    """The envelope ``[1, tag, fields]`` of a peer message, as msgpack bytes."""
    entry = MESSAGE_TAGS.get(type(msg))
    if entry is None:
        raise UnencodableMessage(f"not a protocol message: {type(msg).__name__}")
    return pack_envelope(entry[0], entry[1], msg)


def encode_update(update: SignedUpdate) -> bytes:
    """A store record of a signed update (tag 32)."""
    return pack_envelope(32, SIGNED_UPDATE, update)


class UpdateRecord:
    """A signed update's store record (:func:`encode_update`), encoded once with what writing
    the positions it opens needs: :meth:`position_record` gives the record of one of them alone
    in its slot (what :func:`encode_book` gives for that one-slot book, byte for byte) from the
    position's encoding already made for the update, instead of encoding the position again."""

    __slots__ = ("_opened", "blob")

    def __init__(self, update: SignedUpdate) -> None:
        try:
            fields = SIGNED_UPDATE.encode(update)
        except _ENCODE_ERRORS as exc:
            raise UnencodableMessage(f"cannot encode {type(update).__name__}: {exc}") from exc
        self.blob: bytes = msgpack.packb((PROTOCOL_VERSION, 32, fields), use_bin_type=True)
        #: position id -> (the position opened, its encoded fields)
        self._opened: dict[int, tuple[Position, Any]] = {
            trade.position.id: (trade.position, encoded[1]["position"])
            for trade, encoded in zip(update.trades, fields["trades"], strict=True)
            if type(trade) is OpenOption
        }

    def position_record(self, slot: int, position: Position) -> bytes:
        opened = self._opened.get(position.id)
        if opened is None or opened[0] is not position:  # not one this update opened
            return encode_book(BookSnapshot(slot + 1, ((slot, position),)))
        try:
            high_water = check_high_water(slot + 1)
            fields = {"high_water": high_water, "slots": ((check_slot(slot), opened[1]),)}
        except RuleViolation as exc:
            raise UnencodableMessage(f"cannot encode BookSnapshot: {exc}") from exc
        packed: bytes = msgpack.packb((PROTOCOL_VERSION, 35, fields), use_bin_type=True)
        return packed


def encode_params(params: Params) -> bytes:
    """A store record of channel parameters (tag 33)."""
    return pack_envelope(33, PARAMS, params)


def encode_state(state: State) -> bytes:
    """A store record of a state (tag 34)."""
    return pack_envelope(34, STATE, state)


def encode_book(book: BookSnapshot) -> bytes:
    """A store record of a position book snapshot (tag 35)."""
    return pack_envelope(35, BOOK, book)


def encode_trades(trades: tuple[Trade, ...]) -> bytes:
    """A store record of a batch of trades (tag 36): ``{"trades": [...]}``."""
    return pack_envelope(36, TRADES_RECORD, trades)


# Decoding ---------------------------------------------------------------------------------------
def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise MalformedMessage(f"msgpack ExtType {code} is not allowed")


def _map_hook(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise SchemaError("a map has a duplicate key")
    for key in result:
        if type(key) is not str:
            raise SchemaError("a map key must be a string")
    return result


def _unpack(data: bytes, limit: int) -> Any:
    try:
        size = len(data)
    except TypeError:
        raise MalformedMessage("expected bytes") from None
    if size > limit:
        raise FrameTooLarge(f"{size} bytes is above the limit of {limit}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=False,
            ext_hook=_reject_ext,
            object_pairs_hook=_map_hook,
            max_ext_len=0,  # also refuses Timestamp (ext -1), which bypasses ext_hook
        )
    except ChannelError:
        raise
    except ValueError as exc:  # FormatError, StackError, ExtraData, UnicodeDecodeError, ...
        # strict_map_key refuses keys other than str/bytes in C, before our hook sees them
        # ("<type> is not allowed for map key when strict_map_key=True"): a schema error.
        if type(exc) is ValueError and "not allowed for map key" in str(exc):
            raise SchemaError("a map key must be a string") from exc
        raise MalformedMessage(f"not one valid msgpack object: {type(exc).__name__}") from exc
    except Exception as exc:  # e.g. TypeError for an object that is not bytes-like
        raise MalformedMessage(f"not one valid msgpack object: {type(exc).__name__}") from exc


def open_envelope(data: bytes, limit: int, schemas: dict[int, Schema], what: str) -> Any:
    """Check the envelope and decode its fields with the schema its tag names."""
    obj = _unpack(data, limit)
    if type(obj) is not tuple or not obj:
        raise SchemaError("a message is the array [schema_version, tag, fields]")
    version = obj[0]
    if type(version) is not int:
        raise SchemaError("schema_version must be an int")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(f"schema version {version} (this codec speaks {PROTOCOL_VERSION})")
    if len(obj) != 3:
        raise SchemaError("a message is the array [schema_version, tag, fields]")
    tag = obj[1]
    if type(tag) is not int:
        raise SchemaError("tag must be an int")
    schema = schemas.get(tag)
    if schema is None:
        raise UnknownType(f"{what} tag {tag} is not known here")
    try:
        return schema.decode(obj[2])
    except RuleViolation as exc:  # the model's own InvalidAmount / InvalidField
        raise SchemaError(f"{type(exc).__name__}: {exc}") from exc


def decode_message(data: bytes) -> Message:
    """The peer message in ``data`` (one payload of at most :data:`MAX_MESSAGE` bytes).

    Raises a :class:`~channels.core.errors.WireError` subclass for anything but one valid message.
    """
    message: Message = open_envelope(data, MAX_MESSAGE, MESSAGES, "message")
    return message


def _decode_record(data: bytes, tag: int) -> Any:
    return open_envelope(data, MAX_RECORD, {tag: RECORDS[tag]}, "record")


def decode_update(data: bytes) -> SignedUpdate:
    """A signed update written by :func:`encode_update`."""
    update: SignedUpdate = _decode_record(data, 32)
    return update


def decode_params(data: bytes) -> Params:
    """Channel parameters written by :func:`encode_params`."""
    params: Params = _decode_record(data, 33)
    return params


def decode_state(data: bytes) -> State:
    """A state written by :func:`encode_state`."""
    state: State = _decode_record(data, 34)
    return state


def decode_book(data: bytes) -> BookSnapshot:
    """A book snapshot written by :func:`encode_book`."""
    book: BookSnapshot = _decode_record(data, 35)
    return book


def decode_trades(data: bytes) -> tuple[Trade, ...]:
    """A batch of trades written by :func:`encode_trades`."""
    trades: tuple[Trade, ...] = _decode_record(data, 36)
    return trades
