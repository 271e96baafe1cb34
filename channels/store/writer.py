"""The store's writer thread and the tickets its callers wait on (used by
:class:`~channels.store.asynchronous.AsyncStore`).

Why one long-lived thread fed through a queue rather than ``trio.to_thread`` per commit: the
thread pool's hand-off (a worker picked or spawned and renamed per job, a task woken to collect
the result and only then the callers) cost more Python time per durable update than the
store's own work. Here a caller's batch goes to the writer with one ``SimpleQueue.put`` and the
writer reports with one ``TrioToken.run_sync_soon``, which wakes the callers directly; no task
sits in between.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import trio

from channels.store.ops import Op, Results
from channels.store.rows import T


class PersistTicket:
    """A batch of operations waiting for the combiner; :meth:`wait` returns once it is durable."""

    __slots__ = ("_done", "_error", "_origin", "_results", "ops", "seq")

    def __init__(
        self, ops: Sequence[Op], seq: int, origin: Sequence[int | None] | None = None
    ) -> None:
        self.ops = tuple(ops)
        self.seq = seq
        #: Where each given operation's result is in the committed ones (see VersionLeases).
        self._origin = None if origin is None else tuple(origin)
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
        elif self._origin is not None:
            self._results = [None if j is None else outcome[j] for j in self._origin]
        else:
            self._results = outcome
        self._done.set()

    async def wait(self) -> Results:
        await self._done.wait()
        return self.result()

    def result(self) -> Results:
        """The outcome of a finished batch: its results, or the error it failed with."""
        if self._error is not None:
            raise self._error
        assert self._results is not None
        return self._results


#: Called in trio with a job's result, or with the error it raised.
_Report = Callable[[Any, "BaseException | None"], None]


class StoreWriter:
    """The one thread that owns the store's connection: runs jobs in the order posted, and
    reports each result back into trio with ``run_sync_soon`` (no task wakes in between)."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], _Report] | None] = (
            queue.SimpleQueue()
        )
        #: Jobs posted and not yet reported back; only trio's thread reads and writes it, and
        #: 0 means the writer thread is waiting for work (it does not touch the connection).
        self.busy = 0
        self._thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
        self._thread.start()

    def occupy_this_pass(self) -> None:
        """Queue a no-op for trio's entry queue: until the scheduler's next I/O poll runs it,
        trio counts a queued callback, so ``_nothing_else_to_run`` says no (see
        ``AsyncStore._dispatch``)."""
        self._token.run_sync_soon(_no_op)

    def post(self, fn: Callable[[], Any], report: _Report) -> None:
        self.busy += 1
        self._jobs.put((fn, report))

    def _reported(self, report: _Report, result: Any, error: BaseException | None) -> None:
        self.busy -= 1
        report(result, error)

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the writer thread and return its result (or raise its error). A caller
        cancelled while waiting does not withdraw the job: it still runs, unobserved."""
        done = trio.Event()
        box: list[Any] = []

        def report(result: Any, error: BaseException | None) -> None:
            box.extend((result, error))
            done.set()

        self.post(fn, report)
        await done.wait()
        if box[1] is not None:
            raise box[1]
        result: T = box[0]
        return result

    def stop(self) -> None:
        """Let the thread end once the jobs before this one are done, and wait for it."""
        self._jobs.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, report = job
            error: BaseException | None = None
            result: Any = None
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller in trio, never lost here
                error = exc
            try:
                self._token.run_sync_soon(self._reported, report, result, error)
            except trio.RunFinishedError:  # pragma: no cover - trio ended under a running job
                return


def _no_op() -> None:
    pass
