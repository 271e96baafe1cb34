"""A lock for the update path that does not visit the scheduler when it is free."""

from __future__ import annotations

from types import TracebackType

import trio


class FastLock:
    """A :class:`trio.Lock` (fair, owned by one task) whose acquire returns at once when the lock
    is free.

    Why: ``trio.Lock.acquire`` is a checkpoint even when nobody holds the lock, i.e. a trip
    through the scheduler (an epoll poll, a reschedule). A signed version took a channel's lock
    twice and a connection's send and receive locks once each, on each side: four scheduler
    trips per version with no other task waiting. Code that holds one of these locks reaches a
    real wait (a socket, the store) on every path, so no loop spins without yielding.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    def locked(self) -> bool:
        return self._lock.locked()

    async def __aenter__(self) -> None:
        lock = self._lock
        try:
            lock.acquire_nowait()  # free and nobody queued (trio's lock stays fair)
        except trio.WouldBlock:
            await lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
