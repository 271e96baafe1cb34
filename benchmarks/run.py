"""The benchmark suite in one command.

    .venv/bin/python benchmarks/run.py            # everything, well under 3 minutes
    .venv/bin/python benchmarks/run.py --quick    # scaled down, under 40 s (no profile)
    .venv/bin/python benchmarks/run.py --only core,gas,platform,pair,normal,positions,hub,profile

Prints one table (with the machine's core count and load) of every figure next to its goal from
the issues, and writes the raw figures as JSON to ``benchmarks/results/`` (gitignored):
``summary.json`` (everything), ``node.json``, ``gas.json``, ``core.txt`` and, with py-spy
installed, ``profile-{leader,follower}.collapsed.txt``. Nothing here asserts on time.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_ROOT = HERE.parent
for p in (str(_ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import core  # noqa: E402
import floors  # noqa: E402
import gas  # noqa: E402
import node_bench  # noqa: E402

RESULTS = HERE / "results"
ALL = ("core", "gas", "platform", "pair", "normal", "positions", "hub", "profile")
NODE = ("pair", "normal", "positions", "hub", "profile")


# parts that are not node scenarios ------------------------------------------------------------


def run_core(quick: bool) -> dict[str, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        core.main(["--quick"] if quick else [])
    text = buf.getvalue()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "core.txt").write_text(text)
    rows: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        parts = line.rsplit(None, 2)
        if len(parts) == 3:
            try:
                rows[parts[0].strip()] = {"median_us": float(parts[1]), "p90_us": float(parts[2])}
            except ValueError:
                continue
    return {"rows": rows}


def run_gas() -> dict[str, Any]:
    path = RESULTS / "gas.json"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        gas.main(["--json", str(path)])
    doc = json.loads(path.read_text())
    return {"gasUsed": doc["gasUsed"], "table": gas.table(doc["gasUsed"])}


def run_platform(quick: bool) -> dict[str, Any]:
    """The floors under every node figure (benchmarks/floors.py), measured in this run."""
    return floors.measure(quick)


# the table ------------------------------------------------------------------------------------


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f} ms"


def _num(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:,.0f}{unit}"


def _verdict(value: float | None, goal: float, higher_is_better: bool) -> str:
    if value is None:
        return "-"
    ok = value >= goal if higher_is_better else value <= goal
    return "meets" if ok else "misses"


Row = tuple[str, str, str, str, str]


def _ratio(x: float | None, floor: float | None) -> str:
    return "-" if x is None or not floor else f"{x / floor:.2f}x"


_STEP_KEYS = ("task_steps", "scheduler_passes")


def _net_of_idle(
    sc: dict[str, Any], part: dict[str, Any], by_role: dict[str, float]
) -> dict[str, float] | None:
    """CPU per signed version less what each side spends with no update at all (its idle CPU
    per second, measured in the same run, times the command's duration, spread over its
    versions): the per-version part alone. None when the run did not measure idle CPU."""
    idle, wall = sc.get("idle_cpu_ms_per_s"), part.get("wall_s")
    versions = part.get("versions_total")
    if not idle or not wall or not versions:
        return None
    return {
        role: max(cpu - idle[role] * 1e3 * wall / versions, 0.0) for role, cpu in by_role.items()
    }


def summary_rows(r: dict[str, Any]) -> list[Row]:
    """(figure, measured, as a ratio to its floor, goal, verdict) for every figure."""
    rows: list[Row] = []

    def add(name: str, shown: str, ratio: str = "", goal: str = "", verdict: str = "") -> None:
        rows.append((name, shown, ratio, goal, verdict))

    plat = r.get("platform", {})
    commit = _get(plat, "sqlite_commit_full", "p50_us")
    rtt = _get(plat, "rtt", "p50_us")
    sv = _get(plat, "crypto", "sign_verify_us")
    seq_floor = plat.get("sequential_floor_us")
    ceiling = plat.get("signing_ceiling_per_s")
    if plat:
        f, n = plat.get("sqlite_commit_full", {}), plat.get("sqlite_commit_normal", {})
        add(
            "floor: one SQLite WAL commit, FULL p50 / p99",
            f"{_ms(commit)} / {_ms(f.get('p99_us'))}",
        )
        add(
            "floor: one SQLite WAL commit, NORMAL p50 / p99",
            f"{_ms(n.get('p50_us'))} / {_ms(n.get('p99_us'))}",
        )
        add(
            "floor: loopback TCP round trip between two processes, p50 / p99",
            f"{_ms(rtt)} / {_ms(_get(plat, 'rtt', 'p99_us'))}",
        )
        c = plat.get("crypto", {})
        add(
            "floor: sign / verify one digest (sign+verify)",
            f"{c.get('sign_us', 0):.0f} / {c.get('verify_us', 0):.0f} µs ({sv:.0f} µs)",
        )
        add("floor: sequential round = 2 commits + RTT + 2 (sign+verify)", _ms(seq_floor))
        add("floor: signing ceiling = 1 / (sign+verify), one core", _num(ceiling, " versions/s"))
    single_channel: float | None = None
    for mode, key in (("FULL", "pair"), ("NORMAL", "normal")):
        sc = r.get(key)
        if not sc:
            continue
        if "error" in sc:
            add(f"pair {mode}", "FAILED: " + sc["error"][:60])
            continue
        full = mode == "FULL"
        idle = sc.get("idle_cpu_ms_per_s")
        if idle:
            add(
                f"idle CPU with the channel open ({mode}; chain polling, timers), "
                "leader / follower",
                f"{idle['leader']:.1f} / {idle['follower']:.1f} ms per s",
            )

        def add_cpu(
            scenario: dict[str, Any], part: dict[str, Any], by: dict[str, float], judged: bool
        ) -> None:
            worst = max(by.values()) / sv if sv else None
            add(
                "  CPU per signed version, leader / follower",
                f"{by['leader']:,.0f} / {by['follower']:,.0f} µs",
                f"{_ratio(by['leader'], sv)} / {_ratio(by['follower'], sv)}",
                "<= 3x (sign+verify)" if judged else "",
                _verdict(worst, 3.0, False) if judged else "",
            )
            mine = "self" if next(iter(by)) == "leader" else "peer"
            theirs = "peer" if mine == "self" else "self"
            steps = [part.get(f"{w}_{k}_per_version") for w in (mine, theirs) for k in _STEP_KEYS]
            if None not in steps:
                add(
                    "  trio per version, leader / follower: task steps; scheduler passes",
                    f"{steps[0]:.1f} / {steps[2]:.1f}; {steps[1]:.1f} / {steps[3]:.1f}",
                )
            net = _net_of_idle(scenario, part, by)
            if net is not None:
                add(
                    "    the same less idle CPU (the per-version part alone)",
                    f"{net['leader']:,.0f} / {net['follower']:,.0f} µs",
                    f"{_ratio(net['leader'], sv)} / {_ratio(net['follower'], sv)}",
                )

        for who, other in (("leader", "follower"), ("follower", "leader")):
            part = sc.get(f"seq_{who}") or {}
            lat = part.get("latency") or {}
            p50, p99 = lat.get("p50_us"), lat.get("p99_us")
            verdict = ""
            if full and p50 is not None and p99 is not None and seq_floor:
                verdict = _verdict(max(p50 / (1.3 * seq_floor), p99 / (3 * seq_floor)), 1.0, False)
            add(
                f"sequential pay from the {who}, {mode}: p50 / p99",
                f"{_ms(p50)} / {_ms(p99)}",
                f"{_ratio(p50, seq_floor)} / {_ratio(p99, seq_floor)}",
                "<= 1.3x / <= 3x seq. floor" if full else "(comparison)",
                verdict,
            )
            add(
                "  calls/s / signed versions/s",
                f"{_num(part.get('calls_per_s'))} / {_num(part.get('versions_per_s'))}",
            )
            own, peer = part.get("self_cpu_us_per_version"), part.get("peer_cpu_us_per_version")
            if own is not None and peer is not None:
                add_cpu(sc, part, {who: own, other: peer}, full)
        pipe = sc.get("pipelined_64") or {}
        vps = pipe.get("versions_per_s")
        if full:
            single_channel = vps
        add(
            f"64 concurrent pay callers, one channel, {mode}: signed versions/s",
            _num(vps),
            _ratio(vps, ceiling),
            ">= 0.40x signing ceiling" if full else "(comparison)",
            _verdict(vps / ceiling if vps is not None and ceiling else None, 0.4, True)
            if full
            else "",
        )
        add("  calls/s (several calls coalesce into one version)", _num(pipe.get("calls_per_s")))
        own, peer = pipe.get("self_cpu_us_per_version"), pipe.get("peer_cpu_us_per_version")
        if own is not None and peer is not None:
            add_cpu(sc, pipe, {"leader": own, "follower": peer}, full)
        for mix, label in (
            ("open_unwind", "50 OpenOption + 50 Unwind"),
            ("open_pay", "50 OpenOption + 50 Pay"),
        ):
            b = sc.get(f"batched_{mix}")
            if not b:
                continue
            t = b.get("trades_per_s")
            add(
                f"batched, 100 trades per update ({label}), 8 in flight: trades/s",
                _num(t),
                "",
                ">= 50,000",
                _verdict(t, 50000, True),
            )
            own, peer = b.get("self_cpu_us_per_version"), b.get("peer_cpu_us_per_version")
            add(
                "  signed versions/s; CPU per signed version, leader / follower",
                f"{_num(b.get('versions_per_s'))}; "
                + ("-" if own is None else f"{own:,.0f} / {peer:,.0f} µs"),
                f"{_ratio(own, sv)} / {_ratio(peer, sv)}",
            )
    pos = r.get("positions")
    if pos and "error" not in pos:
        for n in ("0", "10", "100", "1000"):
            row = pos.get(n)
            if not row:
                continue
            add(
                f"at {int(n):,} open positions: pay / open / unwind p50",
                f"{_ms(_get(row, 'pay', 'p50_us'))} / {_ms(_get(row, 'open', 'p50_us'))} / "
                f"{_ms(_get(row, 'unwind', 'p50_us'))}",
                _ratio(_get(row, "pay", "p50_us"), seq_floor),
            )
            cp, cou = row.get("cpu_us_per_version_pay"), row.get("cpu_us_per_version_open_unwind")
            if cp is not None and cou is not None:
                add(
                    "  leader CPU per signed version: pay / open-or-unwind",
                    f"{cp:,.0f} / {cou:,.0f} µs",
                    f"{_ratio(cp, sv)} / {_ratio(cou, sv)}",
                )
        base, last = pos.get("0"), pos.get("1000")
        if base and last:
            lat = [
                _get(last, k, "p50_us") / _get(base, k, "p50_us")
                for k in ("pay", "open", "unwind")
                if _get(base, k, "p50_us") and _get(last, k, "p50_us")
            ]
            cpu = [
                last[k] / base[k]
                for k in ("cpu_us_per_version_pay", "cpu_us_per_version_open_unwind")
                if base.get(k) and last.get(k)
            ]
            if lat:
                add(
                    "cost at 1,000 positions / at 0: latency (worst of pay, open, unwind)",
                    f"{max(lat):.2f}x",
                    "",
                    "<= 1.2x",
                    _verdict(max(lat), 1.2, False),
                )
            if cpu:
                add(
                    "cost at 1,000 positions / at 0: leader CPU per version (worst)",
                    f"{max(cpu):.2f}x",
                    "",
                    "<= 1.2x",
                    _verdict(max(cpu), 1.2, False),
                )
    elif pos:
        add("positions", "FAILED: " + pos["error"][:60])
    hub = r.get("hub")
    if hub and "error" not in hub:
        ch = hub.get("channels")
        rss = max(hub.get("rss_kib_open", 0), hub.get("rss_kib_after_traffic", 0)) / 1024
        idle = hub.get("rss_kib_idle", 0) / 1024
        at_1000 = idle + (rss - idle) * 1000 / ch if ch else None
        scaled = "" if ch == 1000 else f" (projected to 1,000: {at_1000:,.0f} MB)"
        add(
            f"hub RSS with {ch:,} channels to {hub.get('peers')} peers (none: {idle:.0f} MB)",
            f"{rss:,.0f} MB{scaled}",
            "",
            "<= 300 MB at 1,000",
            _verdict(at_1000, 300, False),
        )
        for k in (1, 4):
            agg = hub.get(f"aggregate_{k}_per_channel") or {}
            v = agg.get("versions_per_s")
            add(
                f"hub aggregate, {k} pay caller(s) per channel: signed versions/s",
                _num(v),
                f"{_ratio(v, single_channel)} of 1 channel",
                ">= 0.5x single channel",
                _verdict(
                    v / single_channel if v is not None and single_channel else None, 0.5, True
                ),
            )
            add(
                "  calls/s; hub CPU per signed version",
                f"{_num(agg.get('calls_per_s'))}; {_num(agg.get('cpu_us_per_version'), ' µs')}",
                _ratio(agg.get("cpu_us_per_version"), sv),
            )
        add("hub: seconds to open and fund all channels", f"{hub.get('open_seconds', 0):.1f} s")
    elif hub:
        add("hub", "FAILED: " + hub["error"][:60])
    return rows


def render(rows: list[Row]) -> str:
    head = ("figure", "measured", "x floor", "goal", "")
    allrows = [head, *rows]
    w = [max(len(r[i]) for r in allrows) for i in range(5)]
    lines = []
    for i, r in enumerate(allrows):
        lines.append(
            f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:<{w[3]}}  {r[4]}".rstrip()
        )
        if i == 0:
            lines.append("-" * (sum(w) + 8))
    return "\n".join(lines)


def render_profile(prof: dict[str, Any], limit: int = 12) -> str:
    lines = []
    for role in ("leader", "follower"):
        p = prof.get(role)
        if not p:
            continue
        lines.append(f"{role}: {p['samples']} samples; by where the code lives (self samples):")
        for name, count, pct in p.get("by_layer", []):
            lines.append(f"    {pct:5.1f}%  {count:5d}  {name}")
        lines.append(f"{role}: top self (function, samples, %):")
        for name, count, pct in p["top_self"][:limit]:
            lines.append(f"    {pct:5.1f}%  {count:5d}  {name}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    global RESULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled down, under 40 s")
    parser.add_argument("--only", default="", help="comma-separated parts: " + ",".join(ALL))
    parser.add_argument(
        "--results", default=str(RESULTS), help="where the JSON goes (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    RESULTS = node_bench.RESULTS = Path(args.results)
    # --quick leaves out the profile (it reruns the pair under py-spy) unless asked by name.
    parts = [p for p in args.only.split(",") if p] or [
        p for p in ALL if not (args.quick and p == "profile")
    ]
    unknown = set(parts) - set(ALL)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    t0 = time.perf_counter()
    cores = os.cpu_count()
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": cores,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores,
        "loadavg_at_start": os.getloadavg(),
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    results: dict[str, Any] = {"meta": meta}
    if "core" in parts:
        results["core"] = run_core(args.quick)
    if "gas" in parts:
        results["gas"] = run_gas()
    if "platform" in parts:
        results["platform"] = run_platform(args.quick)
    node_parts = [p for p in parts if p in NODE]
    if node_parts:
        node = node_bench.run(args.quick, node_parts)
        results.update(node)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "node.json").write_text(json.dumps(node, indent=2) + "\n")
    meta["loadavg_at_end"] = os.getloadavg()
    meta["wall_seconds"] = round(time.perf_counter() - t0, 1)

    out = sys.stdout
    print(
        f"\noption-channels benchmarks - python {meta['python']} on {meta['machine']}, "
        f"{cores} cores ({meta['usable_cores']} usable), load average "
        f"{meta['loadavg_at_start'][0]:.1f} -> {meta['loadavg_at_end'][0]:.1f}"
        f"{', QUICK (scaled down)' if args.quick else ''}",
        file=out,
    )
    if "core" in results:
        print("\ncore micro-benchmarks (one core, µs):", file=out)
        print((RESULTS / "core.txt").read_text().rstrip(), file=out)
    if "gas" in results:
        print("\ngas (receipt.gasUsed on anvil):", file=out)
        print(results["gas"]["table"], file=out)
    print("\nnode figures (desk processes over TCP on 127.0.0.1, anvil, SQLite):", file=out)
    print(render(summary_rows(results)), file=out)
    if "profile" in results and "leader" in results["profile"]:
        print(
            "\nprofile of the sequential pay loop (py-spy, the thread holding the GIL):", file=out
        )
        print(render_profile(results["profile"]), file=out)
    print(f"\n({meta['wall_seconds']} s; JSON in {RESULTS}/summary.json)", file=out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
