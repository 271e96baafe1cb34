"""The watcher's cursor remembers block hashes, so a reorg deeper than its window is noticed.

The watcher scans events up to ``head - confirmations`` and never looks below its cursor again.
A reorg deeper than that (a long fork, a sequencer rewriting its chain, an endpoint switched to
another fork) can replace blocks the cursor already passed: a registration in the new blocks
would go unseen. :class:`CursorGuard` keeps the hashes of the last cursor positions; before each
poll it checks the cursor's block still has the hash it had. If not, it walks back to the newest
remembered block that is still on the chain (or ``max_rewind`` blocks) and the watcher rescans
from there, and it says so with an alarm.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

GetHash = Callable[[int], Awaitable[bytes | None]]

ZERO_HASH = b"\0" * 32


class CursorGuard:
    def __init__(self, block_hash: GetHash, *, remember: int = 64, max_rewind: int = 256) -> None:
        self._block_hash = block_hash
        self._seen: deque[tuple[int, bytes]] = deque(maxlen=remember)
        self.max_rewind = max_rewind
        self.reorgs = 0
        """Deep reorgs found (each rewound the cursor)."""

    def seed(self, block_number: int, block_hash: bytes) -> None:
        """The cursor as stored by the previous run (an all-zero hash is unknown)."""
        if block_hash != ZERO_HASH:
            self._seen.append((block_number, block_hash))

    async def advance(self, block_number: int) -> bytes:
        """Remember the new cursor's block; returns its hash (to store with the cursor)."""
        found = await self._block_hash(block_number)
        if found is None:
            return ZERO_HASH
        if self._seen and self._seen[-1][0] >= block_number:
            self._seen.pop()
        self._seen.append((block_number, found))
        return found

    async def check(self, cursor: int) -> tuple[int, str | None]:
        """``(cursor, None)`` while the remembered blocks are still on the chain; after a deep
        reorg, ``(an earlier cursor to rescan from, what happened)``."""
        if not self._seen:
            return cursor, None
        number, expected = self._seen[-1]
        if await self._block_hash(number) in (expected, None):
            return cursor, None
        self.reorgs += 1
        self._seen.pop()
        while self._seen:
            older, older_hash = self._seen[-1]
            if await self._block_hash(older) == older_hash:
                return older, (
                    f"block {number} was replaced (reorg below the cursor): rescanning from "
                    f"block {older + 1}"
                )
            self._seen.pop()
        back = max(0, cursor - self.max_rewind)
        return back, (
            f"block {number} was replaced and no remembered block is left on the chain: "
            f"rescanning from block {back + 1}"
        )
