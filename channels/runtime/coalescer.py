"""Coalescing concurrent calls on one channel into few updates.

While the channel already has as many of our updates in flight as it allows, a call's trades are
queued, and when room frees up every queued call's trades become ONE update (one signature round,
one commit per side), whose state every caller gets back. If the rules refuse a combined update,
each of its calls is tried again on its own, so one bad trade fails only its own caller.
Withdrawals, deposit credits and finalizing are never combined with other calls.

Timeouts: a queued call fails with ``trio.TooSlowError`` if it is not proposed within the
timeout, and once proposed, if its update is not completed within the timeout from the proposal
(as a call proposed at once, without queueing, does). The pump enforces the first from ONE cancel
scope for all queued calls (the earliest deadline), the update's own wait the second: a cancel
scope with a deadline per call was a noticeable part of the CPU of each call.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import trio

from channels.core.errors import ChannelError
from channels.core.model import State
from channels.core.options import CreditDeposit, DebitWithdrawal, Finalize, Trade
from channels.runtime.errors import UpdateRefusedError

#: At most this many trades from queued calls go into one coalesced update.
MAX_COALESCED_TRADES = 1000
#: A call with at least this many trades is a batch already: it is proposed at once (pipelined
#: up to the machine's limit) rather than queued behind others and merged.
ALREADY_A_BATCH = 16


@dataclass
class Waiter:
    """One update of ours in flight: set once it is applied or refused."""

    done: trio.Event = field(default_factory=trio.Event)
    state: State | None = None
    error: ChannelError | None = None


class UpdateSink(Protocol):
    """The channel runtime as the coalescer drives it."""

    def has_room(self) -> bool:
        """Whether another update of ours may be put in flight now."""
        ...

    def paused(self) -> bool:
        """Whether proposals must wait (the two sides are comparing states)."""
        ...

    async def wait_changed(self) -> None: ...

    async def start_update(self, trades: tuple[Trade, ...]) -> tuple[int, Waiter]: ...

    async def finish_update(self, request_id: int, waiter: Waiter) -> State: ...


@dataclass(eq=False)
class _Call:
    """One caller's trades waiting to be coalesced with others into one update."""

    trades: tuple[Trade, ...]
    #: When the call fails if it is still queued (``trio.current_time()`` clock).
    deadline: float
    done: trio.Event = field(default_factory=trio.Event)
    state: State | None = None
    error: BaseException | None = None
    #: The combined update was refused by a rule: the caller tries its trades alone.
    retry: bool = False
    #: The caller stopped waiting before its batch was proposed: leave its trades out.
    withdrawn: bool = False


@dataclass(eq=False)
class _Batch:
    """Calls whose trades become one update; only the newest batch of a channel takes more."""

    calls: list[_Call] = field(default_factory=list)
    size: int = 0


def _refused(calls: list[_Call], exc: ChannelError) -> None:
    """A combined update was refused: each call tries alone; a lone call gets the error."""
    if len(calls) == 1:
        calls[0].error = exc
    else:
        for call in calls:
            call.retry = True
    for call in calls:
        call.done.set()


class Coalescer:
    def __init__(
        self, sink: UpdateSink, nursery: trio.Nursery, timeout: float, max_trades: int
    ) -> None:
        self._sink = sink
        self._nursery = nursery
        self._timeout = timeout
        self._max_batch_trades = min(MAX_COALESCED_TRADES, max_trades)
        #: Batches waiting for room, the one still taking calls, and whether the pump runs.
        self._queue: deque[_Batch] = deque()
        self._open_batch: _Batch | None = None
        self._pumping = False

    @property
    def waiting(self) -> bool:
        """Whether calls are queued (the pump wants to hear when room frees up)."""
        return bool(self._queue)

    async def submit(self, trades: tuple[Trade, ...]) -> State:
        """Make ``trades`` one update (or part of one) and return the state that contains them."""
        sink = self._sink
        solo = any(isinstance(t, DebitWithdrawal | Finalize | CreditDeposit) for t in trades)
        big = len(trades) >= ALREADY_A_BATCH
        while True:
            if big or (not self._queue and sink.has_room()):
                request_id, waiter = await sink.start_update(trades)
                return await sink.finish_update(request_id, waiter)
            call = _Call(trades, trio.current_time() + self._timeout)
            self._queue_call(call, solo)
            try:
                await call.done.wait()  # set by the pump (or its timeout) or by _resolve
            finally:
                # Not yet proposed: leave the queue (once proposed the update may still apply,
                # as for a call that times out waiting for its own update).
                call.withdrawn = True
            if call.retry:
                solo = True  # the combined update was refused: go again, alone
                continue
            if call.error is not None:
                raise call.error
            assert call.state is not None
            return call.state

    def _queue_call(self, call: _Call, solo: bool) -> None:
        batch = self._open_batch
        if solo or batch is None or batch.size + len(call.trades) > self._max_batch_trades:
            batch = _Batch()
            self._queue.append(batch)
            self._open_batch = None if solo else batch
        batch.calls.append(call)
        batch.size += len(call.trades)
        if not self._pumping:
            self._pumping = True
            self._nursery.start_soon(self._pump)

    async def _pump(self) -> None:
        """Propose the queued batches, oldest first, as room frees up."""
        sink = self._sink
        try:
            while self._queue:
                while not sink.has_room() or sink.paused():
                    with trio.move_on_at(self._earliest_deadline()):
                        await sink.wait_changed()  # woken when room frees up and after a resync
                    self._expire(trio.current_time())
                    if not self._queue:
                        return
                batch = self._queue.popleft()
                if batch is self._open_batch:
                    self._open_batch = None
                calls = [c for c in batch.calls if not c.withdrawn]
                if not calls:
                    continue
                trades = tuple(t for c in calls for t in c.trades)
                try:
                    request_id, waiter = await sink.start_update(trades)
                except ChannelError as exc:  # refused before anything was signed
                    _refused(calls, exc)
                    continue
                except Exception as exc:  # not the rules' verdict: report it, keep the node up
                    for call in calls:
                        call.error = exc
                        call.done.set()
                    continue
                self._nursery.start_soon(self._resolve, calls, request_id, waiter)
        finally:
            self._pumping = False

    def _earliest_deadline(self) -> float:
        """The deadline of the oldest call still queued (calls are queued in deadline order)."""
        for batch in self._queue:
            for call in batch.calls:
                if not call.withdrawn:
                    return call.deadline
        return math.inf

    def _expire(self, now: float) -> None:
        """Fail the queued calls whose deadline has passed; drop batches left empty."""
        for batch in self._queue:
            for call in batch.calls:
                if not call.withdrawn and call.deadline <= now:
                    call.withdrawn = True
                    call.error = trio.TooSlowError("the update was not proposed in time")
                    call.done.set()
        while self._queue and all(c.withdrawn for c in self._queue[0].calls):
            if self._queue.popleft() is self._open_batch:
                self._open_batch = None

    async def _resolve(self, calls: list[_Call], request_id: int, waiter: Waiter) -> None:
        try:
            state = await self._sink.finish_update(request_id, waiter)
        except UpdateRefusedError as exc:  # definitive: the proposal is dropped, never applies
            _refused(calls, exc)
        except trio.TooSlowError:
            # The update may still apply later: retrying would apply these trades twice.
            for call in calls:
                call.error = trio.TooSlowError("the update was not completed in time")
                call.done.set()
        else:
            for call in calls:
                call.state = state
                call.done.set()
