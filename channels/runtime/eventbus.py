"""The node's event bus: every subscriber gets every event, without stalling the node and
without losing silently.

Each subscriber has a bounded buffer. A subscriber that falls behind loses events (the node must
not wait for a slow reader), but never silently: the next event it does receive is preceded by
an :class:`EventsLost` saying how many it missed, and the bus counts every lost event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from channels.core.node_events import Event


@dataclass(frozen=True, slots=True)
class EventsLost(Event):
    """This subscriber's buffer was full: ``count`` events were dropped before the next one."""

    count: int


class Subscriber:
    """One subscriber's end: its channel and the events it has lost since its last delivery."""

    def __init__(self, send: trio.MemorySendChannel[Event]) -> None:
        self.send = send
        self.pending_lost = 0
        self.lost_total = 0

    def offer(self, event: Event) -> int:
        """Deliver ``event`` if there is room; returns how many events were lost by this call.
        Raises ``trio.BrokenResourceError`` once the subscriber is gone."""
        try:
            if self.pending_lost:
                self.send.send_nowait(EventsLost(None, self.pending_lost))
                self.pending_lost = 0
            self.send.send_nowait(event)
            return 0
        except trio.WouldBlock:
            self.pending_lost += 1
            self.lost_total += 1
            return 1


#: At most this many events are held while a node starts (each later one is counted as lost).
MAX_HELD = 10_000


class EventBus:
    """Hands each event to every subscriber; a full subscriber loses it (and is told)."""

    def __init__(self, *, held: bool = False) -> None:
        self._subscribers: list[Subscriber] = []
        #: Events dropped because a subscriber's buffer was full (each is announced to it).
        self.events_lost = 0
        #: ``held``: events are kept, in order, until :meth:`release`. A node's bus is held while
        #: it starts: what its start-up emits (an alarm of a restored store, a peer connected)
        #: must reach the subscriber its caller adds as soon as ``open_node`` returns, whichever
        #: task emitted it and however fast the store committed.
        self._held: list[Event] | None = [] if held else None
        self._held_lost = 0

    def release(self) -> None:
        """Deliver the held events, in order; from now on every event goes out at once."""
        held, self._held = self._held, None
        if self._held_lost:  # said first, as a subscriber is told of what its buffer lost
            self.emit(EventsLost(None, self._held_lost))
            self._held_lost = 0
        for event in held or ():
            self.emit(event)

    async def release_soon(self) -> None:
        """:meth:`release`, as a task the node starts last: it runs once the caller of
        ``open_node`` has had its turn (and subscribed, if it meant to)."""
        self.release()

    def emit(self, event: Event) -> None:
        if self._held is not None:
            if len(self._held) < MAX_HELD:
                self._held.append(event)
            else:
                self.events_lost += 1
                self._held_lost += 1
            return
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
