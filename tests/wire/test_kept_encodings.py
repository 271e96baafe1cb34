"""Trades encoded or decoded once are not encoded again: the encoding is kept by the identity of
the trades tuple (the leader's Proposal and its store record; the follower's decoded Proposal
and its store record). Whatever is kept, every encoding is byte for byte that of equal trades
in a new tuple."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from channels.core import model, wire
from channels.core.messages import Proposal
from channels.core.model import SignedUpdate
from channels.core.options import Pay, Trade

from . import strategies as s


def fresh(trades: tuple[Trade, ...]) -> tuple[Trade, ...]:
    """Equal trades in a new tuple (nothing kept for it)."""
    return tuple(list(trades))


@given(s.proposals)
def test_the_leaders_record_reuses_its_proposals_trades(msg: Proposal) -> None:
    sent = wire.encode_message(msg)
    assert sent == wire.encode_message(dataclasses.replace(msg, trades=fresh(msg.trades)))
    signed = model.SignedState(msg.state, (msg.signature, msg.signature))
    record = wire.UpdateRecord(SignedUpdate(signed, msg.trades))
    assert record.blob == wire.encode_update(SignedUpdate(signed, fresh(msg.trades)))
    assert wire.encode_message(msg) == sent


def _shuffled(obj: Any, rnd: st.DataObject) -> Any:
    """``obj`` with the keys of every map in a drawn order (a peer may send any order)."""
    if isinstance(obj, dict):
        keys = rnd.draw(st.permutations(list(obj)))
        return {k: _shuffled(obj[k], rnd) for k in keys}
    if isinstance(obj, tuple | list):
        return tuple(_shuffled(v, rnd) for v in obj)
    return obj


@given(s.proposals, st.data())
def test_the_followers_record_of_decoded_trades_is_our_own_encoding(
    msg: Proposal, data: st.DataObject
) -> None:
    """Decoded trades whose maps come in our key order keep the map as read; in any other
    order they are encoded afresh: the record is always what we would write."""
    version, tag, fields = msgpack.unpackb(wire.encode_message(msg), raw=False, use_list=False)
    fields = dict(fields, trades=_shuffled(fields["trades"], data))
    received = msgpack.packb((version, tag, fields), use_bin_type=True)
    decoded = wire.decode_message(received)
    assert isinstance(decoded, Proposal) and decoded == msg
    signed = model.SignedState(decoded.state, (decoded.signature, decoded.signature))
    expected = wire.encode_update(SignedUpdate(signed, fresh(msg.trades)))
    assert wire.UpdateRecord(SignedUpdate(signed, decoded.trades)).blob == expected
    assert wire.encode_message(decoded) == wire.encode_message(msg)


def test_trades_encodings_from_several_threads_stay_exact() -> None:
    """The store encodes in its own thread: tuples made and dropped in four threads at once
    (their ids are reused at once) always encode as their own trades."""
    expected = {n: wire.encode_trades((Pay(n % 2, n + 1),) * (n % 3 + 1)) for n in range(64)}
    wrong: list[int] = []

    def work(offset: int) -> None:
        for i in range(3_000):
            n = (i * 7 + offset) % 64
            trades = (Pay(n % 2, n + 1),) * (n % 3 + 1)
            if wire.encode_trades(trades) != expected[n]:
                wrong.append(n)
            if wire.encode_trades(wire.decode_trades(expected[n])) != expected[n]:
                wrong.append(n)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_large_batches_encode_the_same_without_being_kept() -> None:
    """Batches above the kept size (what a peer's large proposals could make us hold) are
    encoded afresh each time, to the same bytes."""
    trades = tuple(Pay(n % 2, n + 1) for n in range(300))
    data = wire.encode_trades(trades)
    assert wire.encode_trades(trades) == data == wire.encode_trades(fresh(trades))
    decoded = wire.decode_trades(data)
    assert decoded == trades and wire.encode_trades(decoded) == data
