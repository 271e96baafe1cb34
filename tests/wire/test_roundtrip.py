"""decode(encode(x)) == x for every message and record type, with random valid contents."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.core import model, wire
from channels.core.errors import UnencodableMessage
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
from channels.core.model import SignedUpdate
from channels.core.options import OpenOption, Pay, Trade
from channels.core.positions import BookSnapshot, PositionBook

from . import strategies as s


def _check_message(msg: Message) -> None:
    data = wire.encode_message(msg)
    back = wire.decode_message(data)
    assert back == msg
    assert type(back) is type(msg)
    assert wire.encode_message(back) == data  # the encoding is stable


@given(s.open_proposals)
def test_open_proposal_round_trip(msg: OpenProposal) -> None:
    _check_message(msg)
    back = wire.decode_message(wire.encode_message(msg))
    assert isinstance(back, OpenProposal)
    assert back.params.channel_id == msg.params.channel_id


@given(s.open_accepts)
def test_open_accept_round_trip(msg: OpenAccept) -> None:
    _check_message(msg)


@given(s.update_requests)
def test_update_request_round_trip(msg: UpdateRequest) -> None:
    _check_message(msg)


@given(s.proposals)
def test_proposal_round_trip(msg: Proposal) -> None:
    _check_message(msg)


@given(s.accepts)
def test_accept_round_trip(msg: Accept) -> None:
    _check_message(msg)


@given(s.rejects)
def test_reject_round_trip(msg: Reject) -> None:
    _check_message(msg)


@given(s.reestablishes)
def test_reestablish_round_trip(msg: Reestablish) -> None:
    _check_message(msg)


@given(s.open_counters)
def test_open_counter_round_trip(msg: OpenCounter) -> None:
    _check_message(msg)


@given(s.signed_updates)
def test_signed_update_round_trip(update: SignedUpdate) -> None:
    data = wire.encode_update(update)
    assert wire.decode_update(data) == update
    assert wire.encode_update(wire.decode_update(data)) == data


@given(s.signed_updates, st.integers(0, 2**20 - 1))
def test_update_record_is_the_update_and_its_positions_encoded_once(
    update: SignedUpdate, slot: int
) -> None:
    """The store's record of an update and of each position it opens alone in a slot are, byte
    for byte, what encode_update and encode_book give (the position is encoded only once)."""
    record = wire.UpdateRecord(update)
    assert record.blob == wire.encode_update(update)
    opened = [t.position for t in update.trades if isinstance(t, OpenOption)]
    for position in opened:
        one = BookSnapshot(slot + 1, ((slot, position),))
        assert record.position_record(slot, position) == wire.encode_book(one)
        # The same position as another object (e.g. decoded from a row): encoded afresh.
        twin = dataclasses.replace(position)
        assert record.position_record(slot, twin) == wire.encode_book(one)
    for position in opened[:1]:
        with pytest.raises(UnencodableMessage):
            record.position_record(2**20, position)  # beyond the largest book


@given(s.params())
def test_params_round_trip(params: model.Params) -> None:
    back = wire.decode_params(wire.encode_params(params))
    assert back == params
    assert back.channel_id == params.channel_id


@given(s.states)
def test_state_round_trip(state: model.State) -> None:
    back = wire.decode_state(wire.encode_state(state))
    assert back == state
    assert type(back.is_final) is bool


@given(s.books)
def test_book_round_trip(book: BookSnapshot) -> None:
    back = wire.decode_book(wire.encode_book(book))
    assert back == book
    for (_, pos), (_, orig) in zip(back.slots, book.slots, strict=True):
        assert type(pos.kind) is model.OptionKind and pos.kind is orig.kind


@given(s.trade_batches)
def test_trades_round_trip(trades: tuple[Trade, ...]) -> None:
    back = wire.decode_trades(wire.encode_trades(trades))
    assert back == trades
    assert [type(t) for t in back] == [type(t) for t in trades]


@given(s.positions, s.positions)
def test_real_book_snapshot_round_trip(a: model.Position, b: model.Position) -> None:
    book = PositionBook()
    book.add(a)
    if b.id != a.id:
        book.add(b)
    snap = book.snapshot()
    back = wire.decode_book(wire.encode_book(snap))
    assert PositionBook.from_snapshot(back).root == book.root


# The documented tag table and key sets (module docstring) ---------------------------------------
TAGS_AND_KEYS = {
    OpenProposal: (1, {"params", "deposits", "signature"}),
    OpenAccept: (2, {"channel_id", "signature"}),
    UpdateRequest: (3, {"channel_id", "request_id", "trades"}),
    Proposal: (
        4,
        {
            "channel_id",
            "base_version",
            "trades",
            "state",
            "signature",
            "request_id",
            "withdrawal_signature",
        },
    ),
    Accept: (5, {"channel_id", "version", "signature", "withdrawal_signature"}),
    Reject: (6, {"channel_id", "version", "request_id", "rule", "reason"}),
    Reestablish: (7, {"channel_id", "state", "signatures", "book", "recent"}),
    OpenCounter: (8, {"channel_id", "rule", "reason", "counter"}),
}


@given(s.messages)
def test_envelope_matches_the_documented_table(msg: Message) -> None:
    version, tag, fields = msgpack.unpackb(wire.encode_message(msg), raw=False)
    assert version == wire.PROTOCOL_VERSION == 1
    assert (tag, set(fields)) == TAGS_AND_KEYS[type(msg)]


def test_uint256_travels_as_32_byte_bin_and_small_ints_as_ints() -> None:
    msg = UpdateRequest(bytes(32), 2**64 - 1, (Pay(1, 2**256 - 1),))
    _, _, fields = msgpack.unpackb(wire.encode_message(msg), raw=False)
    assert fields["request_id"] == 2**64 - 1
    [[trade_tag, trade]] = fields["trades"]
    assert trade_tag == 1
    assert trade == {"payer": 1, "amount": b"\xff" * 32}


def test_golden_accept() -> None:
    """Pins the byte format of one small message (msgpack map order = documented key order)."""
    msg = Accept(bytes(range(32)), 5, b"\x01" * 65)
    expected = (
        bytes.fromhex("930105")  # [1, 5, ...]
        + bytes.fromhex("84")  # map of 4
        + b"\xaachannel_id"
        + b"\xc4\x20"
        + bytes(range(32))
        + b"\xa7version\x05"
        + b"\xa9signature\xc4\x41"
        + b"\x01" * 65
        + b"\xb4withdrawal_signature\xc0"
    )
    assert wire.encode_message(msg) == expected
    assert wire.decode_message(expected) == msg


@pytest.mark.parametrize("amount", [0, 1, 2**64, 2**128 - 1, 2**255, 2**256 - 1])
def test_uint256_edges(amount: int) -> None:
    msg = UpdateRequest(bytes(32), 0, (Pay(0, amount),))
    assert wire.decode_message(wire.encode_message(msg)) == msg
