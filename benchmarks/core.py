"""Micro-benchmarks of the sans-IO core's hot path.

    .venv/bin/python benchmarks/core.py [--quick]

Prints the median (and 90th percentile) time per operation over many runs. Nothing here asserts
on time: the numbers are for reading, and they depend on the machine. Rows marked "CPU" count the
process's CPU time rather than the wall clock, so that other work on a shared machine shows less.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from time import perf_counter_ns, process_time_ns  # noqa: E402

from eth_account import Account  # noqa: E402
from eth_account.messages import encode_typed_data  # noqa: E402

from channels.core import eip712, messages, model, options, wire  # noqa: E402
from channels.core.hashing import keccak256  # noqa: E402
from channels.core.positions import PositionBook  # noqa: E402
from channels.core.signing import LocalSigner, recover  # noqa: E402

NOW = 1_700_000_000
EXPIRY = NOW + 30 * 24 * 3600
ETH = model.symbol("ETH-USD")
ALICE = LocalSigner(keccak256(b"alice"))
BOB = LocalSigner(keccak256(b"bob"))
ORACLE = LocalSigner(keccak256(b"oracle"))
DOMAIN = eip712.Domain(31337, model.address("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
PARAMS = model.Params(
    31337,
    DOMAIN.verifying_contract,
    model.ZERO_ADDRESS,
    6,
    (ALICE.address, BOB.address),
    3600,
    ORACLE.address,
    0,
)
FUNDS = 10**15


def measure(
    fn: Callable[[], object],
    runs: int,
    warmup: int = 50,
    clock: Callable[[], int] = perf_counter_ns,
) -> tuple[float, float]:
    """(median, p90) in microseconds of ``fn()`` over ``runs`` individually timed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.9)] / 1000


def make_position(pid: int, writer: int = 0) -> model.Position:
    return model.Position(
        pid, ETH, model.OptionKind.CALL, 3_000 * 10**8, EXPIRY, 10**17, writer, 1_000 * 10**6
    )


def sample_state() -> model.State:
    return model.State(
        PARAMS.channel_id,
        12_345,
        (10**12, 2 * 10**12),
        (2 * 10**12, 2 * 10**12),
        (0, 10**12),
        0,
        keccak256(b"root"),
        0,
        False,
    )


def funded_book(open_positions: int) -> tuple[model.State, PositionBook, options.Context]:
    ctx = options.Context(PARAMS, DOMAIN, NOW, (FUNDS, FUNDS))
    book = PositionBook()
    state = options.apply_trades(
        options.opening_state(PARAMS),
        book,
        [options.CreditDeposit(0, FUNDS), options.CreditDeposit(1, FUNDS)],
        ctx,
        model.Version(1),
    )
    if open_positions:
        trades = [options.OpenOption(make_position(i, i % 2), 10) for i in range(open_positions)]
        state = options.apply_trades(state, book, trades, ctx, model.Version(2))  # type: ignore[arg-type]
    return state, book, ctx


def bench_update(open_positions: int, runs: int) -> tuple[float, float]:
    """One update = begin, apply [OpenOption(new), Unwind(new)], commit; the book keeps N open."""
    state, book, ctx = funded_book(open_positions)
    next_id = [10**9]

    def update() -> None:
        pid = next_id[0]
        next_id[0] += 1
        book.begin()
        options.apply_trades(
            state,
            book,
            [
                options.OpenOption(make_position(pid), 25),
                options.Unwind(model.PositionId(pid), 400),
            ],
            ctx,
            model.Version(state.version + 1),
        )
        book.commit_oldest()

    result = measure(update, runs)
    assert len(book) == open_positions
    return result


def bench_update_open_only(open_positions: int, runs: int) -> tuple[float, float]:
    """One update that opens a position, then is rolled back (the refused-proposal path)."""
    state, book, ctx = funded_book(open_positions)

    def update() -> None:
        book.begin()
        options.apply_trades(
            state, book, [options.OpenOption(make_position(10**9), 25)], ctx, model.Version(9)
        )
        book.rollback_newest()

    return measure(update, runs)


def bench_batch(open_positions: int, runs: int, warmup: int = 5) -> tuple[float, float]:
    """The desk benchmark's batch in process: begin, apply 50 OpenOption (new positions) + 50
    Unwind (of the previous batch's), commit; the book keeps about ``open_positions`` open.
    The trades are made before the clock starts: the row is the book's and the rules' cost."""
    state, book, ctx = funded_book(open_positions)
    batches: list[list[options.Trade]] = []
    for n in range(runs + warmup + 1):
        first = 10**9 + 50 * n
        batch: list[options.Trade] = [
            options.OpenOption(make_position(pid), 1) for pid in range(first, first + 50)
        ]
        if n:  # the first batch has nothing to unwind yet
            batch += [
                options.Unwind(model.PositionId(pid - 50), 0) for pid in range(first, first + 50)
            ]
        batches.append(batch)
    pending = iter(batches)

    def update() -> None:
        nonlocal state
        book.begin()
        state = options.apply_trades(
            state, book, next(pending), ctx, model.Version(state.version + 1)
        )
        book.commit_oldest()

    update()
    return measure(update, runs, warmup=warmup, clock=process_time_ns)


def proposal(trades: tuple[options.Trade, ...]) -> messages.Proposal:
    state = sample_state()
    return messages.Proposal(state.channel_id, model.Version(7), trades, state, bytes(65), 3)


def batch_trades() -> tuple[options.Trade, ...]:
    """50 OpenOption + 50 Unwind, the desk benchmark's batch."""
    opens = [options.OpenOption(make_position(pid, pid % 2), 1) for pid in range(50)]
    return (*opens, *(options.Unwind(model.PositionId(pid), 0) for pid in range(50, 100)))


def bench_encode(
    trades: tuple[options.Trade, ...], runs: int, and_record: bool = False
) -> tuple[float, float]:
    """Encode a Proposal of ``trades`` (a new tuple each time, as each update has its own);
    ``and_record``: then the store record of the update it proposes, with the same tuple (the
    leader's two encodings of one update)."""
    warmup = 50
    pending = iter([proposal(tuple(list(trades))) for _ in range(runs + warmup)])

    def encode() -> None:
        msg = next(pending)
        wire.encode_message(msg)
        if and_record:
            signed = model.SignedState(msg.state, (msg.signature, msg.signature))
            wire.UpdateRecord(model.SignedUpdate(signed, msg.trades))

    return measure(encode, runs, warmup, clock=process_time_ns)


def bench_decode(
    trades: tuple[options.Trade, ...], runs: int, and_record: bool = False
) -> tuple[float, float]:
    """Decode a Proposal of ``trades``; ``and_record``: then the store record of the update it
    proposes (the follower's part of one update in the codec)."""
    blob = wire.encode_message(proposal(trades))

    def decode() -> None:
        msg = wire.decode_message(blob)
        if and_record:
            assert isinstance(msg, messages.Proposal)
            signed = model.SignedState(msg.state, (msg.signature, msg.signature))
            wire.UpdateRecord(model.SignedUpdate(signed, msg.trades))

    return measure(decode, runs, clock=process_time_ns)


def _depth(open_positions: int) -> int:
    """Merkle tree height once the new position takes slot ``open_positions``."""
    return max(0, open_positions.bit_length()) if open_positions else 0


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    runs = 300 if quick else 3000
    state = sample_state()
    digest = eip712.state_digest(DOMAIN, state)
    sig = ALICE.sign_digest(digest)
    typed = eip712.typed_data(DOMAIN, state)
    secret = keccak256(b"alice")

    def encode_and_sign() -> bytes:
        return ALICE.sign_digest(eip712.state_digest(DOMAIN, state))

    def verify_state() -> None:
        if recover(eip712.state_digest(DOMAIN, state), sig) != ALICE.address:
            raise AssertionError("signature does not verify")

    def eth_account_encode() -> bytes:
        # eth-account's public API stops at the signable message; its EIP-191 digest is one
        # keccak over the three parts (eth-account's own hashing of it is private).
        signable = encode_typed_data(full_message=typed)
        return keccak256(b"\x19" + signable.version + signable.header + signable.body)

    rows: list[tuple[str, tuple[float, float]]] = [
        ("state EIP-712 digest only", measure(lambda: eip712.state_digest(DOMAIN, state), runs)),
        ("state digest + sign (LocalSigner)", measure(encode_and_sign, runs)),
        ("state digest + verify (recover + compare)", measure(verify_state, runs)),
        ("eth-account encode_typed_data + hash", measure(eth_account_encode, max(runs // 5, 100))),
        (
            "eth-account encode_typed_data + sign",
            measure(
                lambda: Account.sign_typed_data(secret, full_message=typed), max(runs // 5, 100)
            ),
        ),
    ]
    for n in (0, 10, 1_000, 10_000):
        rows.append(
            (
                f"apply_trades Open+Unwind, {n:>6,} open (depth {_depth(n)})",
                bench_update(n, runs),
            )
        )
    for n in (0, 1_000, 10_000):
        rows.append(
            (
                f"apply_trades Open, rolled back, {n:>6,} open (depth {_depth(n)})",
                bench_update_open_only(n, runs),
            )
        )

    batch_runs = max(runs // 10, 30)
    rows.append(
        ("apply_trades 50 Open + 50 Unwind, ~400 open, commit (CPU)", bench_batch(400, batch_runs))
    )
    for label, trades in (("100-trade", batch_trades()), ("1-trade (Pay)", (options.Pay(0, 5),))):
        count = batch_runs if len(trades) > 1 else runs
        rows.append((f"encode {label} Proposal (CPU)", bench_encode(trades, count)))
        rows.append(
            (
                f"encode {label} Proposal, then its update's store record (CPU)",
                bench_encode(trades, count, and_record=True),
            )
        )
        rows.append((f"decode {label} Proposal (CPU)", bench_decode(trades, count)))
        rows.append(
            (
                f"decode {label} Proposal, then its update's store record (CPU)",
                bench_decode(trades, count, and_record=True),
            )
        )

    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = cores
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{cores} cores ({usable} usable), {runs} runs per row (fewer for eth-account)"
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  {'median µs':>10}  {'p90 µs':>10}")
    print("-" * (width + 24))
    for name, (median, p90) in rows:
        print(f"{name:<{width}}  {median:>10.1f}  {p90:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
