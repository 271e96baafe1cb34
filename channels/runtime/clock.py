"""The node's chain clock."""

from __future__ import annotations

import trio

from adjudicator.client import AdjudicatorClient


class ChainClock:
    """Chain time: the newest block's timestamp plus the time since that block appeared.

    Between blocks the clock keeps running from when we first saw the newest one, so a quiet
    chain (no new blocks) does not stop time; it never runs behind a block's timestamp.
    """

    def __init__(self, chain: AdjudicatorClient) -> None:
        self._chain = chain
        self._head_timestamp = 0
        self._seen_at = 0.0

    @property
    def head_timestamp(self) -> int:
        """The newest block's timestamp as last read (0 before the first read)."""
        return self._head_timestamp

    def now(self) -> int:
        return self._head_timestamp + int(trio.current_time() - self._seen_at)

    async def refresh(self) -> None:
        timestamp = await self._chain.block_timestamp("latest")
        if timestamp != self._head_timestamp:
            self._head_timestamp = timestamp
            self._seen_at = trio.current_time()
