"""The persist-then-send executor: where the write-before-send rule is kept while updates stay fast.

Channel runtimes hand it the actions of each machine step, in order. It takes every batch that is
waiting, makes all their persistence actions durable in ONE store transaction, and only then
performs the sends and notifications of those batches, in order. Persisting a later action before
an earlier send is harmless; sending before persisting is never done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from channels.core.messages import Message, OpenAccept
from channels.core.model import Address
from channels.core.protocol import Action, PersistSignature, PersistState, PhaseChanged, Send
from channels.store.persister import Persister
from channels.testing.crash import crash_point

#: Sends a message to a peer; the crash points are fired once the message is on the wire.
SendFn = Callable[[Address, Message, tuple[str, ...]], None]


class ActionTarget(Protocol):
    """The channel runtime an action batch belongs to."""

    @property
    def peer_address(self) -> Address: ...

    def on_action(self, action: Action) -> None:
        """Perform a non-send action (wake callers, emit events) once it is durable."""
        ...


def crash_points_of(durable: Sequence[Action]) -> tuple[str, ...]:
    """The crash points (``channels.testing.crash``) a batch of durable actions passes."""
    points: list[str] = []
    if any(isinstance(a, PersistSignature) for a in durable):
        points.append("signature")
    if any(isinstance(a, PersistState) for a in durable):
        points.append("state")
    return tuple(points)


Durable = PersistSignature | PersistState | PhaseChanged


def _durable(actions: Sequence[Action]) -> list[Durable]:
    return [a for a in actions if isinstance(a, PersistSignature | PersistState | PhaseChanged)]


class Executor:
    def __init__(self, store: Persister, send: SendFn, capacity: int = 10_000) -> None:
        self._store = store
        self._send = send
        self._in, self._out = trio.open_memory_channel[tuple[ActionTarget, list[Action]]](capacity)
        #: Batches handed to the run task and not yet performed (queued or in progress).
        self._pending = 0

    @property
    def store(self) -> Persister:
        """The store it persists through (read by the runtime for its own journals)."""
        return self._store

    async def enqueue(self, target: ActionTarget, actions: list[Action]) -> None:
        if not actions:
            return
        if self._pending == 0 and self._perform_now(target, actions):
            return
        self._pending += 1
        # Without a schedule point while there is room: a step's caller holds its channel's
        # lock here, and yielding to the scheduler on every step was one task switch per
        # message for nothing (the executor wakes on the first item either way).
        try:
            self._in.send_nowait((target, actions))
        except trio.WouldBlock:
            try:
                await self._in.send((target, actions))
            except BaseException:
                self._pending -= 1  # not handed over (cancelled while the queue was full)
                raise

    def _perform_now(self, target: ActionTarget, actions: list[Action]) -> bool:
        """Persist and perform ``actions`` here, in the caller's task, when nothing is ahead of
        them and the store can make them durable without a wait (signatures its lease covers,
        or a commit it makes at once with nothing else to run). Same order, same crash points
        as the run task; a message then leaves as soon as its step is made (a caller's proposal
        does not wait for the run task's next turn). False: nothing was done."""
        durable = _durable(actions)
        points: tuple[str, ...] = ()
        if durable:
            if not self._store.can_persist_now(durable):
                return False
            points = crash_points_of(durable)
            for point in points:
                crash_point(point, "pre_write")
            try:
                self._store.persist_now(durable)
            except Exception:
                # The store failed: the run task meets the failure as it always did (it
                # persists the batch again and the store refuses it), not this caller.
                return False
            for point in points:
                crash_point(point, "post_write_pre_send")
        try:
            self._perform(target, actions, points)
        except Exception as exc:
            # Our own failure (a send, a handler), not the caller's input: the caller may be a
            # link's reader, which must not count it as the peer's bad message. A RuntimeError,
            # outside the ChannelError tree that callers handle, stops the node as it did when
            # the run task met it.
            raise RuntimeError(f"performing a step's actions failed: {exc!r}") from exc
        return True

    def _perform(
        self, target: ActionTarget, actions: list[Action], points: tuple[str, ...]
    ) -> None:
        for action in actions:
            if isinstance(action, Send):
                message = action.message
                # The responder's OpenAccept on the wire is its channel:post_send point.
                sent = points if type(message) is not OpenAccept else (*points, "channel")
                self._send(target.peer_address, message, sent)
            else:
                target.on_action(action)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for first in self._out:
            batch = [first]
            while True:
                try:
                    batch.append(self._out.receive_nowait())
                except trio.WouldBlock:
                    break
            durable = [action for _, actions in batch for action in _durable(actions)]
            points = crash_points_of(durable)
            for point in points:
                crash_point(point, "pre_write")
            if durable:
                await self._store.persist(durable)
            for point in points:
                crash_point(point, "post_write_pre_send")
            for target, actions in batch:
                self._perform(target, actions, points)
            self._pending -= len(batch)
