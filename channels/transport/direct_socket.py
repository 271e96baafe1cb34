"""A TCP stream that reads and writes without a trip through the scheduler when the kernel is
ready.

Why: ``trio.SocketStream`` makes every send and receive a checkpoint (after a read that
succeeded at once, trio still yields to the scheduler) and wraps each call in a conflict detector
and an error translator. A signed version passes one send and one receive per side; with the
scheduler's work per trip that was a visible part of the CPU and latency of a version. Here a
call tries the socket first and waits (``trio.lowlevel.wait_readable``/``wait_writable``) only
when the kernel is not ready. The link's reader yields every few messages by itself
(``channels.runtime.links.YIELD_EVERY``), so a busy peer still cannot hold the loop.
"""

from __future__ import annotations

import socket

import trio


class DirectSocketStream(trio.abc.Stream):
    """Owns a connected, non-blocking TCP socket taken over from a ``trio.SocketStream``."""

    def __init__(self, stream: trio.SocketStream) -> None:
        # ``detach`` hands the file descriptor over: trio's object no longer closes it.
        self._sock = socket.socket(fileno=stream.socket.detach())
        self._sock.setblocking(False)
        self._closed = False

    def try_send(self, data: bytes | memoryview) -> int:
        """Write what the kernel takes of ``data`` now, without waiting: the number of bytes
        written (0 when its buffer is full). Raises as :meth:`send_all` does."""
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise trio.BrokenResourceError(f"the connection broke: {exc}") from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``; waits only while the kernel's send buffer is full."""
        view = memoryview(data)
        sock = self._sock
        while view:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            try:
                sent = sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"the connection broke: {exc}") from exc
            view = view[sent:]

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self._sock)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """What the kernel has (up to ``max_bytes``); waits only when it has nothing. ``b""`` at
        the end of the stream."""
        sock = self._sock
        size = max_bytes if max_bytes is not None else 65536
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            try:
                return sock.recv(size)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
            except OSError as exc:
                raise trio.BrokenResourceError(f"the connection broke: {exc}") from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            # Wakes a task waiting on the socket (with ClosedResourceError) before it closes.
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()
        await trio.lowlevel.checkpoint()
