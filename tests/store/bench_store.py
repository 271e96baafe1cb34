"""Store throughput (printed, never asserted): ``.venv/bin/python -m tests.store.bench_store``.

Each state holds 10 open positions; each update unwinds one and opens another (two book rows
change, as in steady trading). Updates are signed beforehand, so only the store is timed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import trio

from channels.core.model import SignedUpdate
from channels.core.protocol import PersistState, Phase
from channels.store import AddChannel, Store, open_store
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID, DEPOSIT, Sim


def prepare(n: int) -> Sim:
    sim = Sim()
    sim.open()
    sim.update(*(sim.option(writer=i % 2) for i in range(10)))
    oldest = 1
    while len(sim.updates) < n + 3:
        sim.update(sim.unwind(oldest), sim.option())
        oldest += 1
    return sim


def bench_sync(sim: Sim, path: Path, sync: str, group: int) -> float:
    store = Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR, synchronous=sync)
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)
    for update in sim.updates[:3]:
        store.append_state(sim.channel_id, update)
    todo: list[SignedUpdate] = sim.updates[3:]
    start = time.perf_counter()
    for i in range(0, len(todo), group):
        store.apply([PersistState(sim.channel_id, u) for u in todo[i : i + group]])
    elapsed = time.perf_counter() - start
    store.close()
    return len(todo) / elapsed


async def bench_async(sims: list[Sim], path: Path) -> float:
    """Several channels, one task each, each awaiting every persist (write-before-send)."""
    async with open_store(path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
        for sim in sims:
            await store.persist(
                [AddChannel(sim.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)]
                + [PersistState(sim.channel_id, u) for u in sim.updates[:3]]
            )

        async def worker(sim: Sim) -> None:
            for update in sim.updates[3:]:
                await store.persist([PersistState(sim.channel_id, update)])

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for sim in sims:
                nursery.start_soon(worker, sim)
        elapsed = time.perf_counter() - start
        total = sum(len(s.updates) - 3 for s in sims)
        print(f"    ({total} persists in {store.stats.transactions - len(sims)} transactions)")
        return total / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    sim = prepare(n)
    with tempfile.TemporaryDirectory(dir=sys.argv[2] if len(sys.argv) > 2 else None) as tmp:
        root = Path(tmp)
        print(f"{n} states, 10 open positions each (unwind one + open one per update), {root}")
        for sync in ("FULL", "NORMAL"):
            for group in (1, 100):
                rate = bench_sync(sim, root / f"{sync}-{group}.db", sync, group)
                label = "one commit per state" if group == 1 else f"grouped commits of {group}"
                print(f"  synchronous={sync:<6} {label:<26} {rate:>9,.0f} states/s")
        sims = []
        for c in range(50):
            s = Sim(nonce=1000 + c)
            s.open()
            s.update(*(s.option(writer=i % 2) for i in range(10)))
            for k in range(1, n // 50 + 1):
                s.update(s.unwind(k), s.option())
            sims.append(s)
        rate = trio.run(bench_async, sims, root / "async.db")
        print(f"  synchronous=FULL   AsyncStore, 50 concurrent channels {rate:>9,.0f} states/s")


if __name__ == "__main__":
    main()
