"""End-to-end node benchmarks: desk processes over real TCP on 127.0.0.1, against a shared anvil.

    .venv/bin/python benchmarks/node_bench.py [--quick] [--only pair,normal,positions,hub,profile]

Normally run through ``benchmarks/run.py``. Each desk is its own OS process
(``benchmarks/desk_process.py``) running ``open_node`` with a SQLite store (``synchronous=FULL``
unless said otherwise); this process only starts anvil, deploys the adjudicator, starts the desks,
tells them what to do and collects what they measured. Channels are funded in ETH on chain and
opened through the normal ``open_channel`` path.

Scenarios (see benchmarks/README.md for what each figure means):

* ``pair``      two processes, one channel: sequential pay latency from the leader and from the
                follower, pipelined pay throughput, batched option trades.
* ``normal``    the same pair with ``synchronous=NORMAL`` (not durable across a power loss).
* ``positions`` pay / open / unwind latency at 0, 10, 100 and 1,000 open positions.
* ``hub``       one hub node with many channels to many peer identities (the peer identities
                live in a few processes, several ``open_node`` each); the hub's RSS and its
                aggregate updates/s.
* ``profile``   the sequential pair again under py-spy (if installed), with a CPU breakdown.

No figure is asserted: everything is reported, nothing fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import trio  # noqa: E402

from adjudicator import devchain  # noqa: E402
from adjudicator.deploy import deploy_adjudicator  # noqa: E402
from adjudicator.rpc import open_rpc  # noqa: E402
from channels.core.hashing import keccak256  # noqa: E402
from channels.core.signing import LocalSigner  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DESK = HERE / "desk_process.py"
ETH_ASSET = "0x" + "00" * 20
ETHER = 10**18


class DeskError(RuntimeError):
    pass


class DeskProc:
    """A desk process and its line-based JSON command channel."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        logdir: Path,
        wrap: Sequence[str] = (),
        timeout: float = 120.0,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.stderr = (logdir / f"{name}.log").open("wb")
        cmd = [*wrap, sys.executable, str(DESK), json.dumps({"name": name, **config})]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=str(_ROOT),
        )
        self.logpath = logdir / f"{name}.log"
        self.pid = 0
        self.nodes: list[dict[str, Any]] = []

    def ready(self) -> DeskProc:
        """Wait for the desk's nodes to be up (started in parallel, waited for one by one)."""
        if not self.nodes:
            hello = self._read()
            self.pid = hello["pid"]
            self.nodes = hello["nodes"]
        return self

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(5)
                tail = self.logpath.read_text(errors="replace")[-3000:]
                raise DeskError(f"desk {self.name} exited ({self.proc.returncode}):\n{tail}")
            text = line.decode(errors="replace").strip()
            if text.startswith("{"):
                reply: dict[str, Any] = json.loads(text)
                if not reply.get("ok"):
                    raise DeskError(f"desk {self.name}: {reply.get('error')}")
                return reply

    def send(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        self.proc.stdin.flush()

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.send(cmd, **args)
        return self._read()

    def measured(self, peer: DeskProc, cmd: str, **args: Any) -> dict[str, Any]:
        """Run ``cmd`` here; add both sides' CPU per signed version over the whole command
        (process CPU time, all threads, divided by the versions the channel advanced)."""
        steps = peer.call("task_steps"), self.call("task_steps")
        before, mine = peer.call("cpu"), self.call("cpu")
        started = time.perf_counter()
        out = self.call(cmd, **args)
        out["wall_s"] = time.perf_counter() - started
        after, mine_after = peer.call("cpu"), self.call("cpu")
        steps_after = peer.call("task_steps"), self.call("task_steps")
        n = max(out.get("versions_total", 1), 1)
        # trio's trips per version: unlike CPU time, not changed by other work on the machine.
        for who, a, b in (("peer", steps[0], steps_after[0]), ("self", steps[1], steps_after[1])):
            for key in ("task_steps", "scheduler_passes"):
                out[f"{who}_{key}_per_version"] = (b[key] - a[key]) / n
        for who, a, b in (("self", mine, mine_after), ("peer", before, after)):
            total = b["cpu_s"] - a["cpu_s"]
            main = b["main_thread_cpu_s"] - a["main_thread_cpu_s"]
            out[f"{who}_cpu_us_per_version"] = total / n * 1e6
            # Share of each side's CPU spent in the trio thread (the rest: the store's thread).
            out[f"{who}_main_thread_share"] = main / total if total > 0 else None
        return out

    def idle_cpu(self, peer: DeskProc, seconds: float) -> dict[str, float]:
        """CPU milliseconds per second each side spends with no update at all (chain polling,
        timers), measured over ``seconds`` of quiet: the part of any CPU-per-version figure
        that is not per version."""
        before, mine = peer.call("cpu"), self.call("cpu")
        started = time.perf_counter()
        time.sleep(seconds)
        after, mine_after = peer.call("cpu"), self.call("cpu")
        wall = time.perf_counter() - started
        return {
            "self_ms_per_s": (mine_after["cpu_s"] - mine["cpu_s"]) / wall * 1e3,
            "peer_ms_per_s": (after["cpu_s"] - before["cpu_s"]) / wall * 1e3,
        }

    def peers(self) -> list[dict[str, Any]]:
        return [{"host": "127.0.0.1", **n} for n in self.nodes]

    def close(self, wait: float = 30.0) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(wait)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()


class Env:
    def __init__(self, url: str, adjudicator: str, keys: tuple[str, ...], workdir: Path) -> None:
        self.url = url
        self.adjudicator = adjudicator
        self.keys = keys
        self.workdir = workdir
        self.oracle = "0x" + LocalSigner.from_hex(keys[9]).address.hex()
        self.procs: list[DeskProc] = []

    def desk(
        self,
        name: str,
        keys: Sequence[str],
        *,
        listen: bool,
        synchronous: str = "FULL",
        poll: float = 0.5,
        wrap: Sequence[str] = (),
        wait: bool = True,
    ) -> DeskProc:
        config = {
            "chain": self.url,
            "adjudicator": self.adjudicator,
            "keys": list(keys),
            "listen": listen,
            "synchronous": synchronous,
            "workdir": str(self.workdir / name),
            "poll": poll,
            # Every benchmark desk declares the others (the run's own dev accounts) as partners.
            "partners": ["0x" + LocalSigner.from_hex(k).address.hex() for k in self.keys],
            "assets": [ETH_ASSET],
            "oracles": [self.oracle],
        }
        proc = DeskProc(name, config, self.workdir, wrap)
        self.procs.append(proc)
        return proc.ready() if wait else proc

    def close(self, *procs: DeskProc) -> None:
        for p in procs or list(self.procs):
            p.close()
            if p in self.procs:
                self.procs.remove(p)

    def open_pair(self, leader: DeskProc, follower: DeskProc, deposit: int = 1000 * ETHER) -> str:
        follower.ready()
        leader.ready()
        out = leader.call(
            "open",
            node=0,
            peers=follower.peers(),
            per_peer=1,
            deposit=deposit,
            peer_deposit=deposit,
            asset=ETH_ASSET,
            oracle=self.oracle,
        )
        cid: str = out["channels"][0]
        follower.call("wait_open", channels=[cid])
        return cid


@contextmanager
def environment(accounts: int = 12) -> Iterator[Env]:
    workdir = Path(tempfile.mkdtemp(prefix="optchan-bench-"))
    try:
        with devchain.anvil(devchain.AnvilConfig(accounts=accounts)) as chain:

            async def deploy() -> bytes:
                async with open_rpc(chain.url) as rpc:
                    return await deploy_adjudicator(rpc, chain.private_keys[0])

            adjudicator = "0x" + trio.run(deploy).hex()
            env = Env(chain.url, adjudicator, chain.private_keys, workdir)
            try:
                yield env
            finally:
                env.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# scenarios --------------------------------------------------------------------------------------


def scenario_pair(env: Env, quick: bool, synchronous: str = "FULL") -> dict[str, Any]:
    """Sequential latency both ways, pipelined throughput, batched trades, on one channel."""
    tag = synchronous.lower()
    keys = (env.keys[1], env.keys[2]) if synchronous == "FULL" else (env.keys[3], env.keys[4])
    follower = env.desk(f"bob-{tag}", [keys[1]], listen=True, synchronous=synchronous, wait=False)
    leader = env.desk(f"alice-{tag}", [keys[0]], listen=False, synchronous=synchronous, wait=False)
    n = 300 if quick else 2000
    cap = 1.5 if quick else 6.0  # seconds: a slow machine measures fewer updates
    window = 1.0 if quick else 4.0
    out: dict[str, Any] = {"synchronous": synchronous}
    try:
        cid = env.open_pair(leader, follower)
        idle = leader.idle_cpu(follower, 1.0 if quick else 3.0)
        out["idle_cpu_ms_per_s"] = {
            "leader": idle["self_ms_per_s"],
            "follower": idle["peer_ms_per_s"],
        }
        out["seq_leader"] = leader.measured(follower, "seq_pay", channel=cid, n=n, max_seconds=cap)
        out["seq_follower"] = follower.measured(
            leader, "seq_pay", channel=cid, n=n, max_seconds=cap
        )
        out["pipelined_64"] = leader.measured(
            follower, "pipelined_pay", channels=[cid], per_channel=64, seconds=window
        )
        if synchronous == "FULL":
            # open+unwind first: it keeps the book small; open+pay then grows it.
            out["batched_open_unwind"] = leader.measured(
                follower, "batched", channel=cid, per_channel=8, seconds=window, mix="open_unwind"
            )
            out["batched_open_pay"] = leader.measured(
                follower, "batched", channel=cid, per_channel=8, seconds=window, mix="open_pay"
            )
        out["rss_kib"] = {
            "leader": leader.call("stats")["rss_kib"],
            "follower": follower.call("stats")["rss_kib"],
        }
    finally:
        env.close(leader, follower)
    return out


def scenario_positions(env: Env, quick: bool) -> dict[str, Any]:
    """Pay, open and unwind latency as the book grows (one channel, two processes)."""
    follower = env.desk("bob-book", [env.keys[6]], listen=True, wait=False)
    leader = env.desk("alice-book", [env.keys[5]], listen=False, wait=False)
    n = 100 if quick else 400
    cap = 1.0 if quick else 3.0  # seconds per book size
    out: dict[str, Any] = {}
    try:
        cid = env.open_pair(leader, follower)
        for target in (0, 10, 100, 1000):
            fill = leader.call("fill", channel=cid, target=target)
            row = leader.call("update_cost", channel=cid, n=n, max_seconds=cap)
            row["fill_seconds"] = fill["seconds"]
            out[str(target)] = row
    finally:
        env.close(leader, follower)
    return out


def peer_key(i: int) -> str:
    return "0x" + keccak256(f"bench peer {i}".encode()).hex()


def scenario_hub(env: Env, quick: bool) -> dict[str, Any]:
    """One hub with ``channels`` channels spread over ``peers`` peer identities."""
    peers, per_peer, procs = (20, 5, 2) if quick else (100, 10, 10)
    window = 1.0 if quick else 2.5
    hub = env.desk("hub", [env.keys[7]], listen=False, poll=0.2, wait=False)
    per_proc = peers // procs
    peer_procs = [
        env.desk(
            f"peers-{p}",
            [peer_key(p * per_proc + i) for i in range(per_proc)],
            listen=True,
            poll=1.0,
            # 100 peer stores on one disk would measure the disk's fsync rate, not the hub:
            # the hub is durable (FULL), its peers are not (see README).
            synchronous="NORMAL",
            wait=False,
        )
        for p in range(procs)
    ]
    for proc in peer_procs:
        proc.ready()
    out: dict[str, Any] = {"peers": peers, "channels": peers * per_peer, "peer_processes": procs}
    try:
        hub.ready()
        out["rss_kib_idle"] = hub.call("stats")["rss_kib"]
        all_peers = [p for proc in peer_procs for p in proc.peers()]
        opened = hub.call(
            "open",
            node=0,
            peers=all_peers,
            per_peer=per_peer,
            deposit=ETHER,
            peer_deposit=0,
            asset=ETH_ASSET,
            oracle=env.oracle,
            concurrency=64,
        )
        channels = opened["channels"]
        out["open_seconds"] = opened["seconds"]
        out["open_per_channel"] = opened["per_channel"]
        out["rss_kib_open"] = hub.call("stats")["rss_kib"]
        for per_channel in (1, 4):
            out[f"aggregate_{per_channel}_per_channel"] = hub.call(
                "pipelined_pay",
                channels=channels,
                per_channel=per_channel,
                seconds=window,
                warmup=1.0,
            )
        out["rss_kib_after_traffic"] = hub.call("stats")["rss_kib"]
        out["peer_rss_kib"] = [p.call("stats")["rss_kib"] for p in peer_procs]
    finally:
        env.close(hub, *peer_procs)
    return out


#: Where a sampled leaf frame's code lives, by the first path that matches (py-spy names
#: files relative to the repository or to site-packages).
_LAYERS = (
    (("channels/core/",), "channels.core: protocol, options, codec, hashing"),
    (("channels/store/",), "channels.store"),
    (("channels/runtime/",), "channels.runtime"),
    (("channels/transport/",), "channels.transport"),
    (("channels/", "adjudicator/"), "channels (other), adjudicator"),
    (("trio/", "outcome/"), "trio"),
    (("httpx/", "httpcore/", "h11/", "anyio/"), "HTTP to the chain (polling)"),
    (("msgpack/", "coincurve/", "noise/", "cryptography/"), "msgpack, coincurve, Noise cipher"),
)


def _layer(frame: str) -> str:
    for fragments, name in _LAYERS:
        if any(f" ({fragment}" in frame for fragment in fragments):
            return name
    return "standard library, benchmark driver, the rest"


def _parse_collapsed(path: Path) -> dict[str, Any]:
    """Self and inclusive sample counts per function from py-spy's collapsed ("raw") output."""
    selfc: dict[str, int] = {}
    incl: dict[str, int] = {}
    layers: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        # Leave out start-up: imports, node start, channel opening, shutdown.
        if any(
            m in f
            for f in frames
            for m in (
                "cmd_open",
                "open_channel",
                "_restore",
                "cmd_wait_open",
                "open_store",
                "open_node",
                "Store.open",
                "_start",
                "importlib",
                "__aexit__",
            )
        ):
            continue
        count = int(count_text)
        total += count
        names = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in f
            else f
            for f in frames
        ]
        leaf = names[-1]
        selfc[leaf] = selfc.get(leaf, 0) + count
        layer = _layer(frames[-1])
        layers[layer] = layers.get(layer, 0) + count
        for name in set(names):
            incl[name] = incl.get(name, 0) + count
    top_self = sorted(selfc.items(), key=lambda kv: -kv[1])[:25]
    top_incl = sorted(incl.items(), key=lambda kv: -kv[1])[:60]
    return {
        "samples": total,
        "by_layer": [
            (k, v, round(100 * v / max(total, 1), 1))
            for k, v in sorted(layers.items(), key=lambda kv: -kv[1])
        ],
        "top_self": [(k, v, round(100 * v / max(total, 1), 1)) for k, v in top_self],
        "top_inclusive": [(k, v, round(100 * v / max(total, 1), 1)) for k, v in top_incl],
    }


def scenario_profile(env: Env, quick: bool) -> dict[str, Any]:
    """The sequential pay loop of the pair, each desk run under py-spy (sampling the thread that
    holds the GIL)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    n = 1000 if quick else 4000
    profs = {r: env.workdir / f"profile-{r}.txt" for r in ("leader", "follower")}

    def wrap(role: str) -> list[str]:
        return [
            spy,
            "record",
            "--nonblocking",
            # Only the thread holding the GIL: the Python work there is to cut. Without it,
            # a thread waiting in epoll or in the disk's flush counts as busy (a third to a half
            # of all samples), which hides where the CPU goes.
            "--gil",
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            str(profs[role]),
            "--",
        ]

    follower = env.desk("bob-prof", [env.keys[2]], listen=True, wrap=wrap("follower"), wait=False)
    leader = env.desk("alice-prof", [env.keys[1]], listen=False, wrap=wrap("leader"), wait=False)
    out: dict[str, Any] = {"updates": n}
    try:
        cid = env.open_pair(leader, follower)
        out["seq_leader"] = leader.call("seq_pay", channel=cid, n=n, max_seconds=n / 200)
    finally:
        env.close(leader, follower)
    for role, path in profs.items():
        if path.exists():
            out[role] = _parse_collapsed(path)
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, RESULTS / f"profile-{role}.collapsed.txt")
    return out


SCENARIOS = {
    "pair": lambda env, quick: scenario_pair(env, quick, "FULL"),
    "normal": lambda env, quick: scenario_pair(env, quick, "NORMAL"),
    "positions": scenario_positions,
    "hub": scenario_hub,
    "profile": scenario_profile,
}


def run(quick: bool, only: Sequence[str] | None = None) -> dict[str, Any]:
    names = list(only or SCENARIOS)
    results: dict[str, Any] = {}
    with environment() as env:
        for name in names:
            t0 = time.perf_counter()
            load_before = os.getloadavg()[0]
            try:
                results[name] = SCENARIOS[name](env, quick)
            except DeskError as exc:
                results[name] = {"error": str(exc)}
                print(f"[{name}] failed: {exc}", file=sys.stderr)
            results[name]["wall_seconds"] = round(time.perf_counter() - t0, 1)
            # The 1-minute load average (other work on the machine makes latencies noisy).
            results[name]["loadavg_1m"] = [load_before, os.getloadavg()[0]]
            print(f"[{name}] {results[name]['wall_seconds']} s", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s] or None
    results = run(args.quick, only)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "node.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
