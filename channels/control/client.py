"""The control client: one-shot commands talk to a running node through it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from channels.control.codec import LineStream, decode_response, encode_request
from channels.control.errors import NodeNotRunning

if TYPE_CHECKING:
    pass


# Client ----------------------------------------------------------------------------------------
class ControlClient:
    """A connection to a node's control socket: ``await client.call("status")``."""

    def __init__(self, stream: trio.abc.Stream, path: Path) -> None:
        self._lines = LineStream(stream)
        self._lock = trio.Lock()
        self.path = path

    async def call(self, cmd: str, **fields: Any) -> Any:
        async with self._lock:
            try:
                await self._lines.send(encode_request(cmd, **fields))
                line = await self._lines.receive_line()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise NodeNotRunning(f"the node at {self.path} went away: {exc}") from None
            if line is None:
                raise NodeNotRunning(f"the node at {self.path} closed the connection")
            return decode_response(line)


    async def stream(self, cmd: str, until: Callable[[bytes], bool], **fields: Any) -> None:
        """Send one request and hand each line of a many-line answer (``export_stream``) to
        ``until`` until it returns True; :class:`NodeNotRunning` if the node goes away."""
        async with self._lock:
            try:
                await self._lines.send(encode_request(cmd, **fields))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise NodeNotRunning(f"the node at {self.path} went away: {exc}") from None
            while True:
                try:
                    line = await self._lines.receive_line()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise NodeNotRunning(f"the node at {self.path} went away: {exc}") from None
                if line is None:
                    raise NodeNotRunning(f"the node at {self.path} closed the connection")
                if until(line):  # its own errors (a closed stdout: BrokenPipeError) pass through
                    return


@asynccontextmanager
async def connect_control(path: str | os.PathLike[str]) -> AsyncIterator[ControlClient]:
    """``async with connect_control(path) as client:``; :class:`NodeNotRunning` if no node."""
    sock_path = Path(path)
    try:
        stream = await trio.open_unix_socket(str(sock_path))
    except (FileNotFoundError, ConnectionRefusedError):
        raise NodeNotRunning(
            f"no node is serving {sock_path} (start one with `channels node --config ...`)"
        ) from None
    async with stream:
        yield ControlClient(stream, sock_path)


async def call(path: str | os.PathLike[str], cmd: str, **fields: Any) -> Any:
    """One request on a fresh connection."""
    async with connect_control(path) as client:
        return await client.call(cmd, **fields)
