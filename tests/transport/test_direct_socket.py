"""The TCP stream a link uses after its handshake (channels/transport/direct_socket.py), on real
loopback sockets: a send larger than the kernel's buffers waits for the reader, the end of the
stream reads as b"", closing wakes a task waiting to read, and a closed stream refuses use."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from channels.transport.direct_socket import DirectSocketStream

from ._helpers import honest_pair


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[DirectSocketStream, DirectSocketStream]]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    a, b = DirectSocketStream(client), DirectSocketStream(server)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_large_send_waits_for_a_slow_reader() -> None:
    data = os.urandom(8 * 1024 * 1024)  # far more than the socket buffers hold
    got = bytearray()
    with trio.fail_after(30):
        async with tcp_pair() as (a, b), trio.open_nursery() as nursery:

            async def read_slowly() -> None:
                while len(got) < len(data):
                    got.extend(await b.receive_some(65536))
                    if len(got) < 1024 * 1024:
                        await trio.sleep(0.001)

            nursery.start_soon(read_slowly)
            await a.send_all(data)
    assert bytes(got) == data


async def test_the_end_of_the_stream_reads_as_empty() -> None:
    with trio.fail_after(10):
        async with tcp_pair() as (a, b):
            await a.send_all(b"last words")
            await a.aclose()
            received = b""
            while chunk := await b.receive_some(100):
                received += chunk
            assert received == b"last words"


async def test_closing_wakes_a_waiting_reader_and_refuses_further_use() -> None:
    with trio.fail_after(10):
        async with tcp_pair() as (a, _b):
            raised: list[BaseException] = []

            async def wait_to_read() -> None:
                try:
                    await a.receive_some(100)
                except trio.ClosedResourceError as exc:
                    raised.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_to_read)
                await trio.testing.wait_all_tasks_blocked()
                await a.aclose()
            assert len(raised) == 1
            with pytest.raises(trio.ClosedResourceError):
                await a.send_all(b"x")
            with pytest.raises(trio.ClosedResourceError):
                await a.receive_some(1)


async def test_a_reset_connection_is_a_broken_stream() -> None:
    with trio.fail_after(10):
        async with tcp_pair() as (a, b):
            await b.aclose()
            with pytest.raises(trio.BrokenResourceError):
                for _ in range(1000):  # the first writes may still be accepted locally
                    await a.send_all(b"x" * 65536)


async def test_send_now_keeps_what_the_socket_did_not_take_and_it_goes_first() -> None:
    """``SecureChannel.send_now`` encrypts and hands messages to the socket without a wait; what
    the kernel did not take stays behind, nothing new is taken before it, and the next
    ``send_many`` writes it first: the peer reads every message, in order."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(30):
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
        await listeners[0].aclose()
        a, b = await honest_pair(client, server)
        big = [os.urandom(60_000) for _ in range(80)]  # more than the kernel's buffers hold
        assert a.send_now(big)
        assert a.has_backlog
        assert not a.send_now([b"after"])  # nothing overtakes what is left
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:

            async def read_all() -> None:
                while len(got) < len(big) + 1:
                    got.append(await b.receive())

            nursery.start_soon(read_all)
            await a.send_many([b"after"])
        assert not a.has_backlog
        assert got == [*big, b"after"]
        assert a.send_now([b"idle again"])  # an idle link takes a message at once
        assert await b.receive() == b"idle again"
        await a.aclose()
        await b.aclose()


class EagerStream(trio.abc.Stream):
    """A stream over a memory stream that, once ``eager``, hands out what it buffered
    ``read_size`` bytes at a time WITHOUT yielding: as a socket does while data keeps coming."""

    def __init__(self, inner: trio.abc.Stream, read_size: int) -> None:
        self.inner = inner
        self.read_size = read_size
        self.buffer = bytearray()
        self.eager = False
        self.reads = 0

    async def fill(self, size: int) -> None:
        while len(self.buffer) < size:
            self.buffer += await self.inner.receive_some(65536)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self.eager or not self.buffer:
            return await self.inner.receive_some(max_bytes)
        self.reads += 1
        data = bytes(self.buffer[: self.read_size])
        del self.buffer[: self.read_size]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_reads_that_complete_no_message_yield_to_other_tasks() -> None:
    """The attack on the direct stream: a peer keeps data coming in frames that never complete a
    message (keepalives, or one large message in many chunks). The stream does not yield while
    data is there, and the link reader's yield every 32 messages never applies, so the read loop
    itself must yield after each read that completed no message: another task of the node (the
    watcher, the other links) gets a turn between any two such reads. Without that yield it got
    none while the whole message came in (and no read deadline could act)."""
    sa, sb = trio.testing.memory_stream_pair()
    eager = EagerStream(sb, read_size=4096)
    with trio.fail_after(30):
        alice, bob = await honest_pair(sa, eager)
        big = os.urandom(1_000_000)  # about 16 chunks of 64 KiB: 245 reads of 4 KiB
        await alice.send(big)
        await eager.fill(len(big))  # all of it is "in the kernel" before Bob reads
        eager.eager = True
        turns: list[int] = []
        done = trio.Event()

        async def other_task() -> None:
            while not done.is_set():
                turns.append(eager.reads)
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            assert await bob.receive() == big
            done.set()
    reads = eager.reads
    assert reads > 200
    # A turn between every two reads (trio may run the reader twice in a row across batches).
    seen = set(turns)
    missed = [n for n in range(1, reads - 1) if n not in seen and n + 1 not in seen]
    assert not missed, f"no other task ran around reads {missed[:5]}... of {reads}"
