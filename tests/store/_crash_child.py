"""Child process for the kill -9 test: appends states forever, printing each committed one.

``python -c ... <path> <sync|async> <round>``: opens the store (creating its channels on the first
round), resumes every channel from what the store holds, and appends random updates in a loop.
A line ``committed <channel> <version>`` is printed (and flushed) only after the call that made
that version durable has returned; the parent kills the process at a random moment.
"""

from __future__ import annotations

import random
import sys

import trio

from channels.core.protocol import PersistState, Phase
from channels.store import AddChannel, Store, StoredChannel, open_store
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID, DEPOSIT, Sim

CHANNELS = 4


def resume(sim: Sim, chan: StoredChannel, round_: int) -> None:
    sim.updates = [chan.latest]
    sim.book = chan.book
    sim.next_position = 1_000_000 * (round_ + 1)


def fresh_sims() -> list[Sim]:
    sims = []
    for c in range(CHANNELS):
        sim = Sim(nonce=500 + c)
        sim.open()
        sims.append(sim)
    return sims


def run_sync(path: str, round_: int) -> None:
    store = Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR)
    sims = fresh_sims()
    stored = {c.channel_id: c for c in store.load_channels()}
    for c, sim in enumerate(sims):
        if sim.channel_id in stored:
            resume(sim, stored[sim.channel_id], round_)
        else:
            store.apply(
                [AddChannel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)]
                + [PersistState(sim.channel_id, u) for u in sim.updates]
            )
            print(f"committed {c} {sim.latest.signed.state.version}", flush=True)
    rng = random.Random(round_)
    while True:
        c = rng.randrange(CHANNELS)
        update = sims[c].random_update(rng)
        store.append_state(sims[c].channel_id, update)
        print(f"committed {c} {update.signed.state.version}", flush=True)


async def run_async(path: str, round_: int) -> None:
    async with open_store(path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        sims = fresh_sims()
        stored = {c.channel_id: c for c in await store.load_channels()}

        async def worker(c: int) -> None:
            sim = sims[c]
            if sim.channel_id in stored:
                resume(sim, stored[sim.channel_id], round_)
            else:
                await store.persist(
                    [AddChannel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)]
                    + [PersistState(sim.channel_id, u) for u in sim.updates]
                )
                print(f"committed {c} {sim.latest.signed.state.version}", flush=True)
            rng = random.Random(round_ * 100 + c)
            while True:
                update = sim.random_update(rng)
                await store.persist([PersistState(sim.channel_id, update)])
                print(f"committed {c} {update.signed.state.version}", flush=True)

        async with trio.open_nursery() as nursery:
            for c in range(CHANNELS):
                nursery.start_soon(worker, c)


def main(argv: list[str]) -> None:
    path, mode, round_ = argv[0], argv[1], int(argv[2])
    if mode == "sync":
        run_sync(path, round_)
    else:
        trio.run(run_async, path, round_)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
