"""The node's event bus: every subscriber gets every event, and a slow one loses events rather
than stalling the node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from channels.core.node_events import Event


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[trio.MemorySendChannel[Event]] = []

    def emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber.send_nowait(event)
            except trio.WouldBlock:
                pass  # a slow subscriber loses events rather than stalling the node
            except trio.BrokenResourceError:
                self._subscribers.remove(subscriber)

    @asynccontextmanager
    async def subscribe(
        self, buffer: int = 10_000
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        send, receive = trio.open_memory_channel[Event](buffer)
        self._subscribers.append(send)
        try:
            yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            await send.aclose()
