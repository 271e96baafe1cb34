"""The node's event bus: every subscriber gets every event. A slow subscriber loses events
rather than stalling the node, and is told so (:mod:`channels.runtime.eventbus`); the bus counts
them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from channels.core.node_events import Event
from channels.runtime.eventbus import Subscriber


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        #: Events dropped because a subscriber's buffer was full (each is announced to it).
        self.events_lost = 0

    def emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                self.events_lost += subscriber.offer(event)
            except trio.BrokenResourceError:
                self._subscribers.remove(subscriber)

    @asynccontextmanager
    async def subscribe(
        self, buffer: int = 10_000
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        send, receive = trio.open_memory_channel[Event](buffer)
        subscriber = Subscriber(send)
        self._subscribers.append(subscriber)
        try:
            yield receive
        finally:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
            await send.aclose()
