"""Gas of the adjudicator's operations, from transaction receipts on a local anvil.

    .venv/bin/python benchmarks/gas.py [--json PATH] [--trace] [--check]

Starts its own anvil, deploys the adjudicator (``adjudicator/build/Adjudicator.json``) and a
6-decimal test token, runs every scenario and prints ``receipt.gasUsed`` beside its goal, its
committed budget (``benchmarks/gas_budget.json``) and Nitro's figure for the same scenario
(measured with Nitro's own harness on anvil 1.7.1). ``--trace`` adds, per row, where the gas goes
(from the opcode trace); ``--check`` exits 1 if a row is more than 0.5% over its budget or misses
a goal the budget file does not explain. Results also go to ``benchmarks/results/gas.json``.

Conventions, like-for-like with Nitro's harness: two participants, one asset, amounts of a few
units (5 + 5 deposited; outcomes 6/4 to existing accounts or 10/0 to a never-used address).

* Every scenario uses a fresh channel. The adjudicator already holds some of the token (steady
  state: the token's balance slot of the adjudicator is not fresh).
* Deposits are sent by the depositing participant. Closes, timeouts and settlements are sent by a
  third account, as in Nitro's harness: every payee is a cold account. Disputes are sent by the
  participants; a partial withdrawal by the withdrawing participant to itself.
* "settle at 1 open position" empties the root and the locked total, so it gets storage refunds
  that settling one of several positions does not (see the 10-position rows).
* Position rows depend slightly (tens of gas) on the block time, which enters the expiry and so
  the calldata; the budget's 0.5% tolerance covers it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import trio  # noqa: E402

from adjudicator import tokens  # noqa: E402
from adjudicator.client import AdjudicatorClient  # noqa: E402
from adjudicator.devchain import AnvilConfig, open_anvil  # noqa: E402
from adjudicator.rpc import RpcClient, open_rpc  # noqa: E402
from adjudicator.rpc_types import Receipt  # noqa: E402
from adjudicator.transactions import TransactionSender  # noqa: E402
from benchmarks import gas_trace  # noqa: E402
from channels.core import eip712  # noqa: E402
from channels.core.hashing import keccak256  # noqa: E402
from channels.core.model import (  # noqa: E402
    ZERO_ADDRESS,
    ZERO_HASH,
    Address,
    Amount,
    Attestation,
    ChannelId,
    OptionKind,
    Params,
    Position,
    PositionId,
    Price,
    Quantity,
    SignedState,
    State,
    Timestamp,
    Version,
    Withdrawal,
    symbol,
)
from channels.core.positions import PositionBook  # noqa: E402
from channels.core.signing import LocalSigner  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gas.json"
BUDGET = Path(__file__).resolve().parent / "gas_budget.json"
TOLERANCE_PER_MILLE = 5  # a row may exceed its budget by at most 0.5%
PERIOD = 3600
ETH_USD = symbol("ETH-USD")
POSITION_COUNTS = (1, 10, 100, 1000)

# Nitro's figure for the same scenario (its own harness, anvil 1.7.1); None = no such scenario.
NITRO: dict[str, int] = {
    "ETH deposit, first": 46_496,
    "ETH deposit, second": 29_408,
    "ERC-20 deposit, first": 69_866,
    "ERC-20 deposit, second": 52_778,
    "coop close + payouts, ETH, 10/0 to a fresh address": 111_514,
    "coop close + payouts, ERC-20, 10/0 to a fresh address": 112_690,
    "coop close + payouts, ETH, 6/4": 94_351,
    "register (start a dispute)": 113_146,
    "refute with a newer state": 96_506,
    "checkpoint (clear a dispute)": 73_936,
    "concludeAfterTimeout + payouts, 6/4": 63_738,
    "happy path total (2 ETH deposits + close 6/4)": 170_255,
    "sad path total (2 ETH deposits + register + refute + payout 6/4)": 349_294,
}


@dataclass
class Bench:
    rpc: RpcClient
    chain_id: int
    alice: LocalSigner
    bob: LocalSigner
    oracle: LocalSigner
    a: AdjudicatorClient  # alice sends
    b: AdjudicatorClient  # bob sends
    c: AdjudicatorClient  # a third party sends
    token: bytes
    nonce: int = 0

    def channel(self, asset: bytes = ZERO_ADDRESS, p0: LocalSigner | None = None) -> Chan:
        self.nonce += 1
        first = p0 or self.alice
        params = Params(
            chain_id=self.chain_id,
            adjudicator=Address(self.a.address),
            asset=Address(asset),
            asset_decimals=18 if asset == ZERO_ADDRESS else 6,
            participants=(first.address, self.bob.address),
            challenge_period=PERIOD,
            oracle=self.oracle.address,
            nonce=self.nonce,
        )
        domain = eip712.Domain(self.chain_id, Address(self.a.address))
        return Chan(params, domain, (first, self.bob))

    async def warp(self, seconds: int) -> None:
        await self.rpc.dev.increase_time(seconds)
        await self.rpc.dev.evm_mine()

    async def now(self) -> int:
        return await self.a.block_timestamp()


@dataclass
class Chan:
    params: Params
    domain: eip712.Domain
    signers: tuple[LocalSigner, LocalSigner]

    def state(
        self,
        version: int,
        balances: tuple[int, int],
        deposited: tuple[int, int] = (5, 5),
        *,
        final: bool = False,
        book: PositionBook | None = None,
    ) -> State:
        return State(
            channel_id=self.params.channel_id,
            version=Version(version),
            balances=(Amount(balances[0]), Amount(balances[1])),
            deposited=(Amount(deposited[0]), Amount(deposited[1])),
            withdrawn=(Amount(0), Amount(0)),
            locked=Amount(book.locked if book else 0),
            positions_root=book.root if book else ZERO_HASH,
            position_count=len(book) if book else 0,
            is_final=final,
        )

    def sign(self, state: State) -> SignedState:
        d = eip712.state_digest(self.domain, state)
        return SignedState(state, (self.signers[0].sign_digest(d), self.signers[1].sign_digest(d)))


async def funded(bench: Bench, ch: Chan, amounts: tuple[int, int] = (5, 5)) -> None:
    # the third party funds both sides (a fresh participant has no gas)
    await bench.c.deposit(ch.params, 0, amounts[0])
    await bench.c.deposit(ch.params, 1, amounts[1])


def position(pid: int, expiry: int, decimals: int) -> Position:
    """A call (writer 0) that pays 1 unit of 2 at a price of 2001: both sides get a payout."""
    quantity = 10 ** (18 - decimals)
    return Position(
        PositionId(pid),
        ETH_USD,
        OptionKind.CALL,
        Price(2000 * 10**8),
        Timestamp(expiry),
        Quantity(quantity),
        0,
        Amount(2),
    )


Measured = dict[str, Receipt]


async def run(bench: Bench) -> Measured:
    got: Measured = {}

    def put(name: str, receipt: Receipt) -> None:
        got[name] = receipt

    # ---- deposits and the cooperative close (6/4: existing payees, a third party sends) --------
    ch = bench.channel()
    put("ETH deposit, first", await bench.a.deposit(ch.params, 0, 5))
    put("ETH deposit, second", await bench.b.deposit(ch.params, 1, 5))
    put(
        "coop close + payouts, ETH, 6/4",
        await bench.c.conclude(ch.params, ch.sign(ch.state(1, (6, 4), final=True))),
    )

    ch = bench.channel(bench.token)
    for client in (bench.a, bench.b):  # approvals are not part of the deposit's gas
        await tokens.approve(bench.rpc, client.sender, bench.token, bench.a.address, 10**6)  # type: ignore[arg-type]
    put("ERC-20 deposit, first", await bench.a.deposit(ch.params, 0, 5))
    put("ERC-20 deposit, second", await bench.b.deposit(ch.params, 1, 5))
    put(
        "coop close + payouts, ERC-20, 6/4",
        await bench.c.conclude(ch.params, ch.sign(ch.state(1, (6, 4), final=True))),
    )

    # ---- cooperative close to a fresh address -------------------------------------------------
    for asset, label in ((ZERO_ADDRESS, "ETH"), (bench.token, "ERC-20")):
        fresh = LocalSigner(keccak256(f"fresh {label}".encode()))
        ch = bench.channel(asset, p0=fresh)
        await funded(bench, ch)
        put(
            f"coop close + payouts, {label}, 10/0 to a fresh address",
            await bench.c.conclude(ch.params, ch.sign(ch.state(1, (10, 0), final=True))),
        )

    # ---- disputes -----------------------------------------------------------------------------
    ch = bench.channel()
    await bench.a.deposit(ch.params, 0, 5)
    await bench.b.deposit(ch.params, 1, 5)
    s1 = ch.sign(ch.state(1, (5, 5)))
    s2 = ch.sign(ch.state(2, (6, 4)))
    put("register (start a dispute)", await bench.b.register(ch.params, s1))
    put("refute with a newer state", await bench.a.register(ch.params, s2))
    await bench.warp(PERIOD + 1)
    put(
        "concludeAfterTimeout + payouts, 6/4",
        await bench.c.conclude_after_timeout(ch.params, s2.state),
    )

    ch = bench.channel()
    await funded(bench, ch)
    await bench.b.register(ch.params, ch.sign(ch.state(1, (5, 5))))
    put(
        "checkpoint (clear a dispute)",
        await bench.a.checkpoint(ch.params, ch.sign(ch.state(2, (6, 4)))),
    )

    # ---- partial withdrawal (the withdrawing participant sends, to itself) -------------------
    for asset, label in ((ZERO_ADDRESS, "ETH"), (bench.token, "ERC-20")):
        ch = bench.channel(asset)
        await funded(bench, ch)
        w = Withdrawal(
            ChannelId(ch.params.channel_id), Version(2), 0, Amount(3), bench.alice.address
        )
        d = eip712.withdrawal_digest(ch.domain, w)
        sigs = (ch.signers[0].sign_digest(d), ch.signers[1].sign_digest(d))
        put(
            f"partial withdrawal ({label}, existing recipient)",
            await bench.a.withdraw_partial(ch.params, w, sigs),
        )

    # ---- positions: register and settle at N open positions (a third party settles) ----------
    for asset, label in ((ZERO_ADDRESS, "ETH"), (bench.token, "ERC-20")):
        counts = POSITION_COUNTS if label == "ETH" else (10,)
        for n in counts:
            ch = bench.channel(asset)
            await funded(bench, ch, (5 + 2 * n, 5))
            expiry = await bench.now() + PERIOD + 100
            book = PositionBook()
            for pid in range(n):
                book.add(position(pid, expiry, ch.params.asset_decimals))
            state = ch.state(1, (5, 5), (5 + 2 * n, 5), book=book)
            r = await bench.b.register(ch.params, ch.sign(state))
            if label == "ETH":
                put(f"register at {n:,} open positions", r)
            await bench.warp(PERIOD + 200)
            await bench.c.conclude_after_timeout(ch.params, state)
            att = Attestation(ETH_USD, Timestamp(expiry), Price(2001 * 10**8))
            sig = bench.oracle.sign_digest(eip712.attestation_digest(ch.domain, att))
            target = position(0, expiry, ch.params.asset_decimals)
            r = await bench.c.settle_position(ch.params, target, book.proof(target.id), att, sig)
            if n == 10:
                put(f"settle one position ({label}, 1 of 10 open)", r)
            elif label == "ETH":
                put(f"settle at {n:,} open positions", r)
            if label == "ETH" and n == 10:
                await bench.warp(7 * 24 * 3600)
                book.remove(target.id)
                other = position(1, expiry, 18)
                put(
                    "release one position (ETH, 1 of 9 open)",
                    await bench.c.release_unsettled(ch.params, other, book.proof(other.id)),
                )
    return got


def totals(got: Measured) -> dict[str, int]:
    """gasUsed per row, with the happy and sad path sums."""
    gas = {name: r.gas_used for name, r in got.items()}
    deposits = gas["ETH deposit, first"] + gas["ETH deposit, second"]
    gas["happy path total (2 ETH deposits + close 6/4)"] = (
        deposits + gas["coop close + payouts, ETH, 6/4"]
    )
    gas["sad path total (2 ETH deposits + register + refute + payout 6/4)"] = (
        deposits
        + gas["register (start a dispute)"]
        + gas["refute with a newer state"]
        + gas["concludeAfterTimeout + payouts, 6/4"]
    )
    return gas


# ---- the committed budget ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    budget: int
    goal: int | None
    goal_missed_because: str | None


def load_budget(path: Path | None = None) -> dict[str, Row]:
    doc = json.loads((path or BUDGET).read_text())
    return {
        name: Row(int(v["budget"]), v.get("goal"), v.get("goal_missed_because"))
        for name, v in doc["rows"].items()
    }


def violations(gas: dict[str, int], budget: dict[str, Row]) -> list[str]:
    """Every way the measurement breaks the budget: an unbudgeted or missing row, a row more than
    0.5% over its budget, a goal missed without an explanation in the budget file."""
    out = [f"{name}: measured but not in the budget" for name in gas if name not in budget]
    out += [f"{name}: in the budget but not measured" for name in budget if name not in gas]
    for name, used in gas.items():
        row = budget.get(name)
        if row is None:
            continue
        if used * 1000 > row.budget * (1000 + TOLERANCE_PER_MILLE):  # exact, no float
            out.append(f"{name}: {used:,} is more than 0.5% over its budget {row.budget:,}")
        if row.goal is not None and used > row.goal and not row.goal_missed_because:
            out.append(f"{name}: {used:,} misses its goal {row.goal:,}")
    return out


def fmt(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def table(gas: dict[str, int], budget: dict[str, Row] | None = None) -> str:
    if budget is None:
        budget = load_budget() if BUDGET.exists() else {}
    rows = [("operation", "gasUsed", "goal", "vs goal", "budget", "Nitro")]
    for name, used in gas.items():
        row = budget.get(name)
        goal = row.goal if row else None
        verdict = "-" if goal is None else ("ok" if used <= goal else f"+{used - goal:,}")
        rows.append(
            (
                name,
                fmt(used),
                fmt(goal),
                verdict,
                fmt(row.budget if row else None),
                fmt(NITRO.get(name)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append(" | ".join(cells))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


async def measure(*, trace: bool = False) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Run every scenario on a fresh anvil: gasUsed per row and, with ``trace``, where it went."""
    # anvil records the opcode steps a trace needs only when asked to
    config = AnvilConfig(extra_args=("--steps-tracing",) if trace else ())
    async with open_anvil(config) as chain, open_rpc(chain.url) as rpc:
        keys = chain.private_keys
        third = TransactionSender(rpc, keys[0])
        adj = await AdjudicatorClient.deploy(rpc, third)
        token = await tokens.deploy_test_token(rpc, third, 6)
        signers = [LocalSigner(bytes.fromhex(k[2:])) for k in keys[:4]]
        for s in signers[:3]:
            await tokens.mint(rpc, third, token, s.address, 10**12)
        # steady state: the adjudicator already holds some of the token
        await tokens.transfer(rpc, third, token, adj.address, 1)

        def client(i: int) -> AdjudicatorClient:
            return AdjudicatorClient(rpc, adj.address, TransactionSender(rpc, keys[i]))

        bench = Bench(
            rpc,
            chain.chain_id,
            signers[1],
            signers[2],
            signers[3],
            client(1),
            client(2),
            adj,
            token,
        )
        assert bench.c.sender is not None
        await tokens.approve(rpc, bench.c.sender, token, adj.address, 10**9)
        got = await run(bench)
        traces = {}
        if trace:
            for name, r in got.items():
                traces[name] = await gas_trace.breakdown(rpc, r.transaction_hash, r.gas_used)
        return totals(got), traces


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--trace", action="store_true", help="show where each row's gas goes")
    parser.add_argument("--check", action="store_true", help="exit 1 if the budget is broken")
    parser.add_argument("--budget", type=Path, default=BUDGET, help="the budget file")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    gas, traces = trio.run(partial(measure, trace=args.trace))
    budget = load_budget(args.budget)
    print(table(gas, budget))
    print(f"\n({time.monotonic() - t0:.1f} s; anvil, {len(gas)} measurements)")
    for name, parts in traces.items():
        print(gas_trace.render(name, parts))
    notes = [(n, r.goal_missed_because) for n, r in budget.items() if r.goal_missed_because]
    if notes:
        print("\nGoals not met, and why (benchmarks/gas_budget.json):")
        for name, why in notes:
            print(f"* {name}: {why}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "gasUsed": gas,
        "goals": {n: r.goal for n, r in budget.items()},
        "nitro": NITRO,
        "artifact": "adjudicator/build/Adjudicator.json",
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    problems = violations(gas, budget)
    if problems:
        print("\nBudget broken:\n" + "\n".join(problems))
        if args.check:
            sys.exit(1)


if __name__ == "__main__":
    main()
