"""connect/serve over real TCP on 127.0.0.1: happy path, attacks, garbage, the half-open cap."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

import pytest
import trio

from channels.core.signing import LocalSigner
from channels.transport import (
    MAX_CHUNK,
    BadFrame,
    ConnectionClosed,
    HandshakeError,
    PeerAuthError,
    Prologue,
    SecureChannel,
    TransportConfig,
    connect,
    serve,
)

from ._helpers import ALICE, BOB, CAROL, CHAIN_ID, PROLOGUE, RawPeer, accept_all, frame

HOST = "127.0.0.1"
FAST = TransportConfig(handshake_timeout=0.5, read_timeout=2.0)


async def echo(channel: SecureChannel) -> None:
    """Echo every message; a message b"boom" makes the handler raise a peer-fault error."""
    try:
        while True:
            message = await channel.receive()
            if message == b"boom":
                raise BadFrame("the peer asked for it")
            await channel.send(message)
    except ConnectionClosed:
        return


async def start_server(
    nursery: trio.Nursery,
    *,
    signer: LocalSigner = BOB,
    accept: Callable[[bytes], bool] = accept_all,
    config: TransportConfig = FAST,
    prologue: Prologue = PROLOGUE,
) -> int:
    port: int = await nursery.start(
        partial(serve, HOST, 0, signer, prologue, accept, echo, config=config)
    )
    return port


async def raw_exchange(port: int, data: bytes, *, close_write: bool = True) -> bytes:
    """Send ``data`` on a plain TCP connection and read until the server closes."""
    stream = await trio.open_tcp_stream(HOST, port)
    out = b""
    async with stream:
        if data:
            await stream.send_all(data)
        if close_write:
            await stream.send_eof()
        with trio.fail_after(5):
            try:
                while chunk := await stream.receive_some():
                    out += chunk
            except trio.BrokenResourceError:  # reset instead of FIN: also "closed"
                pass
    return out


async def test_tcp_happy_path_large_payloads() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)
        start = trio.current_time()
        channel = await connect(HOST, port, ALICE, BOB.address, PROLOGUE)
        print(f"handshake over TCP: {(trio.current_time() - start) * 1e3:.2f} ms")
        assert channel.peer_address == BOB.address
        async with channel:
            for n in (0, 300, MAX_CHUNK + 1, 1 << 20):
                payload = os.urandom(n)
                await channel.send(payload)
                assert await channel.receive() == payload
        nursery.cancel_scope.cancel()


async def test_tcp_responder_sees_alice() -> None:
    seen: list[bytes] = []

    def record(address: bytes) -> bool:
        seen.append(address)
        return True

    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, accept=record)
        async with await connect(HOST, port, ALICE, BOB.address, PROLOGUE) as channel:
            await channel.send(b"hi")
            assert await channel.receive() == b"hi"
        assert seen == [ALICE.address]
        nursery.cancel_scope.cancel()


async def test_tcp_wrong_address() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, signer=CAROL)
        with pytest.raises(PeerAuthError):
            await connect(HOST, port, ALICE, BOB.address, PROLOGUE)
        nursery.cancel_scope.cancel()


async def test_tcp_refused_peer_and_prologue_mismatch() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, accept=lambda a: a != ALICE.address)
        with pytest.raises(HandshakeError):
            await connect(HOST, port, ALICE, BOB.address, PROLOGUE)
        with pytest.raises(HandshakeError):
            await connect(
                HOST, port, CAROL, BOB.address, Prologue(CHAIN_ID + 1, PROLOGUE.adjudicator)
            )
        # The refusals did not hurt the server.
        async with await connect(HOST, port, CAROL, BOB.address, PROLOGUE) as channel:
            await channel.send(b"ok")
            assert await channel.receive() == b"ok"
        nursery.cancel_scope.cancel()


async def test_server_survives_garbage_then_serves_a_good_peer() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)
        assert await raw_exchange(port, b"") == b""
        assert await raw_exchange(port, os.urandom(500)) == b""
        assert await raw_exchange(port, b"\xff\xff" + os.urandom(10)) == b""
        assert await raw_exchange(port, b"GET / HTTP/1.1\r\n\r\n") == b""
        # A well-formed message 1 gets message 2 (XX cannot avoid it), then EOF ends it.
        act1 = frame(
            RawPeer(trio.testing.memory_stream_pair()[0], initiator=True).noise.write_message()
        )
        assert len(await raw_exchange(port, act1)) == 2 + 96
        # Valid message 1, then silence (write side left open): closed at the deadline.
        start = trio.current_time()
        assert len(await raw_exchange(port, act1, close_write=False)) == 2 + 96
        assert 0.4 < trio.current_time() - start < 3.0
        # A random message 3.
        assert len(await raw_exchange(port, act1 + frame(os.urandom(64)))) == 2 + 96
        # A handler that fails with a peer-fault error closes that connection only.
        async with await connect(HOST, port, ALICE, BOB.address, PROLOGUE) as channel:
            await channel.send(b"boom")
            with pytest.raises(ConnectionClosed):
                await channel.receive()
        async with await connect(HOST, port, ALICE, BOB.address, PROLOGUE) as channel:
            await channel.send(b"after the garbage")
            assert await channel.receive() == b"after the garbage"
        nursery.cancel_scope.cancel()


async def test_slowloris_over_tcp_closed_at_handshake_deadline() -> None:
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery)  # handshake_timeout = 0.5 s
        act1 = frame(
            RawPeer(trio.testing.memory_stream_pair()[0], initiator=True).noise.write_message()
        )
        stream = await trio.open_tcp_stream(HOST, port)
        start = trio.current_time()
        closed_after = None
        async with stream:
            with trio.fail_after(10):
                for byte in act1:
                    try:
                        await stream.send_all(bytes((byte,)))
                    except trio.BrokenResourceError:
                        break
                    with trio.move_on_after(0.25):  # ~4 bytes/s; notice the close at once
                        try:
                            if await stream.receive_some() == b"":
                                break
                        except trio.BrokenResourceError:
                            # The server closed with our bytes unread in its buffer: the
                            # kernel answers with a reset rather than an orderly EOF.
                            break
                closed_after = trio.current_time() - start
        assert closed_after is not None and 0.4 < closed_after < 2.0, closed_after
        nursery.cancel_scope.cancel()


async def closed_by_server(stream: trio.SocketStream) -> bool:
    """Whether the server closed ``stream`` without sending a byte (within 2 s)."""
    with trio.move_on_after(2):
        try:
            return await stream.receive_some() == b""
        except trio.BrokenResourceError:  # reset instead of FIN: also "closed"
            return True
    return False


async def test_cap_on_unauthenticated_connections() -> None:
    """At most ``max_unauthenticated`` connections in their handshake; a new one closes the
    oldest, so connections held open without a word cannot keep a real peer out."""
    config = TransportConfig(handshake_timeout=30.0, max_unauthenticated=2)
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, config=config)
        idle = [await trio.open_tcp_stream(HOST, port) for _ in range(2)]
        await trio.sleep(0.2)  # let the server accept them
        # A real peer gets in while both slots are held: the oldest idle one is closed for it.
        async with await connect(HOST, port, ALICE, BOB.address, PROLOGUE, config=config) as peer:
            await peer.send(b"in despite the idle ones")
            assert await peer.receive() == b"in despite the idle ones"
        assert await closed_by_server(idle[0])
        # Idle newcomers push out the oldest idle connection, never more than two held at once.
        newer = [await trio.open_tcp_stream(HOST, port) for _ in range(2)]
        assert await closed_by_server(idle[1])
        with trio.move_on_after(0.3) as waited:  # the two newest are still held
            await newer[0].receive_some()
        assert waited.cancelled_caught
        for stream in [*idle, *newer]:
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_connect_timeout_against_silent_listener() -> None:
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0]:
        start = trio.current_time()
        with pytest.raises(HandshakeError):
            await connect(HOST, port, ALICE, BOB.address, PROLOGUE, timeout=0.3)
        assert 0.25 < trio.current_time() - start < 2.0


async def test_connect_refused_is_oserror() -> None:
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    with pytest.raises(OSError):
        await connect(HOST, port, ALICE, BOB.address, PROLOGUE)


async def test_handler_bug_propagates_out_of_serve() -> None:
    async def buggy(channel: SecureChannel) -> None:
        raise RuntimeError("bug in the handler")

    with pytest.raises(BaseExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(serve, HOST, 0, BOB, PROLOGUE, accept_all, buggy, config=FAST)
            )
            await connect(HOST, port, ALICE, BOB.address, PROLOGUE)
            await trio.sleep_forever()
    assert info.group_contains(RuntimeError, depth=None)
