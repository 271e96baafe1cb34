"""The store's commit path alone, next to a bare SQLite commit measured in the same run.

    .venv/bin/python benchmarks/store_commit.py [--quick | --updates N]

Real, doubly signed updates are built beforehand with the options rules, so only the store is
timed. Scenarios, each on a fresh store with ``synchronous=FULL``:

* ``pay``: updates of one ``Pay`` (the sequential path's commit);
* ``batched``: updates of 100 trades, 50 ``OpenOption`` + 50 ``Unwind`` of the positions the
  previous update opened, on a book of ~450 open positions (the node benchmark's batched mix).

Each is committed two ways: :meth:`Store.apply`, one update per transaction in the calling
thread, and :meth:`AsyncStore.persist` from trio, one update at a time (with the hand-off to the
writer thread and back); and ``leader sig+state``, as a leader's desk persists each update: its
proposal's ``PersistSignature`` (within the version lease: no commit) and then the fully signed
``PersistState``. Printed per scenario: wall p50, CPU per commit (``thread_time`` of the
committing thread for ``apply``, ``process_time`` of all threads for ``persist``), CPU per trade,
and each as a ratio to the bare commit: ``BEGIN IMMEDIATE; INSERT`` of one row holding as many
bytes as the update's blob; ``COMMIT``. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import trio  # noqa: E402

from channels.core import eip712, model, wire  # noqa: E402
from channels.core.hashing import keccak256  # noqa: E402
from channels.core.options import (  # noqa: E402
    Context,
    CreditDeposit,
    OpenOption,
    Pay,
    Trade,
    Unwind,
    apply_trades,
    opening_state,
)
from channels.core.positions import PositionBook  # noqa: E402
from channels.core.protocol import PersistSignature, PersistState, Phase  # noqa: E402
from channels.core.signing import LocalSigner  # noqa: E402
from channels.store import AddChannel, Op, Store, open_store  # noqa: E402

NOW = 1_700_000_000
DEPOSIT = 10**15
ALICE = LocalSigner(keccak256(b"store-bench-alice"))
BOB = LocalSigner(keccak256(b"store-bench-bob"))
ORACLE = LocalSigner(keccak256(b"store-bench-oracle"))
ADJUDICATOR = model.address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
ASSET = model.address("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
CHAIN_ID = 31337


@dataclass
class Channel:
    """Both sides of one channel, as a pair of machines would build its updates."""

    params: model.Params
    ctx: Context
    book: PositionBook
    persists: list[PersistState]
    next_id: int = 1

    @classmethod
    def new(cls) -> Channel:
        params = model.Params(
            chain_id=CHAIN_ID,
            adjudicator=ADJUDICATOR,
            asset=ASSET,
            asset_decimals=6,
            participants=(ALICE.address, BOB.address),
            challenge_period=3600,
            oracle=ORACLE.address,
            nonce=int.from_bytes(os.urandom(4), "big"),
        )
        domain = eip712.Domain(CHAIN_ID, ADJUDICATOR)
        ctx = Context(params, domain, model.Timestamp(NOW), (DEPOSIT, DEPOSIT))
        channel = cls(params, ctx, PositionBook(), [])
        channel.persists.append(
            PersistState(params.channel_id, channel.sign(opening_state(params), ()))
        )
        credit = model.Amount(DEPOSIT)
        channel.update((CreditDeposit(0, credit), CreditDeposit(1, credit)))
        return channel

    def sign(self, state: model.State, trades: tuple[Trade, ...]) -> model.SignedUpdate:
        digest = eip712.state_digest(self.ctx.domain, state)
        sigs = (ALICE.sign_digest(digest), BOB.sign_digest(digest))
        return model.SignedUpdate(model.SignedState(state, sigs), trades)

    def update(self, trades: Sequence[Trade]) -> None:
        base = self.persists[-1].update.signed.state
        version = model.Version(base.version + 1)
        self.book.begin()
        state = apply_trades(base, self.book, tuple(trades), self.ctx, version)
        # The changed slots, as the machine hands them to the store with the state.
        changes = self.book.commit_oldest()
        signed = self.sign(state, tuple(trades))
        # And the struct hash it signed (the machine computed it to sign or check the state).
        self.persists.append(
            PersistState(
                self.params.channel_id,
                signed,
                changes=changes,
                state_hash=eip712.state_struct_hash(state),
            )
        )

    def option(self) -> OpenOption:
        pid = self.next_id
        self.next_id += 1
        position = model.Position(
            id=model.PositionId(pid),
            underlying=model.symbol("ETH-USD"),
            kind=model.OptionKind.CALL,
            strike=model.Price(2_000 * model.PRICE_SCALE + pid),
            expiry=model.Timestamp(NOW + 30 * 86_400),
            quantity=model.Quantity(model.QUANTITY_SCALE // 10),
            writer=pid % 2,
            collateral=model.Amount(1_000 + pid),
        )
        return OpenOption(position, model.Amount(10))


def build(kind: str, n: int) -> tuple[Channel, int]:
    """A channel whose first ``warm`` persists set it up; the ``n`` after them are timed."""
    channel = Channel.new()
    if kind == "pay":
        for _ in range(n):
            channel.update((Pay(0, model.Amount(1)),))
        return channel, 2
    opened: list[int] = []
    for _ in range(8):  # ~400 open positions, as in the node benchmark's batched mix
        trades = [channel.option() for _ in range(50)]
        opened = [t.position.id for t in trades]
        channel.update(trades)
    warm = len(channel.persists)
    for _ in range(n):
        opens = [channel.option() for _ in range(50)]
        channel.update([*opens, *(Unwind(model.PositionId(p), model.Amount(1)) for p in opened)])
        opened = [t.position.id for t in opens]
    return channel, warm


def _p50(xs: list[float]) -> float:
    return statistics.median(xs)


def bare_commit(path: Path, size: int, n: int) -> dict[str, float]:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    wall, cpu = [], []
    for i in range(n):
        blob = os.urandom(size)
        t0, c0 = time.perf_counter(), time.thread_time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, blob))
        conn.execute("COMMIT")
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
    conn.close()
    return {"wall_us": _p50(wall) * 1e6, "cpu_us": statistics.fmean(cpu) * 1e6}


def _open_sync(path: Path, channel: Channel, warm: int) -> Store:
    store = Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR, synchronous="FULL")
    store.apply([AddChannel(channel.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)])
    for persist in channel.persists[:warm]:
        store.apply([persist])
    return store


def store_apply(path: Path, channel: Channel, warm: int) -> dict[str, float]:
    store = _open_sync(path, channel, warm)
    wall, cpu = [], []
    for persist in channel.persists[warm:]:
        t0, c0 = time.perf_counter(), time.thread_time()
        store.apply([persist])
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
    store.close()
    return {"wall_us": _p50(wall) * 1e6, "cpu_us": statistics.fmean(cpu) * 1e6}


def _persisted(
    path: Path, channel: Channel, warm: int, steps: list[list[list[Op]]]
) -> dict[str, float]:
    """Each update's ``steps`` (one ``AsyncStore.persist`` call each), in order, after ``warm``
    updates: wall p50 per update and process CPU per update."""
    wall: list[float] = []
    cpu_total = 0.0

    async def run() -> None:
        nonlocal cpu_total
        async with open_store(path, ALICE.address, CHAIN_ID, ADJUDICATOR) as store:
            await store.persist([AddChannel(channel.params, 0, (DEPOSIT, DEPOSIT), Phase.OPEN)])
            for update in steps[:warm]:
                for ops in update:
                    await store.persist(ops)
            c0 = time.process_time()
            for update in steps[warm:]:
                t0 = time.perf_counter()
                for ops in update:
                    await store.persist(ops)
                wall.append(time.perf_counter() - t0)
            cpu_total = time.process_time() - c0

    trio.run(run)
    n = len(steps) - warm
    return {"wall_us": _p50(wall) * 1e6, "cpu_us": cpu_total / n * 1e6}


def store_persist(path: Path, channel: Channel, warm: int) -> dict[str, float]:
    return _persisted(path, channel, warm, [[[persist]] for persist in channel.persists])


def leader_pairs(path: Path, channel: Channel, warm: int) -> dict[str, float]:
    """As a leader's desk persists each update: the signature of its proposal (within the
    version lease: no commit), then the fully signed state (one commit)."""
    steps: list[list[list[Op]]] = [
        [[PersistSignature(p.channel_id, p.update.signed.state.version, state_hash(p))], [p]]
        for p in channel.persists
    ]
    return _persisted(path, channel, warm, steps)


def state_hash(persist: PersistState) -> bytes:
    return persist.state_hash or eip712.state_struct_hash(persist.update.signed.state)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 updates per scenario, not 200")
    parser.add_argument("--updates", type=int, default=0, help="updates per scenario")
    args = parser.parse_args(argv)
    n = args.updates or (40 if args.quick else 200)
    print(
        f"store commit path - python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="optchan-store-bench-") as tmp:
        root = Path(tmp)
        for kind, trades in (("pay", 1), ("batched", 100)):
            channel, warm = build(kind, n)
            size = len(wire.encode_update(channel.persists[-1].update))
            runs: dict[str, Callable[[Path, Channel, int], dict[str, float]]] = {
                "Store.apply": store_apply,
                "AsyncStore.persist": store_persist,
                "leader sig+state": leader_pairs,
            }
            bare = bare_commit(root / f"bare-{kind}.db", size, n)
            row: dict[str, Any] = {"blob_bytes": size, "bare": bare}
            print(
                f"\n{kind}: {n} updates of {trades} trade(s), update blob {size:,} bytes\n"
                f"  bare SQLite FULL commit of one {size:,}-byte row: "
                f"wall p50 {bare['wall_us']:,.0f} µs, CPU {bare['cpu_us']:,.0f} µs"
            )
            for name, fn in runs.items():
                got = fn(root / f"{kind}-{name}.db", channel, warm)
                row[name] = got
                print(
                    f"  {name:<19} wall p50 {got['wall_us']:>7,.0f} µs "
                    f"({got['wall_us'] / bare['wall_us']:4.2f}x bare)   "
                    f"CPU per commit {got['cpu_us']:>7,.0f} µs "
                    f"({got['cpu_us'] / bare['cpu_us']:5.2f}x bare), "
                    f"beyond bare {max(0.0, got['cpu_us'] - bare['cpu_us']) / trades:,.1f} "
                    "µs per trade"
                )
            out[kind] = row
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return out


if __name__ == "__main__":
    main()
