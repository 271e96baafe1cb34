"""The async store: :class:`AsyncStore` runs a :class:`Store` in one long-lived writer thread
(channels/store/writer.py) and combines concurrent writes; :func:`open_store` opens one. A commit
with nothing else to run in trio is made at once in trio's own thread (``AsyncStore._dispatch``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import trio

from channels.core.model import ChannelId, Params, SignedUpdate, Version
from channels.core.positions import BookSnapshot
from channels.core.protocol import PersistSignature, Phase, PhaseChanged
from channels.store.errors import StoreError
from channels.store.lease import LeaseVersions, VersionLeases
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
from channels.store.premiums import PremiumPaid
from channels.store.rows import T
from channels.store.sync import Store
from channels.store.writer import PersistTicket, StoreWriter


class AsyncStore:
    """Runs a :class:`Store` in one long-lived writer thread; combines concurrent writes.

    Build it with :func:`open_store`. Writes go through :meth:`persist` (or :meth:`submit`):
    every batch submitted while a commit is running joins the next transaction (each batch in its
    own savepoint), and its caller wakes up only after that transaction is durable. Batches are
    committed in the order they were submitted. A cancelled caller does not withdraw its batch: it
    may still become durable (which is the safe direction for write-before-send). Reads run in
    the same thread, in order with the writes, and see what has been committed.
    """

    def __init__(
        self,
        store: Store,
        writer: StoreWriter,
        max_batch: int,
        leases: dict[ChannelId, int],
        inline_when_idle: bool = True,
    ) -> None:
        self._store = store
        self._inline_when_idle = inline_when_idle
        #: can_persist_now found a commit may be made in trio's thread now (see _dispatch).
        self._inline_granted = False
        self._leases = VersionLeases(leases)
        self._writer = writer
        self._max_batch = max_batch
        self._queue: list[PersistTicket] = []
        self._committing = False
        self._drained = trio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self._next_seq = 0
        #: Highest ticket sequence number known to be durable.
        self.durable_seq = -1
        #: Told (in trio) of every lease raised once it is durable: the node backs it up to its
        #: watchtowers (channels/runtime/towerlease.py).
        self.on_lease: Callable[[ChannelId, int], None] | None = None

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
        if ops and not any(isinstance(op, PersistSignature) for op in ops):
            # Nothing signed (a fully signed state, a phase change: the common durable write):
            # the lease has nothing to rewrite, and the results come back as they are.
            return self._queue_ticket(ops, None)
        rewritten = self._leases.rewrite(ops)
        if rewritten.ops:
            ticket = self._queue_ticket(cast(tuple[Op, ...], rewritten.ops), rewritten.origin)
        else:  # only signatures the durable lease covers: nothing to commit
            ticket = PersistTicket((), self.durable_seq, rewritten.origin)
            ticket.finish([])
        if rewritten.renewal:  # nobody waits for it; it joins the next transaction
            self._queue_ticket(rewritten.renewal, None)
        return ticket

    def can_persist_now(self, ops: Sequence[Op]) -> bool:
        """Whether :meth:`persist_now` would make ``ops`` durable without waiting: they are only
        signatures the durable lease covers, or nothing is queued or committing and the commit
        would be made in trio's thread (see ``_dispatch``). Changes nothing."""
        self._inline_granted = False
        if self._failure is not None or self._closing:
            return False
        if all(isinstance(op, PersistSignature) and self._leases.covers(op) for op in ops):
            return True
        # Remembered for the persist_now that follows at once: _dispatch need not ask trio
        # again (its statistics walk every registered socket).
        self._inline_granted = not self._queue and not self._committing and self._inline_now()
        return self._inline_granted

    def persist_now(self, ops: Sequence[Op]) -> Results:
        """Make ``ops`` durable at once, without a wait; only after :meth:`can_persist_now`
        said yes (nothing in between). Raises what the commit raised."""
        ticket = self.submit(ops)
        if not ticket.done:  # a caller's bug; the batch is queued and commits in its turn
            raise StoreError("persist_now was called without can_persist_now saying yes")
        return ticket.result()

    def _inline_now(self) -> bool:
        return self._inline_when_idle and self._writer.busy == 0 and _nothing_else_to_run()

    def _queue_ticket(
        self, ops: Sequence[Op], origin: Sequence[int | None] | None
    ) -> PersistTicket:
        ticket = PersistTicket(ops, self._next_seq, origin)
        self._next_seq += 1
        self._queue.append(ticket)
        if not self._committing:
            self._dispatch()
        return ticket

    def lease(self, channel_id: ChannelId) -> int:
        """The channel's durable version lease (-1: none)."""
        return self._leases.durable(channel_id)

    async def extend_lease(self, channel_id: ChannelId, up_to: int) -> None:
        """Make a lease up to ``up_to`` durable ahead of the signatures it will cover (a lower
        figure changes nothing: the store keeps the highest)."""
        await self.persist([LeaseVersions(channel_id, up_to)])

    async def persist(self, ops: Sequence[Op]) -> Results:
        """Make ``ops`` durable (all or nothing); returns once they are committed."""
        ticket = self.submit(ops)
        if ticket.done:
            # Only signatures the durable lease covers (a leader's proposal, each update):
            # durable already, so no trip through the scheduler for an event already set.
            return ticket.result()
        return await ticket.wait()

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
        return await self._writer.call(partial(fn, self._store))

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

    async def premiums_since(self, seconds: int) -> list[PremiumPaid]:
        return await self.run(lambda s: s.premiums_since(seconds))

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
    def _dispatch(self) -> None:
        """Hand the queued batches (up to ``max_batch``) to the writer as one transaction."""
        batch = self._queue[: self._max_batch]
        del self._queue[: len(batch)]
        self._committing = True
        # The attribute is read here, at hand-off, so a test can make the commit fail.
        apply_groups = self._store.apply_groups
        groups = [t.ops for t in batch]
        inline, self._inline_granted = self._inline_granted or self._inline_now(), False
        if inline:
            # Nothing could run while the writer thread commits: commit here instead. The hand-
            # off to the thread and back (a queue, a thread woken, the GIL passed twice, the
            # loop woken through its wakeup socket) cost more CPU than the store's own work,
            # and latency on every sequential update. With other tasks ready, the thread lets
            # them run during the disk's flush, as before.
            # Several tasks woken in one scheduler batch all see an empty run queue (trio
            # empties it as the batch starts): without this, each would commit here in turn, one
            # flush after another, where the writer thread would group them in one.
            self._writer.occupy_this_pass()
            try:
                outcomes = apply_groups(groups)
            except BaseException as exc:
                self._committed(batch, None, exc)
                if not isinstance(exc, Exception):
                    raise
                return
            self._committed(batch, outcomes, None)
            return
        self._writer.post(partial(apply_groups, groups), partial(self._committed, batch))

    def _committed(
        self, batch: list[PersistTicket], outcomes: Any, error: BaseException | None
    ) -> None:
        """Called in trio when ``batch`` is committed (by the writer thread, through
        ``run_sync_soon``, or here): wake its callers and hand over the next batch at once."""
        self._committing = False
        if error is not None:
            self._failure = error
            failed = StoreError(f"the store could not commit: {error}")
            failed.__cause__ = error
            for ticket in (*batch, *self._queue):
                ticket.finish(failed)
            self._queue.clear()
        else:
            for ticket, outcome in zip(batch, outcomes, strict=True):
                if not isinstance(outcome, Exception):
                    self._leases.committed(ticket.ops)
                    self._tell_leases(ticket.ops)
                ticket.finish(outcome)
            self.durable_seq = batch[-1].seq
            if self._queue:
                self._dispatch()
                return
        self._drained.set()

    def _tell_leases(self, ops: Sequence[Op]) -> None:
        if self.on_lease is None:
            return
        for op in ops:
            if isinstance(op, LeaseVersions) and not op.exact:  # a shrink is local only
                self.on_lease(op.channel_id, op.up_to)

    async def cut_leases_to_signed(self) -> dict[ChannelId, int]:
        """At a clean shutdown, once nothing else will be signed: stop taking writes, cut each
        lease back to the last version signed in this run (``LeaseVersions(exact=True)``) and,
        once that is durable, return those figures per channel ({} if the store failed). The
        node then tells its towers (channels/runtime/towerlease.py); :meth:`shutdown` has
        nothing left to cut."""
        self._closing = True
        await self._wait_drained()
        if self._failure is None:
            shrink = self._leases.shrink_to_signed()
            if shrink:
                self._queue_ticket(shrink, None)
                await self._wait_drained()
        return {} if self._failure is not None else self._leases.cut_back_to()

    async def shutdown(self, drain: bool) -> None:
        """Stop taking writes; commit what is queued (``drain``) or fail it; wait for the writer.
        :func:`open_store` calls it when its block ends (then closes the file)."""
        self._closing = True
        if not drain:
            for ticket in self._queue:
                ticket.finish(StoreError("the store closed before this batch was committed"))
            self._queue.clear()
        await self._wait_drained()
        if drain and self._failure is None:
            shrink = self._leases.shrink_to_signed()
            if shrink:
                self._queue_ticket(shrink, None)
                await self._wait_drained()

    async def _wait_drained(self) -> None:
        while self._committing or self._queue:
            self._drained = trio.Event()
            await self._drained.wait()


def _nothing_else_to_run() -> bool:
    """No other task is ready to run and no thread's callback is queued for trio."""
    stats = trio.lowlevel.current_statistics()
    return stats.tasks_runnable == 0 and stats.run_sync_soon_queue_size == 0


@asynccontextmanager
async def open_store(
    path: str | os.PathLike[str],
    identity: bytes,
    chain_id: int,
    adjudicator: bytes,
    synchronous: str = "FULL",
    *,
    max_batch: int = 1000,
    inline_when_idle: bool = True,
) -> AsyncIterator[AsyncStore]:
    """``async with open_store(...) as store:`` opens the store in its writer thread, combines
    writes for the duration of the block, then commits what is queued (on a normal exit) and
    closes cleanly. ``inline_when_idle``: a commit with nothing else ready to run in trio (and
    the writer thread idle) runs in trio's thread, without the hand-off (see ``_dispatch``)."""
    writer = StoreWriter(trio.lowlevel.current_trio_token())
    try:
        with trio.CancelScope(shield=True):
            store = await writer.call(
                partial(Store.open, path, identity, chain_id, adjudicator, synchronous)
            )
    except BaseException:
        writer.stop()
        raise
    try:
        with trio.CancelScope(shield=True):
            leases = await writer.call(store.leases)
    except BaseException:
        await writer.call(partial(store.close, clean=False))
        writer.stop()
        raise
    astore = AsyncStore(store, writer, max_batch, leases, inline_when_idle)
    drain = False
    try:
        yield astore
        drain = True
    finally:
        # A commit in progress is finished and reported even if we are cancelled.
        with trio.CancelScope(shield=True):
            try:
                await astore.shutdown(drain)
                await writer.call(store.close)
            finally:
                writer.stop()
