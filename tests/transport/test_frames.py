"""Transport frames after AUTH: tamper, replay, reorder, oversize, truncation, rekey, timers and
segmentation (docs/THREATS.md T2-T4 and section 6.1)."""

from __future__ import annotations

import itertools
import os
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from channels.core.errors import FrameTooLarge, UnencodableMessage
from channels.transport import (
    MAX_CHUNK,
    BadFrame,
    ConnectionClosed,
    PeerTimeout,
    SecureChannel,
    TransportConfig,
    respond,
)

from ._helpers import (
    ALICE,
    BOB,
    PROLOGUE,
    RawPeer,
    SegmentingStream,
    Tamper,
    accept_all,
    both,
    frame,
    honest_pair,
    relay,
)

FIRST_APP_FRAME = 3  # Alice -> Bob: message 1, message 3, AUTH, then application frames


@asynccontextmanager
async def tampered_pair(
    tamper: Tamper, *, config_b: TransportConfig | None = None
) -> AsyncIterator[tuple[SecureChannel, SecureChannel]]:
    """Alice and Bob with a relay in between that applies ``tamper`` to Alice's frames."""
    a_side, relay_a = trio.testing.memory_stream_pair()
    relay_b, b_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay, relay_a, relay_b, tamper)
        nursery.start_soon(relay, relay_b, relay_a)
        if config_b is None:
            a, b = await honest_pair(a_side, b_side)
        else:
            a, b = await honest_pair(a_side, b_side, config_b=config_b)
        yield a, b
        await a.aclose()
        await b.aclose()
        nursery.cancel_scope.cancel()


def flip_bit(at_index: int, offset: int) -> Tamper:
    def tamper(index: int, data: bytes) -> list[bytes]:
        if index != at_index:
            return [data]
        mutable = bytearray(data)
        mutable[offset] ^= 0x01
        return [bytes(mutable)]

    return tamper


async def _assert_killed(receiver: SecureChannel, error: type[Exception]) -> None:
    with pytest.raises(error):
        await receiver.receive()
    assert receiver.closed
    with pytest.raises(ConnectionClosed):
        await receiver.receive()


async def test_clean_relay_works() -> None:
    async with tampered_pair(lambda _i, d: [d]) as (a, b):
        for n in (0, 5, 300_000):
            payload = os.urandom(n)
            await a.send(payload)
            assert await b.receive() == payload


@pytest.mark.parametrize("offset", [2, 3, 20, -1], ids=["ct-first", "ct-second", "ct-mid", "tag"])
async def test_bit_flip_in_ciphertext_closes(offset: int) -> None:
    async with tampered_pair(flip_bit(FIRST_APP_FRAME, offset)) as (a, b):
        await a.send(b"x" * 40)
        await _assert_killed(b, BadFrame)
        # Bob hung up: Alice learns it on her next receive.
        with pytest.raises(ConnectionClosed):
            await a.receive()


async def test_bit_flip_in_second_chunk_delivers_nothing() -> None:
    async with tampered_pair(flip_bit(FIRST_APP_FRAME + 1, 100)) as (a, b):
        await a.send(os.urandom(3 * MAX_CHUNK))
        await _assert_killed(b, BadFrame)


async def test_tampered_length_prefix_closes() -> None:
    def shorten(index: int, data: bytes) -> list[bytes]:
        if index != FIRST_APP_FRAME:
            return [data]
        body = data[2:]
        return [frame(body[:-1])]

    async with tampered_pair(shorten) as (a, b):
        await a.send(b"y" * 100)
        await _assert_killed(b, BadFrame)


async def test_frame_shorter_than_tag_closes() -> None:
    async with tampered_pair(lambda i, d: [d if i != FIRST_APP_FRAME else frame(b"\x00" * 5)]) as (
        a,
        b,
    ):
        await a.send(b"z")
        with pytest.raises(BadFrame, match="shorter than its tag"):
            await b.receive()


async def test_duplicated_frame_closes() -> None:
    async with tampered_pair(lambda i, d: [d, d] if i == FIRST_APP_FRAME else [d]) as (a, b):
        await a.send(b"once")
        assert await b.receive() == b"once"
        await _assert_killed(b, BadFrame)


async def test_swapped_frames_close_and_deliver_nothing() -> None:
    held: list[bytes] = []

    def swap(index: int, data: bytes) -> list[bytes]:
        if index == FIRST_APP_FRAME:
            held.append(data)
            return []
        if index == FIRST_APP_FRAME + 1:
            return [data, held[0]]
        return [data]

    async with tampered_pair(swap) as (a, b):
        await a.send(b"first")
        await a.send(b"second")
        await _assert_killed(b, BadFrame)


async def test_dropped_frame_closes() -> None:
    async with tampered_pair(lambda i, d: [] if i == FIRST_APP_FRAME else [d]) as (a, b):
        await a.send(b"lost")
        await a.send(b"next")
        await _assert_killed(b, BadFrame)


async def test_frame_replayed_from_another_session_closes() -> None:
    captured: list[bytes] = []

    def capture(index: int, data: bytes) -> list[bytes]:
        if index == FIRST_APP_FRAME:
            captured.append(data)
        return [data]

    async with tampered_pair(capture) as (a1, b1):
        await a1.send(b"session one")
        assert await b1.receive() == b"session one"
    sa, sb = trio.testing.memory_stream_pair()
    _a2, b2 = await honest_pair(sa, sb)
    await sa.send_all(captured[0])  # injected below Alice's channel, as a MITM would
    await _assert_killed(b2, BadFrame)


async def test_oversized_message_closed_before_buffering() -> None:
    small = TransportConfig(max_message_size=100_000)
    a, b = await honest_pair(config_b=small)
    await a.send(os.urandom(1 << 20))  # queued in the memory stream
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with pytest.raises(FrameTooLarge):
            await b.receive()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024, peak  # far below the 1 MiB the peer sent
    assert b.closed
    with pytest.raises(ConnectionClosed):
        await b.receive()


async def test_sender_refuses_above_its_limit_and_stays_usable() -> None:
    a, b = await honest_pair()
    with pytest.raises(UnencodableMessage):
        await a.send(bytes((1 << 20) + 1))
    with pytest.raises(UnencodableMessage):
        await a.send("text")  # type: ignore[arg-type]
    await a.send(b"still fine")
    assert await b.receive() == b"still fine"


@asynccontextmanager
async def raw_alice(
    config: TransportConfig | None = None,
) -> AsyncIterator[tuple[RawPeer, SecureChannel]]:
    """A hand-driven Alice that completed the handshake with an honest Bob."""
    sa, sb = trio.testing.memory_stream_pair()
    alice = RawPeer(sa, initiator=True)

    async def alice_side() -> bytes:
        await alice.handshake()
        await alice.send_encrypted(alice.auth(ALICE))
        return await alice.read_decrypted()

    kwargs = {} if config is None else {"config": config}
    ra, rb = await both(alice_side, lambda: respond(sb, BOB, PROLOGUE, accept_all, **kwargs))
    assert ra.unwrap()[:20] == BOB.address
    yield alice, rb.unwrap()


@pytest.mark.parametrize(
    "plaintext,match",
    [(b"\x02hello", "unknown frame flag"), (b"\x01", "empty continuation"), (b"\xff", "flag")],
)
async def test_malformed_plaintext_closes(plaintext: bytes, match: str) -> None:
    async with raw_alice() as (alice, bob):
        await alice.send_encrypted(plaintext)
        with pytest.raises(BadFrame, match=match):
            await bob.receive()


async def test_keepalive_frames_are_skipped() -> None:
    async with raw_alice() as (alice, bob):
        await alice.send_encrypted(b"")
        await alice.send_encrypted(b"\x01part-")
        await alice.send_encrypted(b"")
        await alice.send_encrypted(b"\x00two")
        assert await bob.receive() == b"part-two"


async def test_truncated_frame_then_eof() -> None:
    async with raw_alice() as (alice, bob):
        full = frame(alice.encrypt(b"\x00never delivered"))
        await alice.send(full[:10])
        await alice.stream.aclose()
        with pytest.raises(ConnectionClosed, match="mid-message"):
            await bob.receive()


async def test_first_chunk_then_eof_delivers_nothing() -> None:
    async with raw_alice() as (alice, bob):
        await alice.send_encrypted(b"\x01half")
        await alice.stream.aclose()
        with pytest.raises(ConnectionClosed, match="mid-message"):
            await bob.receive()


async def test_rekey_every_n_frames_both_directions() -> None:
    config = TransportConfig(rekey_interval=3)
    a, b = await honest_pair(config_a=config, config_b=config)
    for i in range(20):
        await a.send(b"a%d" % i)
        await b.send(b"b%d" % i + os.urandom(i * 7000))
        assert await b.receive() == b"a%d" % i
        assert (await a.receive())[: len(b"b%d" % i)] == b"b%d" % i


async def test_rekey_matches_noise_rekey_and_is_not_optional() -> None:
    """Bob rekeys his inbound key after 3 frames (AUTH + 2). A peer applying Noise REKEY at the
    same point interoperates; one that does not is cut off at its 4th frame."""
    config = TransportConfig(rekey_interval=3)
    async with raw_alice(config) as (alice, bob):
        await alice.send_encrypted(b"\x00one")
        await alice.send_encrypted(b"\x00two")
        alice.noise.rekey_outbound_cipher()
        await alice.send_encrypted(b"\x00three")
        assert [await bob.receive() for _ in range(3)] == [b"one", b"two", b"three"]
    async with raw_alice(config) as (alice, bob):
        await alice.send_encrypted(b"\x00one")
        await alice.send_encrypted(b"\x00two")
        await alice.send_encrypted(b"\x00three")  # still on the old key
        assert await bob.receive() == b"one"
        assert await bob.receive() == b"two"
        with pytest.raises(BadFrame):
            await bob.receive()


async def test_slow_body_closed_after_read_timeout(autojump_clock: object) -> None:
    config = TransportConfig(read_timeout=2.0)
    async with raw_alice(config) as (alice, bob):
        data = frame(alice.encrypt(b"\x00" + b"s" * 50))

        async def drip() -> None:
            try:
                for byte in data:
                    await alice.send(bytes((byte,)))
                    await trio.sleep(1)
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drip)
            start = trio.current_time()
            with pytest.raises(PeerTimeout, match=r"longer than 2\.0 s"):
                await bob.receive()
            assert trio.current_time() - start == pytest.approx(2.0)


async def test_idle_without_keepalive_waits_forever(autojump_clock: object) -> None:
    a, b = await honest_pair()
    with trio.move_on_after(10_000) as scope:
        await b.receive()
    assert scope.cancelled_caught and not b.closed
    await a.send(b"late")  # the cancelled receive lost nothing
    assert await b.receive() == b"late"


async def test_keepalive_keeps_idle_peers_alive_then_detects_dead(autojump_clock: object) -> None:
    config = TransportConfig(keepalive_interval=10.0)
    a, b = await honest_pair(config_a=config, config_b=config)
    # Both sides idle in receive for 200 s: keepalives flow, nobody is declared dead.
    with trio.move_on_after(200):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.receive)
            nursery.start_soon(b.receive)
    assert not a.closed and not b.closed
    await a.send(b"ping")
    assert await b.receive() == b"ping"
    # Now Bob stops reading (so he sends no keepalives): Alice gives up after 3N = 30 s.
    start = trio.current_time()
    with pytest.raises(PeerTimeout, match="nothing received"):
        await a.receive()
    assert trio.current_time() - start == pytest.approx(30.0, abs=10.0)
    with pytest.raises(ConnectionClosed):
        await b.receive()


async def test_concurrent_senders_do_not_interleave_chunks() -> None:
    a, b = await honest_pair()
    payloads = [bytes([i]) * (2 * MAX_CHUNK + i) for i in range(6)]
    async with trio.open_nursery() as nursery:
        for p in payloads:
            nursery.start_soon(a.send, p)
        got = [await b.receive() for _ in payloads]
    assert sorted(got) == sorted(payloads)


BIG_SIZES = [MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 2 * MAX_CHUNK + 3]
messages = st.lists(
    st.one_of(st.binary(max_size=300), st.sampled_from(BIG_SIZES).map(lambda n: b"\xab" * n)),
    max_size=5,
)
segment_sizes = st.lists(
    st.one_of(st.integers(1, 8), st.integers(1, 70_000)), min_size=1, max_size=16
)


async def _exchange_over_segments(
    sizes_a: list[int], sizes_b: list[int], from_a: list[bytes], from_b: list[bytes]
) -> None:
    raw_a, raw_b = trio.testing.memory_stream_pair()
    sa = SegmentingStream(raw_a, itertools.cycle(sizes_a))
    sb = SegmentingStream(raw_b, itertools.cycle(sizes_b))
    a, b = await honest_pair(sa, sb)

    async def send_many(channel: SecureChannel, items: list[bytes]) -> None:
        for item in items:
            await channel.send(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_many, a, from_a)
        nursery.start_soon(send_many, b, from_b)
        assert [await b.receive() for _ in from_a] == from_a
        assert [await a.receive() for _ in from_b] == from_b
    await a.aclose()
    with pytest.raises(ConnectionClosed):
        await b.receive()


def _reads(sizes: list[int], items: list[bytes]) -> float:
    return sum(len(m) + 100 for m in items) / (sum(sizes) / len(sizes))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes_a=segment_sizes, sizes_b=segment_sizes, from_a=messages, from_b=messages)
async def test_arbitrary_segmentation_gives_identical_messages(
    sizes_a: list[int], sizes_b: list[int], from_a: list[bytes], from_b: list[bytes]
) -> None:
    """Both directions cut into arbitrary pieces (both the writes and the reads)."""
    # Keep each example fast: bound the number of reads (1-byte pieces of 130 KB are slow).
    assume(_reads(sizes_a, from_a + from_b) + _reads(sizes_b, from_a + from_b) < 20_000)
    await _exchange_over_segments(sizes_a, sizes_b, from_a, from_b)


async def test_one_byte_segments_through_handshake_and_a_chunked_message() -> None:
    await _exchange_over_segments([1, 2, 5], [1, 2, 3], [b"", os.urandom(MAX_CHUNK + 5)], [b"q"])
