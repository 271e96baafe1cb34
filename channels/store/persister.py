"""What the node and its defence need from a store: the persister protocol.

The runtime and the watcher depend on this protocol, never on SQLite; :class:`AsyncStore` is the
implementation (a test can type-check another against it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from channels.core.model import ChannelId, Params
from channels.core.protocol import Phase
from channels.store.ops import Cursor, Intent, IntentStatus, Op, Results, StoredChannel


class Persister(Protocol):
    @property
    def previous_clean_shutdown(self) -> bool:
        """Whether the last run closed the store cleanly (else we may be behind the peer)."""
        ...

    async def persist(self, ops: Sequence[Op]) -> Results:
        """Make ``ops`` durable, all or nothing; return once they are committed."""
        ...

    def can_persist_now(self, ops: Sequence[Op]) -> bool:
        """Whether :meth:`persist_now` can make ``ops`` durable without waiting (changes
        nothing)."""
        ...

    def persist_now(self, ops: Sequence[Op]) -> Results:
        """Make ``ops`` durable at once; only right after :meth:`can_persist_now` said yes."""
        ...

    async def add_channel(
        self,
        params: Params,
        our_index: int,
        deposits: tuple[int, int],
        phase: Phase,
        endpoint: tuple[str, int] | None = None,
    ) -> None: ...

    async def load_channels(self) -> list[StoredChannel]: ...

    async def add_intent(
        self,
        kind: str,
        payload: bytes,
        channel_id: ChannelId | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
        status: IntentStatus = IntentStatus.PENDING,
    ) -> int: ...

    async def update_intent(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None: ...

    async def intents(
        self,
        statuses: Sequence[IntentStatus] | None = None,
        channel_id: ChannelId | None = None,
        kind: str | None = None,
    ) -> list[Intent]: ...

    async def set_cursor(self, name: str, block_number: int, block_hash: bytes) -> None: ...

    async def get_cursor(self, name: str) -> Cursor | None: ...

    async def export_audit(self, channel_id: ChannelId) -> list[dict[str, Any]]: ...
