"""The TCP stream a link uses after its handshake (channels/transport/direct_socket.py), on real
loopback sockets: a send larger than the kernel's buffers waits for the reader, the end of the
stream reads as b"", closing wakes a task waiting to read, and a closed stream refuses use."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

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
