"""The length-prefix framer: segmentation, oversized prefixes, truncation (THREATS.md 2.3, 3.1)."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.core import wire
from channels.core.errors import FrameTooLarge, RemoteError, UnencodableMessage
from channels.core.messages import Message

from . import strategies as s

payloads = st.lists(st.binary(max_size=300), max_size=12)


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(stream)]:
        pieces.append(stream[start:point])
        start = point
    return pieces


@given(payloads, st.lists(st.integers(0, 10_000), max_size=40))
def test_any_segmentation_gives_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(wire.frame(p) for p in frames)
    decoder = wire.FrameDecoder()
    out: list[bytes] = []
    for piece in _split(stream, cuts):
        out.extend(decoder.feed(piece))
    assert out == frames
    assert decoder.pending == 0


@given(payloads)
def test_byte_by_byte(frames: list[bytes]) -> None:
    stream = b"".join(wire.frame(p) for p in frames)
    decoder = wire.FrameDecoder()
    out = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert out == frames


@given(st.lists(s.messages, min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=10))
def test_message_stream_round_trip(messages: list[Message], cuts: list[int]) -> None:
    stream = b"".join(wire.frame(wire.encode_message(m)) for m in messages)
    decoder = wire.FrameDecoder()
    got = [wire.decode_message(f) for piece in _split(stream, cuts) for f in decoder.feed(piece)]
    assert got == messages


@pytest.mark.parametrize(
    "pieces",
    [
        [b"\xff\xff\xff\xff"],
        [b"\xff", b"\xff\xff", b"\xff"],
        [b"\xff\xff\xff\xff" + b"x" * 1000],
        [(wire.MAX_FRAME + 1).to_bytes(4, "big")],
    ],
)
def test_oversized_prefix_raises_before_buffering(pieces: list[bytes]) -> None:
    decoder = wire.FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge) as info:
            for piece in pieces:
                decoder.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(info.value, RemoteError)
    assert peak < 64 * 1024  # nothing near the announced size was allocated
    assert decoder.pending == 0
    with pytest.raises(FrameTooLarge):  # the stream stays failed
        decoder.feed(wire.frame(b"ok"))


def test_oversized_prefix_after_valid_frames_in_one_feed() -> None:
    decoder = wire.FrameDecoder()
    with pytest.raises(FrameTooLarge):
        decoder.feed(wire.frame(b"a") + b"\xff\xff\xff\xff")


def test_max_frame_exactly_is_accepted() -> None:
    payload = b"\x07" * wire.MAX_FRAME
    decoder = wire.FrameDecoder()
    data = wire.frame(payload)
    assert decoder.feed(data[:100_000]) == []
    assert decoder.feed(data[100_000:]) == [payload]


def test_custom_limit() -> None:
    decoder = wire.FrameDecoder(max_frame=10)
    assert decoder.feed(wire.frame(b"0123456789")) == [b"0123456789"]
    with pytest.raises(FrameTooLarge):
        decoder.feed(wire.frame(b"0123456789a"))


@given(st.binary(min_size=0, max_size=200), st.data())
def test_truncated_frame_yields_nothing(payload: bytes, data: st.DataObject) -> None:
    framed = wire.frame(payload)
    cut = data.draw(st.integers(0, len(framed) - 1))
    decoder = wire.FrameDecoder()
    assert decoder.feed(framed[:cut]) == []
    assert decoder.pending == cut


def test_empty_frames_and_empty_feeds() -> None:
    decoder = wire.FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(wire.frame(b"") * 3) == [b"", b"", b""]


def test_frame_refuses_oversized_payload() -> None:
    assert wire.frame(b"abc") == b"\x00\x00\x00\x03abc"
    with pytest.raises(UnencodableMessage):
        wire.frame(bytes(wire.MAX_FRAME + 1))
