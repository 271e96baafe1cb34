"""One benchmark desk process: runs one or more ``open_node`` in this OS process and obeys commands.

    python benchmarks/desk_process.py '<json config>'

Started by ``benchmarks/node_bench.py`` (never by hand, though nothing stops you). The config says
which chain and adjudicator to use, which keys to run nodes for, whether they listen, and the
store's ``synchronous`` mode. Once every node is up the process prints one JSON line describing
them; then it reads one JSON command per line on stdin and answers each with one JSON line on
stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``). Logs go to stderr.

Every figure is measured here, inside the desk process, with ``time.perf_counter_ns``: a latency
is the time from calling ``Channel.pay`` (or ``trade``) to its return, which is when the new state
is fully signed and durably stored on this side (the channel API's contract).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import trio  # noqa: E402

from channels import open_node  # noqa: E402
from channels.core.consent import Approved  # noqa: E402
from channels.core.errors import ChannelError, TooManyPending  # noqa: E402
from channels.core.model import (  # noqa: E402
    Amount,
    PositionId,
    address,
)
from channels.core.options import OpenOption, Pay, Trade, Unwind  # noqa: E402
from channels.core.protocol import Phase  # noqa: E402
from channels.core.signing import LocalSigner  # noqa: E402
from channels.core.terms import AssetTerms, PeerTerms  # noqa: E402
from channels.core.trust import Peer, Trust  # noqa: E402
from channels.runtime.channel import Channel  # noqa: E402
from channels.runtime.node import Node, NodeSettings  # noqa: E402

log = logging.getLogger("bench.desk")

PRICE = 10**8
QTY = 10**16
WEEK = 7 * 24 * 3600


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS of a process in KiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def thread_cpu(tid: int) -> float:
    """user+system CPU seconds of one thread of this process (Linux)."""
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def summary(samples_ns: list[int]) -> dict[str, float]:
    """Percentiles in microseconds (nearest rank)."""
    if not samples_ns:
        return {"n": 0}
    s = sorted(samples_ns)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))] / 1000

    return {
        "n": len(s),
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": s[-1] / 1000,
        "mean_us": statistics.fmean(s) / 1000,
    }


class _StepCounter(trio.abc.Instrument):
    """Counts trio's task steps and scheduler passes (see ``Desk.cmd_task_steps``)."""

    def __init__(self) -> None:
        self.task_steps = 0
        self.passes = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.task_steps += 1

    def after_io_wait(self, timeout: float) -> None:
        self.passes += 1


class Desk:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.nodes: list[Node] = []
        self.profiler: Any = None
        self.steps: _StepCounter | None = None
        self.node_by_channel: dict[bytes, Node] = {}

    # helpers ------------------------------------------------------------------------------------
    def find(self, channel_id: str) -> Channel:
        raw = bytes.fromhex(channel_id.removeprefix("0x"))
        for node in self.nodes:
            try:
                return node.channel(raw)
            except ChannelError:
                continue
        raise KeyError(f"no node here has channel {channel_id}")

    def node_of(self, ch: Channel) -> Node:
        found = self.node_by_channel.get(ch.id)
        if found is None:
            found = next(n for n in self.nodes if ch.id in {c.id for c in n.channels})
            self.node_by_channel[ch.id] = found
        return found

    def option(self, ch: Channel, writer_is_us: bool = True) -> OpenOption:
        """A one-week call opened at a premium of 1 (public API only)."""
        position = ch.new_position(
            kind="call",
            underlying="ETH-USD",
            strike=3_000 * PRICE,
            expiry=self.node_of(ch).now() + WEEK,
            quantity=QTY,
            collateral=1_000,
            writer=ch.our_index if writer_is_us else 1 - ch.our_index,
        )
        return OpenOption(position, Amount(1))

    # commands -----------------------------------------------------------------------------------
    async def cmd_open(
        self,
        node: int,
        peers: list[dict[str, Any]],
        per_peer: int,
        deposit: int,
        peer_deposit: int,
        asset: str,
        oracle: str,
        concurrency: int = 32,
    ) -> dict[str, Any]:
        """Open ``per_peer`` channels to each peer (funded on chain), ``concurrency`` at a time."""
        me = self.nodes[node]
        limiter = trio.CapacityLimiter(concurrency)
        opened: list[str] = []
        t0 = time.perf_counter()

        durations: list[int] = []

        async def one(peer: dict[str, Any]) -> None:
            async with limiter:
                s = time.perf_counter_ns()
                ch = await me.open_channel(
                    peer=(peer["host"], peer["port"]),
                    peer_address=peer["address"],
                    asset=asset,
                    deposit=deposit,
                    peer_deposit=peer_deposit,
                    oracle=oracle,
                    challenge_period=3600,
                )
                opened.append("0x" + ch.id.hex())
                durations.append(time.perf_counter_ns() - s)

        async def to_peer(peer: dict[str, Any]) -> None:
            # The first channel to a peer dials it; the others then share that link.
            await one(peer)
            async with trio.open_nursery() as inner:
                for _ in range(per_peer - 1):
                    inner.start_soon(one, peer)

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(to_peer, peer)
        return {
            "channels": opened,
            "seconds": time.perf_counter() - t0,
            "per_channel": summary(durations),
        }

    async def cmd_wait_open(self, channels: list[str], timeout: float = 60) -> dict[str, Any]:
        with trio.fail_after(timeout):
            for cid in channels:
                while True:
                    try:
                        ch = self.find(cid)
                        break
                    except KeyError:
                        await trio.sleep(0.02)
                await ch.wait_phase(Phase.OPEN)
        return {}

    async def cmd_seq_pay(
        self, channel: str, n: int, warmup: int = 50, max_seconds: float = 1e9
    ) -> dict[str, Any]:
        """``n`` payments one after the other (fewer if ``max_seconds`` runs out first);
        per-call latency."""
        ch = self.find(channel)
        v_start = ch.version
        for _ in range(warmup):
            await ch.pay(1)
        samples: list[int] = []
        v0 = ch.version
        cpu0 = time.process_time()
        t0 = time.perf_counter_ns()
        stop = t0 + int(max_seconds * 1e9)
        for _ in range(n):
            s = time.perf_counter_ns()
            await ch.pay(1)
            e = time.perf_counter_ns()
            samples.append(e - s)
            if e > stop:
                break
        n = len(samples)
        elapsed = (time.perf_counter_ns() - t0) / 1e9
        cpu = time.process_time() - cpu0
        versions = ch.version - v0
        return {
            "latency": summary(samples),
            "calls_per_s": n / elapsed,
            "versions_per_s": versions / elapsed,
            "calls": n,
            "versions": versions,
            "versions_total": ch.version - v_start,
            "cpu_us_per_call": cpu / n * 1e6,
            "cpu_us_per_version": cpu / max(versions, 1) * 1e6,
        }

    async def cmd_cpu(self) -> dict[str, Any]:
        """CPU seconds this process has used: all threads, and the trio thread alone (the rest
        is the store's worker thread and other helpers)."""
        return {"cpu_s": time.process_time(), "main_thread_cpu_s": thread_cpu(os.getpid())}

    async def _saturate(
        self,
        channels: list[Channel],
        per_channel: int,
        seconds: float,
        warmup: float,
        make: Any,
    ) -> dict[str, Any]:
        """``per_channel`` tasks per channel, each calling ``await make(ch)`` in a loop; counts the
        updates (and the trades, ``make`` returns how many) completed inside the timed window."""
        start = time.perf_counter() + warmup
        end = start + seconds
        counted = {"updates": 0, "trades": 0, "busy": 0, "errors": 0, "all": 0}
        latencies: list[int] = []

        async def worker(ch: Channel) -> None:
            while time.perf_counter() < end:
                s = time.perf_counter_ns()
                try:
                    trades = await make(ch)
                except TooManyPending:
                    counted["busy"] += 1
                    await trio.sleep(0.0005)
                    continue
                except ChannelError as exc:
                    counted["errors"] += 1
                    log.warning("update failed: %s", exc)
                    await trio.sleep(0.001)
                    continue
                done = time.perf_counter_ns()
                counted["all"] += 1
                if start <= done / 1e9 <= end:
                    counted["updates"] += 1
                    counted["trades"] += trades
                    latencies.append(done - s)

        cpu = [0.0, 0.0]
        # Signed versions, read from the public channel view: several calls may share one.
        versions = [0, 0]
        # When the meter actually read them (on a loaded machine it wakes up late).
        read_at = [start, end]
        v_start = sum(ch.version for ch in channels)

        async def cpu_meter() -> None:
            await trio.sleep_until(trio.current_time() + (start - time.perf_counter()))
            cpu[0] = time.process_time()
            versions[0] = sum(ch.version for ch in channels)
            read_at[0] = time.perf_counter()
            await trio.sleep_until(trio.current_time() + (end - time.perf_counter()))
            cpu[1] = time.process_time()
            versions[1] = sum(ch.version for ch in channels)
            read_at[1] = time.perf_counter()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cpu_meter)
            for ch in channels:
                for _ in range(per_channel):
                    nursery.start_soon(worker, ch)
        signed = versions[1] - versions[0]
        return {
            "cpu_us_per_call": (cpu[1] - cpu[0]) / max(counted["updates"], 1) * 1e6,
            "cpu_us_per_version": (cpu[1] - cpu[0]) / max(signed, 1) * 1e6,
            "cpu_cores_used": (cpu[1] - cpu[0]) / seconds,
            "calls_per_s": counted["updates"] / seconds,
            "versions_per_s": signed / max(read_at[1] - read_at[0], 1e-9),
            "trades_per_s": counted["trades"] / seconds,
            "calls": counted["updates"],
            "versions": signed,
            "versions_total": sum(ch.version for ch in channels) - v_start,
            "calls_total": counted["all"],
            "busy_refusals": counted["busy"],
            "errors": counted["errors"],
            "latency": summary(latencies),
            "seconds": seconds,
        }

    async def cmd_pipelined_pay(
        self, channels: list[str], per_channel: int, seconds: float, warmup: float = 0.5
    ) -> dict[str, Any]:
        async def pay(ch: Channel) -> int:
            await ch.pay(1)
            return 1

        chans = [self.find(c) for c in channels]
        return await self._saturate(chans, per_channel, seconds, warmup, pay)

    async def cmd_batched(
        self,
        channel: str,
        per_channel: int,
        seconds: float,
        trades_per_update: int = 100,
        mix: str = "open_pay",
        warmup: float = 0.5,
    ) -> dict[str, Any]:
        """Updates of ``trades_per_update`` trades each.

        ``open_pay``: half OpenOption (we write, the peer holds), half Pay (the book grows).
        ``open_unwind``: half OpenOption, half Unwind of the positions this task opened in its
        previous update (the book stays at about ``per_channel * trades_per_update / 2``).
        """
        ch = self.find(channel)
        half = trades_per_update // 2
        mine: dict[int, list[PositionId]] = {}

        async def update(c: Channel) -> int:
            key = id(trio.lowlevel.current_task())
            opens = [self.option(c) for _ in range(half)]
            rest: list[Trade]
            previous = mine.get(key)
            if mix == "open_unwind" and previous:
                rest = [Unwind(pid, Amount(0)) for pid in previous]
            else:
                rest = [Pay(c.our_index, Amount(1)) for _ in range(trades_per_update - half)]
            await c.trade(*opens, *rest)
            mine[key] = [o.position.id for o in opens]
            return len(opens) + len(rest)

        result = await self._saturate([ch], per_channel, seconds, warmup, update)
        result["open_positions_after"] = len(ch.positions)
        return result

    async def cmd_fill(self, channel: str, target: int, batch: int = 100) -> dict[str, Any]:
        """Open positions (``batch`` per update, alternating writer) until ``target`` are open."""
        ch = self.find(channel)
        t0 = time.perf_counter()
        flip = False
        while len(ch.positions) < target:
            k = min(batch, target - len(ch.positions))
            trades = []
            for _ in range(k):
                trades.append(self.option(ch, writer_is_us=not flip))
                flip = not flip
            await ch.trade(*trades)
        return {"open": len(ch.positions), "seconds": time.perf_counter() - t0}

    async def cmd_update_cost(
        self, channel: str, n: int, warmup: int = 20, max_seconds: float = 1e9
    ) -> dict[str, Any]:
        """At the channel's current book: latency of a pay, of opening one option, and of
        unwinding it (each its own update, sequential; ``n`` of each, fewer if
        ``max_seconds`` runs out: a third of it for the pays, the rest for open+unwind)."""
        ch = self.find(channel)
        for _ in range(warmup):
            await ch.pay(1)
        pay_ns: list[int] = []
        open_ns: list[int] = []
        unwind_ns: list[int] = []
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        v0 = ch.version
        for _ in range(n):
            s = time.perf_counter_ns()
            await ch.pay(1)
            pay_ns.append(time.perf_counter_ns() - s)
            if time.perf_counter() - t0 > max_seconds / 3:
                break
        cpu1 = time.process_time()
        v1 = ch.version
        t0 = time.perf_counter()
        for _ in range(n):
            if time.perf_counter() - t0 > max_seconds * 2 / 3:
                break
            trade = self.option(ch)
            s = time.perf_counter_ns()
            await ch.trade(trade)
            m = time.perf_counter_ns()
            await ch.unwind(trade.position.id, 0)
            e = time.perf_counter_ns()
            open_ns.append(m - s)
            unwind_ns.append(e - m)
        cpu2 = time.process_time()
        v2 = ch.version
        return {
            "open_positions": len(ch.positions),
            "cpu_us_per_version_pay": (cpu1 - cpu0) / max(v1 - v0, 1) * 1e6,
            "cpu_us_per_version_open_unwind": (cpu2 - cpu1) / max(v2 - v1, 1) * 1e6,
            "cpu_us_per_pay": (cpu1 - cpu0) / max(len(pay_ns), 1) * 1e6,
            "cpu_us_per_open_unwind_pair": (cpu2 - cpu1) / max(len(open_ns), 1) * 1e6,
            "pay": summary(pay_ns),
            "open": summary(open_ns),
            "unwind": summary(unwind_ns),
        }

    async def cmd_task_steps(self) -> dict[str, Any]:
        """trio's work so far in this process: task steps (a task run until its next wait or
        yield) and scheduler passes (one epoll wait each). Counted from the first call on, by a
        trio instrument; per signed version they show how many trips through the scheduler an
        update costs, a figure the machine's load does not change."""
        if self.steps is None:
            self.steps = _StepCounter()
            trio.lowlevel.add_instrument(self.steps)
        return {"task_steps": self.steps.task_steps, "scheduler_passes": self.steps.passes}

    async def cmd_stats(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "rss_kib": rss_kib(),
            "channels": sum(len(n.channels) for n in self.nodes),
            "nodes": len(self.nodes),
        }

    async def cmd_cprofile(
        self, action: str, path: str | None = None, timer: str = "wall"
    ) -> dict[str, Any]:
        """cProfile of the trio thread. ``timer="thread"`` counts that thread's CPU time only
        (a wall-clock profile also counts waiting for the GIL and for the CPU on a busy box)."""
        import cProfile

        if action == "start":
            self.profiler = (
                cProfile.Profile(time.thread_time) if timer == "thread" else cProfile.Profile()
            )
            self.profiler.enable()
        else:
            assert self.profiler is not None
            self.profiler.disable()
            assert path is not None
            self.profiler.dump_stats(path)
            self.profiler = None
        return {}


async def serve_commands(desk: Desk) -> None:
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.pop("cmd")
        if cmd == "quit":
            reply({"ok": True})
            return
        try:
            result = await getattr(desk, f"cmd_{cmd}")(**request)
            reply({"ok": True, **result})
        except Exception as exc:  # report, keep serving
            log.exception("command %s failed", cmd)
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def partners_of(signer: LocalSigner, config: dict[str, Any]) -> Trust:
    """The desks of one benchmark run declare each other, with wide terms, and consent to every
    trade (the benchmarks measure the protocol, not the decisions)."""
    wide = AssetTerms(max_deposit=2**127, max_total=2**127)
    terms = PeerTerms(
        assets={address(a): wide for a in config.get("assets", [])},
        oracles=frozenset(address(o) for o in config.get("oracles", [])),
        min_challenge_period=1,
        max_challenge_period=2**32,
        max_channels=100_000,
    )
    peers = tuple(
        Peer(name=a, address=address(a), terms=terms)
        for a in dict.fromkeys(config.get("partners", []))
        if address(a) != signer.address
    )
    return Trust(peers=peers, decide=lambda _view: Approved("benchmark desk"))


async def main_async(config: dict[str, Any]) -> None:
    settings = NodeSettings(
        chain_poll_interval=config.get("poll", 0.1),
        update_timeout=120.0,
        open_timeout=600.0,
        escalate_after=None,
        synchronous=config.get("synchronous", "FULL"),
        max_pending=config.get("max_pending", 64),
    )
    workdir = Path(config["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    desk = Desk(config)
    async with AsyncExitStack() as stack:
        described = []
        for i, key in enumerate(config["keys"]):
            signer = LocalSigner.from_hex(key)
            node = await stack.enter_async_context(
                open_node(
                    signer=signer,
                    store=workdir / f"{config.get('name', 'desk')}-{i}.sqlite",
                    chain=config["chain"],
                    adjudicator=config["adjudicator"],
                    listen=("127.0.0.1", 0) if config.get("listen") else None,
                    settings=settings,
                    trust=partners_of(signer, config),
                )
            )
            desk.nodes.append(node)
            described.append({"address": "0x" + node.address.hex(), "port": node.listen_port})
        reply({"ok": True, "pid": os.getpid(), "nodes": described})
        await serve_commands(desk)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = json.loads(sys.argv[1])
    trio.run(main_async, config)


if __name__ == "__main__":
    main()
