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
import sqlite3
import statistics
import sys
import tempfile
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
    """The floor under every durable update: one SQLite WAL commit of a ~1 KB row, timed."""
    out: dict[str, Any] = {}
    n = 100 if quick else 300
    with tempfile.TemporaryDirectory(prefix="optchan-fsync-") as tmp:
        for mode in ("FULL", "NORMAL"):
            conn = sqlite3.connect(str(Path(tmp) / f"{mode}.db"), isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {mode}")
            conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            samples = []
            for i in range(n):
                t0 = time.perf_counter_ns()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?, ?)", (i, os.urandom(1000)))
                conn.execute("COMMIT")
                samples.append(time.perf_counter_ns() - t0)
            conn.close()
            samples.sort()
            out[f"sqlite_commit_{mode.lower()}"] = {
                "p50_us": samples[len(samples) // 2] / 1000,
                "p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000,
                "mean_us": statistics.fmean(samples) / 1000,
            }
    return out


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


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, shown: str, goal: str = "", verdict: str = "") -> None:
        rows.append((name, shown, goal, verdict))

    plat = r.get("platform", {})
    if plat:
        f, n = plat.get("sqlite_commit_full", {}), plat.get("sqlite_commit_normal", {})
        add(
            "floor: one SQLite WAL commit, FULL p50 / p99",
            f"{_ms(f.get('p50_us'))} / {_ms(f.get('p99_us'))}",
        )
        add(
            "floor: one SQLite WAL commit, NORMAL p50 / p99",
            f"{_ms(n.get('p50_us'))} / {_ms(n.get('p99_us'))}",
        )
    for mode, key in (("FULL", "pair"), ("NORMAL", "normal")):
        sc = r.get(key)
        if not sc:
            continue
        if "error" in sc:
            add(f"pair {mode}", "FAILED: " + sc["error"][:60])
            continue
        for who in ("leader", "follower"):
            lat = _get(sc, f"seq_{who}", "latency") or {}
            p50, p99 = lat.get("p50_us"), lat.get("p99_us")
            goal = "<= 1 ms / <= 3 ms" if mode == "FULL" else "(comparison)"
            verdict = ""
            if mode == "FULL" and p50 is not None and p99 is not None:
                verdict = "meets" if p50 <= 1000 and p99 <= 3000 else "misses"
            add(
                f"sequential pay from the {who}, {mode}: p50 / p99",
                f"{_ms(p50)} / {_ms(p99)}",
                goal,
                verdict,
            )
            cpu = _get(sc, f"seq_{who}", "cpu_us_per_update")
            peer = _get(sc, f"seq_{who}", "peer_cpu_us_per_update")
            if cpu is not None:
                add(
                    f"  CPU per sequential update ({who} / its peer), {mode}",
                    f"{cpu:,.0f} / {peer:,.0f} µs",
                )
        pipe = _get(sc, "pipelined_64", "updates_per_s")
        add(
            f"pipelined pay, 64 in flight, {mode}: updates/s",
            _num(pipe),
            ">= 8,000 (durable)" if mode == "FULL" else "(comparison)",
            _verdict(pipe, 8000, True) if mode == "FULL" else "",
        )
        cpu = _get(sc, "pipelined_64", "cpu_us_per_update")
        peer = _get(sc, "pipelined_64", "peer_cpu_us_per_update")
        if cpu is not None:
            add(
                f"  CPU per pipelined update (leader / follower), {mode}",
                f"{cpu:,.0f} / {peer:,.0f} µs",
            )
        for mix, label in (
            ("open_unwind", "50 OpenOption + 50 Unwind"),
            ("open_pay", "50 OpenOption + 50 Pay"),
        ):
            t = _get(sc, f"batched_{mix}", "trades_per_s")
            if t is not None:
                add(
                    f"batched trades/s, 100 per update ({label}), 8 in flight",
                    _num(t),
                    ">= 50,000",
                    _verdict(t, 50000, True),
                )
    pos = r.get("positions")
    if pos and "error" not in pos:
        base = None
        base_cpu: tuple[float, float] | None = None
        for n in ("0", "10", "100", "1000"):
            row = pos.get(n)
            if not row:
                continue
            pay = _get(row, "pay", "p50_us")
            op = _get(row, "open", "p50_us")
            un = _get(row, "unwind", "p50_us")
            if n == "0":
                base = (pay, op, un)
            add(
                f"at {int(n):,} open positions: pay / open / unwind p50",
                f"{_ms(pay)} / {_ms(op)} / {_ms(un)}",
            )
            cp, cou = row.get("cpu_us_per_pay"), row.get("cpu_us_per_open_unwind_pair")
            if cp is not None:
                if n == "0":
                    base_cpu = (cp, cou)
                add(
                    f"  leader CPU per pay / per open+unwind pair at {int(n):,}",
                    f"{cp:,.0f} / {cou:,.0f} µs",
                )
        last = pos.get("1000")
        if base and last and base[0]:
            ratios = [
                (_get(last, k, "p50_us") or 0) / b
                for k, b in zip(("pay", "open", "unwind"), base, strict=True)
                if b
            ]
            worst = max(ratios)
            add(
                "cost at 1,000 positions / cost at 0, latency (worst of pay, open, unwind)",
                f"{worst:.2f}x",
                "<= 2x",
                "meets" if worst <= 2 else "misses",
            )
            cp, cou = last.get("cpu_us_per_pay"), last.get("cpu_us_per_open_unwind_pair")
            if base_cpu and cp and base_cpu[0] and base_cpu[1]:
                worst_cpu = max(cp / base_cpu[0], cou / base_cpu[1])
                add(
                    "cost at 1,000 positions / cost at 0, leader CPU (worst of pay, open+unwind)",
                    f"{worst_cpu:.2f}x",
                    "<= 2x",
                    "meets" if worst_cpu <= 2 else "misses",
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
            f"hub RSS with {ch:,} channels to {hub.get('peers')} peers (node with none: "
            f"{idle:.0f} MB)",
            f"{rss:,.0f} MB{scaled}",
            "<= 300 MB at 1,000",
            _verdict(at_1000, 300, False),
        )
        if ch:
            add("  hub RSS per channel", f"{(rss - idle) * 1024 / ch:,.0f} KiB")
        for k in (1, 4):
            agg = _get(hub, f"aggregate_{k}_per_channel", "updates_per_s")
            add(
                f"hub aggregate pay updates/s, {k} in flight per channel",
                _num(agg),
                ">= 8,000",
                _verdict(agg, 8000, True),
            )
        add("hub: seconds to open and fund all channels", f"{hub.get('open_seconds', 0):.1f} s")
    elif hub:
        add("hub", "FAILED: " + hub["error"][:60])
    return rows


def render(rows: list[tuple[str, str, str, str]]) -> str:
    head = ("figure", "measured", "goal", "")
    allrows = [head, *rows]
    w = [max(len(r[i]) for r in allrows) for i in range(4)]
    lines = []
    for i, r in enumerate(allrows):
        lines.append(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]}")
        if i == 0:
            lines.append("-" * (sum(w) + 6))
    return "\n".join(lines)


def render_profile(prof: dict[str, Any], limit: int = 12) -> str:
    lines = []
    for role in ("leader", "follower"):
        p = prof.get(role)
        if not p:
            continue
        lines.append(f"{role}: {p['samples']} samples; top self (function, samples, %):")
        for name, count, pct in p["top_self"][:limit]:
            lines.append(f"    {pct:5.1f}%  {count:5d}  {name}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled down, under 40 s")
    parser.add_argument("--only", default="", help="comma-separated parts: " + ",".join(ALL))
    args = parser.parse_args(argv)
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
        print("\nprofile of the sequential pay loop (py-spy, all threads, CPU samples):", file=out)
        print(render_profile(results["profile"]), file=out)
    print(
        f"\n({meta['wall_seconds']} s; JSON in {RESULTS.relative_to(_ROOT)}/summary.json)", file=out
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
