"""Every malformed input of docs/THREATS.md section 6.2 gets its typed error; fuzzing finds no
other."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.core import wire
from channels.core.errors import (
    FrameTooLarge,
    InvalidAmount,
    InvalidField,
    MalformedMessage,
    RemoteError,
    SchemaError,
    UnencodableMessage,
    UnknownType,
    UnsupportedVersion,
    WireError,
)
from channels.core.messages import (
    Accept,
    Message,
    OpenAccept,
    OpenCounter,
    OpenProposal,
    Proposal,
    Reestablish,
    Reject,
    UpdateRequest,
)
from channels.core.model import OptionKind, Params, Position, State
from channels.core.options import Finalize, Pay
from channels.core.positions import MAX_SLOTS, BookSnapshot
from channels.core.terms import CounterOffer

from . import strategies as s

CID = bytes(range(32))
SIG = b"\x11" * 65
STATE = State(CID, 7, (100, 5), (105, 0), (0, 0), 0, bytes(32), 0, False)
PROPOSAL = Proposal(CID, 6, (Pay(0, 100),), STATE, SIG, request_id=3)
ACCEPT = Accept(CID, 7, SIG)
PARAMS = Params(1, b"\x0a" * 20, bytes(20), 18, (b"\x01" * 20, b"\x02" * 20), 3600, b"\x03" * 20, 9)
OPEN = OpenProposal(PARAMS, (10**18, 10**18), SIG)
BOOK = BookSnapshot(1, ((0, Position(1, bytes(32), OptionKind.PUT, 1, 2, 3, 0, 4)),))
REESTABLISH = Reestablish(CID, STATE, (SIG, SIG), BOOK)
COUNTER = OpenCounter(CID, "DepositAboveTerms", "at most 5", CounterOffer(5, 3600))

Path = tuple[Any, ...]
DELETE = object()


def raw_of(msg: Message) -> list[Any]:
    """The msgpack structure of a valid message, as mutable lists and dicts."""
    return msgpack.unpackb(wire.encode_message(msg), raw=False)  # type: ignore[no-any-return]


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def mutated(msg: Message, path: Path, value: object) -> bytes:
    """The encoding of ``msg`` with the node at ``path`` replaced by ``value`` (or deleted)."""
    obj = raw_of(msg)
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return pack(obj)


def map_bytes(pairs: list[tuple[object, object]]) -> bytes:
    """A msgpack map written pair by pair (so it can repeat a key)."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(pack(k) + pack(v) for k, v in pairs)


def expect(
    exc_type: type[WireError], data: object, decode: Callable[[bytes], object] = wire.decode_message
) -> WireError:
    with pytest.raises(WireError) as info:
        decode(data)  # type: ignore[arg-type]
    assert type(info.value) is exc_type, repr(info.value)
    assert isinstance(info.value, RemoteError)
    return info.value


F = 2  # index of the fields map in the envelope
TRADE0 = (F, "trades", 0, 1)  # the fields of the Pay trade in PROPOSAL
AMOUNT = (*TRADE0, "amount")
VERSION = (F, "version")  # of ACCEPT
TERMS = (F, "counter")  # of COUNTER
EXT = msgpack.ExtType(1, b"x")
TS = msgpack.Timestamp(1, 0)

CASES: list[tuple[str, Callable[[], bytes], type[WireError]]] = [
    # Not msgpack / trailing bytes / ExtType / Timestamp
    ("empty", lambda: b"", MalformedMessage),
    ("reserved byte 0xc1", lambda: b"\xc1", MalformedMessage),
    ("truncated", lambda: wire.encode_message(ACCEPT)[:-1], MalformedMessage),
    ("http", lambda: b"GET / HTTP/1.1\r\n\r\n", MalformedMessage),
    ("trailing byte", lambda: wire.encode_message(ACCEPT) + b"\x00", MalformedMessage),
    ("two messages", lambda: wire.encode_message(ACCEPT) * 2, MalformedMessage),
    ("ExtType top", lambda: pack(EXT), MalformedMessage),
    ("ExtType field", lambda: mutated(ACCEPT, (F, "channel_id"), EXT), MalformedMessage),
    ("Timestamp top", lambda: pack(TS), MalformedMessage),
    ("Timestamp field", lambda: mutated(ACCEPT, VERSION, TS), MalformedMessage),
    ("invalid utf-8", lambda: b"\xa2\xff\xfe", MalformedMessage),
    # Deep nesting
    ("1e5 nested arrays", lambda: b"\x91" * 100_000 + b"\xc0", MalformedMessage),
    ("1e5 nested maps", lambda: b"\x81\xa1k" * 100_000 + b"\xc0", MalformedMessage),
    (
        "1e5 nested in fields",
        lambda: b"\x93\x01\x05" + b"\x91" * 100_000 + b"\xc0",
        MalformedMessage,
    ),
    # Keys
    ("int key", lambda: mutated(ACCEPT, (F, 1), 5), SchemaError),
    ("None key", lambda: b"\x93\x01\x05" + map_bytes([(None, 1)]), SchemaError),
    ("bytes key", lambda: mutated(ACCEPT, (F, b"extra"), 5), SchemaError),
    ("nested int key", lambda: mutated(PROPOSAL, (F, "state", 7), 5), SchemaError),
    (
        "duplicate key",
        lambda: (
            b"\x93\x01\x05"
            + map_bytes(
                [
                    ("channel_id", CID),
                    ("version", 7),
                    ("version", 8),
                    ("signature", SIG),
                    ("withdrawal_signature", None),
                ]
            )
        ),
        SchemaError,
    ),
    ("unknown key", lambda: mutated(ACCEPT, (F, "extra"), 1), SchemaError),
    ("missing key", lambda: mutated(ACCEPT, VERSION, DELETE), SchemaError),
    ("missing nested key", lambda: mutated(PROPOSAL, (F, "state", "locked"), DELETE), SchemaError),
    (
        "missing optional key",
        lambda: mutated(ACCEPT, (F, "withdrawal_signature"), DELETE),
        SchemaError,
    ),
    ("unknown trade key", lambda: mutated(PROPOSAL, (*TRADE0, "memo"), "x"), SchemaError),
    # Wrong types
    ("float amount", lambda: mutated(PROPOSAL, AMOUNT, 100.0), SchemaError),
    ("float version", lambda: mutated(ACCEPT, VERSION, 7.0), SchemaError),
    ("float balance", lambda: mutated(PROPOSAL, (F, "state", "balances", 0), 1.5), SchemaError),
    ("True version", lambda: mutated(ACCEPT, VERSION, True), SchemaError),
    ("True payer", lambda: mutated(PROPOSAL, (*TRADE0, "payer"), True), SchemaError),
    ("False request id", lambda: mutated(PROPOSAL, (F, "request_id"), False), SchemaError),
    ("True schema version", lambda: pack([True, 5, raw_of(ACCEPT)[F]]), SchemaError),
    ("True tag", lambda: pack([1, True, raw_of(ACCEPT)[F]]), SchemaError),
    ("int for bool", lambda: mutated(PROPOSAL, (F, "state", "is_final"), 0), SchemaError),
    ("int 1 for bool", lambda: mutated(PROPOSAL, (F, "state", "is_final"), 1), SchemaError),
    ("str version", lambda: mutated(ACCEPT, VERSION, "7"), SchemaError),
    ("str amount", lambda: mutated(PROPOSAL, AMOUNT, "100"), SchemaError),
    ("str channel id", lambda: mutated(ACCEPT, (F, "channel_id"), CID.hex()), SchemaError),
    ("nil signature", lambda: mutated(ACCEPT, (F, "signature"), None), SchemaError),
    # uint256 as bin of exactly 32 bytes
    ("31-byte amount", lambda: mutated(PROPOSAL, AMOUNT, bytes(30) + b"\x64"), SchemaError),
    ("33-byte amount", lambda: mutated(PROPOSAL, AMOUNT, bytes(32) + b"\x64"), SchemaError),
    ("int amount", lambda: mutated(PROPOSAL, AMOUNT, 100), SchemaError),
    ("int locked", lambda: mutated(PROPOSAL, (F, "state", "locked"), 0), SchemaError),
    ("negative version", lambda: mutated(ACCEPT, VERSION, -1), SchemaError),
    ("negative request id", lambda: mutated(PROPOSAL, (F, "request_id"), -1), SchemaError),
    ("int64 min", lambda: mutated(ACCEPT, VERSION, -(2**63)), SchemaError),
    # Other lengths
    ("31-byte channel id", lambda: mutated(ACCEPT, (F, "channel_id"), CID[:31]), SchemaError),
    ("33-byte channel id", lambda: mutated(ACCEPT, (F, "channel_id"), CID + b"\0"), SchemaError),
    ("64-byte signature", lambda: mutated(ACCEPT, (F, "signature"), SIG[:64]), SchemaError),
    ("66-byte signature", lambda: mutated(ACCEPT, (F, "signature"), SIG + b"\0"), SchemaError),
    # Ranges the data model refuses
    (
        "balance 2**128",
        lambda: mutated(PROPOSAL, (F, "state", "balances", 0), (2**128).to_bytes(32, "big")),
        SchemaError,
    ),
    (
        "position count 2**32",
        lambda: mutated(PROPOSAL, (F, "state", "position_count"), 2**32),
        SchemaError,
    ),
    ("payer 2", lambda: mutated(PROPOSAL, (*TRADE0, "payer"), 2), SchemaError),
    (
        "high_water above MAX_SLOTS",
        lambda: mutated(REESTABLISH, (F, "book", "high_water"), MAX_SLOTS + 1),
        SchemaError,
    ),
    (
        "slot MAX_SLOTS",
        lambda: mutated(REESTABLISH, (F, "book", "slots", 0, 0), MAX_SLOTS),
        SchemaError,
    ),
    (
        "position kind 2",
        lambda: mutated(REESTABLISH, (F, "book", "slots", 0, 1, "kind"), 2),
        SchemaError,
    ),
    # Envelope shape
    ("top-level map", lambda: pack({"v": 1}), SchemaError),
    ("top-level int", lambda: pack(1), SchemaError),
    ("empty array", lambda: pack([]), SchemaError),
    ("short envelope", lambda: pack([1, 5]), SchemaError),
    ("long envelope", lambda: pack([1, 5, raw_of(ACCEPT)[F], 0]), SchemaError),
    ("fields not a map", lambda: pack([1, 5, [CID, 7, SIG, None]]), SchemaError),
    ("trades not an array", lambda: mutated(PROPOSAL, (F, "trades"), {}), SchemaError),
    ("trade of three", lambda: mutated(PROPOSAL, (F, "trades", 0), [1, {}, 0]), SchemaError),
    (
        "too many trades",
        lambda: mutated(PROPOSAL, (F, "trades"), [[7, {}]] * (wire.MAX_TRADES + 1)),
        SchemaError,
    ),
    (
        "rule too long",
        lambda: pack([1, 6, {**raw_of(Reject(CID, None, None, "r", "x"))[F], "rule": "r" * 65}]),
        SchemaError,
    ),
    # A counter-offer: strict like every message, and its figures checked when read
    ("counter without terms", lambda: mutated(COUNTER, (F, "counter"), {}), SchemaError),
    (
        "counter period 0",
        lambda: mutated(COUNTER, (F, "counter", "challenge_period"), 0),
        SchemaError,
    ),
    ("counter deposit as int", lambda: mutated(COUNTER, (*TERMS, "deposit"), 5), SchemaError),
    ("counter extra key", lambda: mutated(COUNTER, (*TERMS, "premium"), 1), SchemaError),
    ("counter reason too long", lambda: mutated(COUNTER, (F, "reason"), "x" * 4097), SchemaError),
    # Tags and versions
    ("unknown tag 9", lambda: pack([1, 9, raw_of(ACCEPT)[F]]), UnknownType),
    ("unknown tag 0", lambda: pack([1, 0, {}]), UnknownType),
    ("negative tag", lambda: pack([1, -1, {}]), UnknownType),
    ("record tag", lambda: wire.encode_state(STATE), UnknownType),
    ("unknown trade tag", lambda: mutated(PROPOSAL, (F, "trades", 0, 0), 99), UnknownType),
    ("schema version 99", lambda: pack([99, 5, raw_of(ACCEPT)[F]]), UnsupportedVersion),
    ("schema version 0", lambda: pack([0, 5, raw_of(ACCEPT)[F]]), UnsupportedVersion),
    ("schema version 2, new shape", lambda: pack([2, 5, {}, "more"]), UnsupportedVersion),
    ("schema version 2**64-1", lambda: pack([2**64 - 1]), UnsupportedVersion),
    # Size
    ("above MAX_MESSAGE", lambda: bytes(wire.MAX_MESSAGE + 1), FrameTooLarge),
]


@pytest.mark.parametrize(("name", "make", "error"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_gets_its_typed_error(
    name: str, make: Callable[[], bytes], error: type[WireError]
) -> None:
    expect(error, make())


def test_model_refusal_is_chained() -> None:
    too_big = (2**128).to_bytes(32, "big")
    exc = expect(SchemaError, mutated(PROPOSAL, (F, "state", "locked"), too_big))
    assert isinstance(exc.__cause__, InvalidAmount)
    op = raw_of(OPEN)
    op[F]["params"]["participants"][1] = op[F]["params"]["participants"][0]
    exc = expect(SchemaError, pack(op))
    assert isinstance(exc.__cause__, InvalidField)


def test_not_bytes() -> None:
    expect(MalformedMessage, None)
    expect(MalformedMessage, 12)


def test_records_are_not_messages_and_vice_versa() -> None:
    expect(UnknownType, wire.encode_message(ACCEPT), wire.decode_update)
    expect(UnknownType, wire.encode_params(PARAMS), wire.decode_state)
    expect(UnknownType, wire.encode_trades((Finalize(),)), wire.decode_book)
    expect(UnknownType, wire.encode_book(BOOK), wire.decode_trades)
    expect(UnknownType, wire.encode_state(STATE), wire.decode_params)


def test_bytearray_and_memoryview_inputs_decode() -> None:
    data = wire.encode_message(ACCEPT)
    assert wire.decode_message(bytearray(data)) == ACCEPT  # type: ignore[arg-type]
    assert wire.decode_message(memoryview(data)) == ACCEPT  # type: ignore[arg-type]


# Encoding refuses what it cannot carry (a LocalError) ---------------------------------
BAD_TO_ENCODE: list[tuple[str, object]] = [
    ("negative amount", UpdateRequest(CID, 1, (Pay(0, -1),))),
    ("amount 2**256", UpdateRequest(CID, 1, (Pay(0, 2**256),))),
    ("float amount", UpdateRequest(CID, 1, (Pay(0, 1.5),))),  # type: ignore[arg-type]
    ("bool payer", UpdateRequest(CID, 1, (Pay(True, 1),))),
    ("request id 2**64", UpdateRequest(CID, 2**64, ())),
    ("trades as list", UpdateRequest(CID, 1, [Pay(0, 1)])),  # type: ignore[arg-type]
    ("not a trade", UpdateRequest(CID, 1, (STATE,))),  # type: ignore[arg-type]
    ("short signature", Accept(CID, 1, SIG[:64])),
    ("short channel id", OpenAccept(CID[:31], SIG)),
    ("long rule", Reject(CID, None, None, "r" * (wire.MAX_RULE_LEN + 1), "")),
    ("long reason", Reject(CID, None, None, "", "x" * (wire.MAX_REASON_LEN + 1))),
    ("surrogate", Reject(CID, None, None, "", "\ud800")),
    ("counter with a long rule", OpenCounter(CID, "r" * 65, "", CounterOffer(1, 3600))),
    (
        "high_water above MAX_SLOTS",
        Reestablish(CID, STATE, (SIG, SIG), BookSnapshot(MAX_SLOTS + 1, ())),
    ),
    (
        "slot MAX_SLOTS",
        Reestablish(CID, STATE, (SIG, SIG), BookSnapshot(1, ((MAX_SLOTS, BOOK.slots[0][1]),))),
    ),
    ("not a message", STATE),
    ("not even a dataclass", object()),
]


@pytest.mark.parametrize(("name", "msg"), BAD_TO_ENCODE, ids=[c[0] for c in BAD_TO_ENCODE])
def test_encoder_refuses(name: str, msg: object) -> None:
    with pytest.raises(UnencodableMessage):
        wire.encode_message(msg)  # type: ignore[arg-type]


# Fuzzing -----------------------------------------------------------------------------------------
DECODERS: list[Callable[[bytes], object]] = [
    wire.decode_message,
    wire.decode_update,
    wire.decode_params,
    wire.decode_state,
    wire.decode_book,
    wire.decode_trades,
]


def only_wire_errors(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except WireError:
            pass


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_wire_errors(data: bytes) -> None:
    only_wire_errors(data)


@given(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 32, 33, 34, 35, 36]), st.binary(max_size=512))
def test_random_fields_after_a_valid_envelope_head(tag: int, tail: bytes) -> None:
    only_wire_errors(b"\x93\x01" + bytes([tag]) + tail)


@given(s.messages, st.data())
def test_corrupted_encodings_raise_only_wire_errors(msg: Message, data: st.DataObject) -> None:
    encoded = bytearray(wire.encode_message(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(encoded) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip":
            encoded[where] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "delete":
            del encoded[where]
        elif op == "insert":
            encoded.insert(where, data.draw(st.integers(0, 255)))
        else:
            del encoded[where:]
        if not encoded:
            break
    only_wire_errors(bytes(encoded))


def _paths(node: object, prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(value, (*prefix, i)))
    return out


TRICKY: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    2**32,
    2**64 - 1,
    -(2**63),
    0.0,
    1.5,
    float("nan"),
    "",
    "1",
    b"",
    bytes(20),
    bytes(31),
    bytes(32),
    bytes(33),
    bytes(65),
    b"\xff" * 32,
    [],
    {},
    [0, 0],
    [b"\xff" * 32, b"\xff" * 32],
    [7, {}],
    {"x": 1},
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=70),
)
values = st.one_of(
    st.sampled_from(TRICKY),
    st.recursive(
        leaves,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=8,
    ),
)


@given(s.messages | s.signed_updates, st.data())
def test_schema_mutations_raise_only_schema_level_errors(obj: Any, data: st.DataObject) -> None:
    """Valid msgpack with one node replaced: a schema-level error, or a valid decode."""
    if isinstance(obj, wire.MESSAGE_TYPES):
        raw: Any = raw_of(obj)
        decode: Callable[[bytes], object] = wire.decode_message
    else:
        raw = msgpack.unpackb(wire.encode_update(obj), raw=False)
        decode = wire.decode_update
    paths = _paths(raw)
    path = data.draw(st.sampled_from(paths))
    raw = copy.deepcopy(raw)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if isinstance(node, dict) and data.draw(st.booleans()):
        del node[path[-1]]
    else:
        node[path[-1]] = data.draw(values)
    try:
        decode(pack(raw))
    except (SchemaError, UnknownType, UnsupportedVersion):
        pass
