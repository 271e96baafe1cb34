"""The async store: :class:`AsyncStore` runs a :class:`Store` in a worker thread and combines
concurrent writes; :func:`open_store` opens one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from channels.core.model import ChannelId, Params, SignedUpdate, Version
from channels.core.positions import BookSnapshot
from channels.core.protocol import PersistSignature, Phase, PhaseChanged
from channels.store._helpers import T
from channels.store.errors import StoreError
from channels.store.ops import (
    AddChannel,
    AddIntent,
    AppendState,
    Cursor,
    DeleteIntent,
    Intent,
    IntentStatus,
    Op,
    Results,
    SetCursor,
    StoredChannel,
    StoreStats,
    UpdateIntent,
)
from channels.store.sync import Store


class PersistTicket:
    """A batch of operations waiting for the combiner; :meth:`wait` returns once it is durable."""

    __slots__ = ("_done", "_error", "_results", "ops", "seq")

    def __init__(self, ops: Sequence[Op], seq: int) -> None:
        self.ops = tuple(ops)
        self.seq = seq
        self._done = trio.Event()
        self._results: Results | None = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def finish(self, outcome: Results | BaseException) -> None:
        """Report the batch's outcome to its waiter (the combiner's job; once only)."""
        if self._done.is_set():
            return
        if isinstance(outcome, BaseException):
            self._error = outcome
        else:
            self._results = outcome
        self._done.set()

    async def wait(self) -> Results:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._results is not None
        return self._results


class AsyncStore:
    """Runs a :class:`Store` in one worker thread at a time; combines concurrent writes.

    Build it with :func:`open_store`. Writes go through :meth:`persist` (or :meth:`submit`):
    every batch submitted while a commit is running joins the next transaction (each batch in its
    own savepoint), and its caller wakes up only after that transaction is durable. Batches are
    committed in the order they were submitted. A cancelled caller does not withdraw its batch: it
    may still become durable (which is the safe direction for write-before-send). Reads see what
    has been committed.
    """

    def __init__(self, store: Store, limiter: trio.CapacityLimiter, max_batch: int) -> None:
        self._store = store
        self._limiter = limiter
        self._max_batch = max_batch
        self._queue: list[PersistTicket] = []
        self._wakeup = trio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self._next_seq = 0
        #: Highest ticket sequence number known to be durable.
        self.durable_seq = -1

    @property
    def stats(self) -> StoreStats:
        return self._store.stats

    @property
    def previous_clean_shutdown(self) -> bool:
        return self._store.previous_clean_shutdown

    @property
    def identity(self) -> bytes:
        return self._store.identity

    # writing -----------------------------------------------------------------------------------
    def submit(self, ops: Sequence[Op]) -> PersistTicket:
        """Queue ``ops`` for the next transaction (synchronously: submission order is commit
        order) and return a ticket to wait on."""
        if self._failure is not None:
            raise StoreError(f"the store failed earlier: {self._failure}") from self._failure
        if self._closing:
            raise StoreError("the store is closing")
        ticket = PersistTicket(ops, self._next_seq)
        self._next_seq += 1
        self._queue.append(ticket)
        self._wakeup.set()
        return ticket

    async def persist(self, ops: Sequence[Op]) -> Results:
        """Make ``ops`` durable (all or nothing); returns once they are committed."""
        return await self.submit(ops).wait()

    async def add_channel(
        self,
        params: Params,
        our_index: int,
        deposits: tuple[int, int],
        phase: Phase,
        endpoint: tuple[str, int] | None = None,
    ) -> None:
        await self.persist([AddChannel(params, our_index, deposits, phase, endpoint)])

    async def record_signature(
        self, channel_id: ChannelId, version: int, state_hash: bytes
    ) -> None:
        await self.persist([PersistSignature(channel_id, Version(version), state_hash)])

    async def append_state(
        self, channel_id: ChannelId, update: SignedUpdate, book_changes: BookSnapshot | None = None
    ) -> None:
        await self.persist([AppendState(channel_id, update, book_changes)])

    async def set_phase(self, channel_id: ChannelId, phase: Phase) -> None:
        await self.persist([PhaseChanged(channel_id, phase)])

    async def add_intent(
        self,
        kind: str,
        payload: bytes,
        channel_id: ChannelId | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
        status: IntentStatus = IntentStatus.PENDING,
    ) -> int:
        op = AddIntent(kind, payload, channel_id, raw_tx, tx_hash, nonce, status)
        result = (await self.persist([op]))[0]
        assert result is not None
        return result

    async def update_intent(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None:
        await self.persist([UpdateIntent(intent_id, status, raw_tx, tx_hash, nonce)])

    async def delete_intent(self, intent_id: int) -> None:
        await self.persist([DeleteIntent(intent_id)])

    async def set_cursor(self, name: str, block_number: int, block_hash: bytes) -> None:
        await self.persist([SetCursor(name, block_number, block_hash)])

    # reading -----------------------------------------------------------------------------------
    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` in the store's thread (for reads; writes go through persist)."""
        return await trio.to_thread.run_sync(fn, self._store, limiter=self._limiter)

    async def load_channels(self) -> list[StoredChannel]:
        return await self.run(Store.load_channels)

    async def load_channel(self, channel_id: ChannelId) -> StoredChannel:
        return await self.run(lambda s: s.load_channel(channel_id))

    async def history(self, channel_id: ChannelId, start: int = 0) -> list[SignedUpdate]:
        return await self.run(lambda s: list(s.history(channel_id, start)))

    async def verify_history(self, channel_id: ChannelId) -> int:
        return await self.run(lambda s: s.verify_history(channel_id))

    async def export_audit(self, channel_id: ChannelId) -> list[dict[str, Any]]:
        return await self.run(lambda s: s.export_audit(channel_id))

    async def highest_signed(self, channel_id: ChannelId) -> int | None:
        return await self.run(lambda s: s.highest_signed(channel_id))

    async def get_intent(self, intent_id: int) -> Intent:
        return await self.run(lambda s: s.get_intent(intent_id))

    async def intents(
        self,
        statuses: Sequence[IntentStatus] | None = None,
        channel_id: ChannelId | None = None,
        kind: str | None = None,
    ) -> list[Intent]:
        return await self.run(lambda s: s.intents(statuses, channel_id, kind))

    async def get_cursor(self, name: str) -> Cursor | None:
        return await self.run(lambda s: s.get_cursor(name))

    # the combiner ------------------------------------------------------------------------------
    async def run_combiner(self) -> None:
        """Commit queued batches, several per transaction, until closed (run by open_store)."""
        try:
            while True:
                while not self._queue:
                    if self._closing:
                        return
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                batch = self._queue[: self._max_batch]
                del self._queue[: len(batch)]
                # A commit in progress is finished and reported even if we are cancelled.
                with trio.CancelScope(shield=True):
                    try:
                        outcomes = await trio.to_thread.run_sync(
                            self._store.apply_groups,
                            [t.ops for t in batch],
                            limiter=self._limiter,
                        )
                    except Exception as exc:
                        self._failure = exc
                        for ticket in batch:
                            error = StoreError(f"the store could not commit: {exc}")
                            error.__cause__ = exc
                            ticket.finish(error)
                        return
                for ticket, outcome in zip(batch, outcomes, strict=True):
                    ticket.finish(outcome)
                self.durable_seq = batch[-1].seq
                await trio.lowlevel.checkpoint()
        finally:
            self._closing = True
            for ticket in self._queue:
                ticket.finish(StoreError("the store closed before this batch was committed"))
            self._queue.clear()

    def begin_close(self) -> None:
        """Commit what is queued, then let the combiner end."""
        self._closing = True
        self._wakeup.set()


@asynccontextmanager
async def open_store(
    path: str | os.PathLike[str],
    identity: bytes,
    chain_id: int,
    adjudicator: bytes,
    synchronous: str = "FULL",
    *,
    max_batch: int = 1000,
) -> AsyncIterator[AsyncStore]:
    """``async with open_store(...) as store:`` opens the store, runs its write combiner for the
    duration of the block, then commits what is queued (on a normal exit) and closes cleanly."""
    limiter = trio.CapacityLimiter(1)
    store = await trio.to_thread.run_sync(
        partial(Store.open, path, identity, chain_id, adjudicator, synchronous), limiter=limiter
    )
    astore = AsyncStore(store, limiter, max_batch)
    raised: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(astore.run_combiner)
            try:
                yield astore
            except BaseException as exc:
                raised = exc
                raise
            finally:
                astore.begin_close()
    except BaseExceptionGroup as group:
        # The combiner reports its failures to the callers and never raises, so a group holds
        # the block's own exception: give it back as it was raised.
        if raised is not None and group.exceptions == (raised,):
            raise raised from None
        raise
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close, limiter=limiter)
