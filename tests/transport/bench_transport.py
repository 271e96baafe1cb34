"""Transport figures over loopback TCP (not a test; no timed asserts).

    .venv/bin/python -m tests.transport.bench_transport

Runs the responder in a second process (like two nodes) and reports the handshake time (TCP
connect + Noise XX + both AUTH signatures) and the round trip of a 300-byte message over one
SecureChannel, next to a plain trio TCP echo of the same 300 bytes. Also the same figures with
both ends in one process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from functools import partial

import trio

from channels.core.signing import LocalSigner
from channels.transport import (
    Prologue,
    SecureChannel,
    TransportConfig,
    connect,
    serve,
)

HOST = "127.0.0.1"
ALICE = LocalSigner(bytes.fromhex("a1" * 32))
BOB = LocalSigner(bytes.fromhex("b0" * 32))
PROLOGUE = Prologue(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))  # type: ignore[arg-type]
HANDSHAKES = 300
ROUND_TRIPS = 1000
SIZE = 300


async def echo(channel: SecureChannel) -> None:
    while True:
        await channel.send(await channel.receive())


async def raw_echo(stream: trio.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some():
            await stream.send_all(data)


async def run_server(
    task_status: trio.TaskStatus[tuple[int, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(serve, HOST, 0, BOB, PROLOGUE, lambda _a: True, echo, config=TransportConfig())
        )
        raw = await trio.open_tcp_listeners(0, host=HOST)
        raw_port = raw[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, raw_echo, raw)
        task_status.started((port, raw_port))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


async def measure(port: int, raw_port: int, label: str) -> None:
    times = []
    for _ in range(HANDSHAKES):
        start = trio.current_time()
        channel = await connect(HOST, port, ALICE, BOB.address, PROLOGUE)
        times.append(trio.current_time() - start)
        await channel.aclose()
    print(
        f"[{label}] handshake (TCP connect + XX + AUTH), n={HANDSHAKES}: "
        f"p50 {pct(times, 0.5):.0f} µs, p90 {pct(times, 0.9):.0f} µs"
    )
    payload = os.urandom(SIZE)
    async with await connect(HOST, port, ALICE, BOB.address, PROLOGUE) as channel:
        for _ in range(50):  # warm-up
            await channel.send(payload)
            await channel.receive()
        rtts = []
        for _ in range(ROUND_TRIPS):
            start = trio.current_time()
            await channel.send(payload)
            assert await channel.receive() == payload
            rtts.append(trio.current_time() - start)
    stream = await trio.open_tcp_stream(HOST, raw_port)
    raw_rtts = []
    async with stream:
        for i in range(50 + ROUND_TRIPS):
            start = trio.current_time()
            await stream.send_all(payload)
            got = b""
            while len(got) < SIZE:
                got += await stream.receive_some()
            if i >= 50:
                raw_rtts.append(trio.current_time() - start)
    print(
        f"[{label}] {SIZE}-byte round trip, n={ROUND_TRIPS}: SecureChannel "
        f"p50 {pct(rtts, 0.5):.0f} µs / p99 {pct(rtts, 0.99):.0f} µs (mean "
        f"{statistics.fmean(rtts) * 1e6:.0f}); plain TCP echo p50 {pct(raw_rtts, 0.5):.0f} µs / "
        f"p99 {pct(raw_rtts, 0.99):.0f} µs"
    )


async def two_processes() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.transport.bench_transport", "--serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port, raw_port = map(int, proc.stdout.readline().split())
        await measure(port, raw_port, "two processes")
    finally:
        proc.kill()
        proc.wait()


async def one_process() -> None:
    async with trio.open_nursery() as nursery:
        port, raw_port = await nursery.start(run_server)
        await measure(port, raw_port, "one process")
        nursery.cancel_scope.cancel()


async def serve_forever() -> None:
    async with trio.open_nursery() as nursery:
        port, raw_port = await nursery.start(run_server)
        print(port, raw_port, flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        trio.run(serve_forever)
    else:
        trio.run(two_processes)
        trio.run(one_process)
