"""The persist-then-send executor (channels/runtime/executor.py) on a real store.

A step's actions are performed in the caller's own task when nothing is ahead of them and the
store can make them durable without a wait; otherwise the executor's run task performs them. Both
ways keep write-before-send (a message leaves only once what it commits to is durable) and the
order in which the steps were handed over.
"""

from __future__ import annotations

from pathlib import Path

import trio

from channels.core.messages import Accept, Message
from channels.core.model import Address, Version
from channels.core.protocol import Action, Send
from channels.runtime.executor import Executor
from channels.store import open_store
from tests.store._sim import ADJUDICATOR, ALICE, BOB, CHAIN_ID, DEPOSIT, Sim


class Target:
    """A channel runtime as the executor sees it: its peer and what it is told."""

    def __init__(self) -> None:
        self.told: list[Action] = []

    @property
    def peer_address(self) -> Address:
        return BOB.address

    def on_action(self, action: Action) -> None:
        self.told.append(action)


def accept(sim: Sim, version: int) -> Accept:
    return Accept(sim.channel_id, Version(version), sim.updates[version].signed.signatures[1])


async def test_idle_steps_are_performed_at_once_and_durable_first(tmp_path: Path) -> None:
    sim = Sim()
    sim.open()
    sim.update(sim.option())
    async with open_store(tmp_path / "a.sqlite", ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), sim.phase)
        sent: list[tuple[Message, int]] = []

        def send(peer: Address, message: Message, points: tuple[str, ...]) -> None:
            # What the message commits to is durable when it leaves.
            sent.append((message, store.stats.transactions))

        executor = Executor(store, send)  # its run task is not even started
        target = Target()
        for version in (0, 1, 2):
            # Nothing else to run (at most one commit in trio's thread per scheduler pass).
            await trio.testing.wait_all_tasks_blocked()
            before = store.stats.transactions
            await executor.enqueue(
                target, [sim.persist(sim.updates[version]), Send(accept(sim, version))]
            )
            assert sent[-1] == (accept(sim, version), before + 1)
        assert (await store.load_channel(sim.channel_id)).latest == sim.updates[2]


async def test_a_step_never_overtakes_one_handed_to_the_run_task(tmp_path: Path) -> None:
    sim = Sim()
    sim.open()
    async with open_store(tmp_path / "a.sqlite", ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        await store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), sim.phase)
        sent: list[Message] = []
        executor = Executor(store, lambda peer, message, points: sent.append(message))
        target = Target()
        async with trio.open_nursery() as nursery:
            woken = trio.Event()
            nursery.start_soon(woken.wait)
            await trio.testing.wait_all_tasks_blocked()
            woken.set()  # another task is ready: the store commits in its thread, with a wait
            await executor.enqueue(target, [sim.persist(sim.updates[0]), Send(accept(sim, 0))])
            # Nothing ahead is durable yet: this one (durable already, nothing to persist)
            # still waits its turn.
            await executor.enqueue(target, [Send(accept(sim, 1))])
            assert sent == []
            await nursery.start(executor.run)
            with trio.fail_after(30):
                while len(sent) < 2:
                    await trio.sleep(0.01)
            assert sent == [accept(sim, 0), accept(sim, 1)]
            nursery.cancel_scope.cancel()
