"""Gas of the adjudicator's operations, from transaction receipts on a local anvil.

    .venv/bin/python benchmarks/gas.py [--json PATH]

Starts its own anvil, deploys the adjudicator (``adjudicator/build/Adjudicator.json``) and a
6-decimal test token, runs the scenarios listed in benchmarks/README.md and prints
``receipt.gasUsed`` next to our goals and the anchors' figures (Nitro, Perun; measured on anvil
1.7.1). Gas is deterministic: the same artifact gives the same numbers on every run. Results also
go to ``benchmarks/results/gas.json``.

Conventions (as in Nitro's "satp" scenario): two participants, one asset, amounts of a few units
(5 + 5 deposited; outcomes 6/4 to existing accounts or 10/0 to a never-used address).

* Every scenario uses a fresh channel. The adjudicator already holds some of the token (steady
  state: the token's balance slot of the adjudicator is not fresh).
* Closing transactions are sent by participant 0, except when paying a fresh address (then a third
  party sends: a fresh address has no gas).
* "settle at 1 open positions" empties the root and the locked total, so it gets storage refunds
  that settling one of several positions does not (see the 10-position rows).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import trio  # noqa: E402

from adjudicator import tokens  # noqa: E402
from adjudicator.client import AdjudicatorClient  # noqa: E402
from adjudicator.devchain import AnvilConfig, open_anvil  # noqa: E402
from adjudicator.rpc import Receipt, RpcClient, open_rpc  # noqa: E402
from adjudicator.transactions import TransactionSender  # noqa: E402
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
PERIOD = 3600
ETH_USD = symbol("ETH-USD")
POSITION_COUNTS = (1, 10, 100, 1000)

# (our goal, Nitro's and Perun's published figures); None = no figure.
ANCHORS: dict[str, tuple[int | None, int | None, str | None]] = {
    "ETH deposit, first": (45_000, 46_496, "45,801"),
    "ETH deposit, second": (29_000, 29_408, "45,813"),
    "ERC-20 deposit, first": (60_000, 69_866, "69,048"),
    "ERC-20 deposit, second": (45_000, 52_778, "69,060"),
    "coop close + payouts, ETH, 10/0 to a fresh address": (100_000, 111_514, None),
    "coop close + payouts, ERC-20, 10/0 to a fresh address": (100_000, 112_690, None),
    "coop close + payouts, ETH, 6/4 existing": (85_000, 94_351, "152,713 + 45,391 + 45,415"),
    "coop close + payouts, ERC-20, 6/4 existing": (100_000, None, None),
    "register (start a dispute)": (90_000, 113_146, "109,886"),
    "refute with a newer state": (70_000, 96_506, "77,897"),
    "checkpoint (clear a dispute)": (65_000, 73_936, None),
    "concludeAfterTimeout + payouts, 6/4 existing": (60_000, 63_738, "104,124 + 2 withdrawals"),
    "settle one position (ETH, 1 of 10 open)": (60_000, None, None),
    "settle one position (ERC-20, 1 of 10 open)": (60_000, None, None),
    "release one position (ETH, 1 of 9 open)": (None, None, None),
    "partial withdrawal (ETH, existing recipient)": (None, None, None),
    "partial withdrawal (ERC-20, existing recipient)": (None, None, None),
    "happy path total (2 ETH deposits + close 6/4)": (150_000, 170_255, "335,133"),
    "sad path total (2 ETH deposits + register + refute + payout 6/4)": (300_000, 349_294,
                                                                         "474,327"),
}
for _n in POSITION_COUNTS:
    ANCHORS[f"register at {_n:,} open positions"] = (90_000, None, None)
    ANCHORS[f"settle at {_n:,} open positions"] = (60_000, None, None)


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
            chain_id=self.chain_id, adjudicator=Address(self.a.address), asset=Address(asset),
            asset_decimals=18 if asset == ZERO_ADDRESS else 6,
            participants=(first.address, self.bob.address), challenge_period=PERIOD,
            oracle=self.oracle.address, nonce=self.nonce,
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

    def state(self, version: int, balances: tuple[int, int], deposited: tuple[int, int] = (5, 5),
              *, final: bool = False, book: PositionBook | None = None) -> State:
        return State(
            channel_id=self.params.channel_id, version=Version(version),
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
    return Position(PositionId(pid), ETH_USD, OptionKind.CALL, Price(2000 * 10**8),
                    Timestamp(expiry), Quantity(quantity), 0, Amount(2))


async def run(bench: Bench) -> dict[str, int]:
    gas: dict[str, int] = {}

    def put(name: str, receipt: Receipt) -> None:
        gas[name] = receipt.gas_used

    # ---- deposits ---------------------------------------------------------------------------
    ch = bench.channel()
    put("ETH deposit, first", await bench.a.deposit(ch.params, 0, 5))
    put("ETH deposit, second", await bench.b.deposit(ch.params, 1, 5))
    put("coop close + payouts, ETH, 6/4 existing",
        await bench.a.conclude(ch.params, ch.sign(ch.state(1, (6, 4), final=True))))
    gas["happy path total (2 ETH deposits + close 6/4)"] = (
        gas["ETH deposit, first"] + gas["ETH deposit, second"]
        + gas["coop close + payouts, ETH, 6/4 existing"]
    )

    ch = bench.channel(bench.token)
    for client in (bench.a, bench.b):  # approvals are not part of the deposit's gas
        await tokens.approve(bench.rpc, client.sender, bench.token, bench.a.address, 10**6)  # type: ignore[arg-type]
    put("ERC-20 deposit, first", await bench.a.deposit(ch.params, 0, 5))
    put("ERC-20 deposit, second", await bench.b.deposit(ch.params, 1, 5))
    put("coop close + payouts, ERC-20, 6/4 existing",
        await bench.a.conclude(ch.params, ch.sign(ch.state(1, (6, 4), final=True))))

    # ---- cooperative close to a fresh address -------------------------------------------------
    for asset, label in ((ZERO_ADDRESS, "ETH"), (bench.token, "ERC-20")):
        fresh = LocalSigner(keccak256(f"fresh {label}".encode()))
        ch = bench.channel(asset, p0=fresh)
        await funded(bench, ch)
        put(f"coop close + payouts, {label}, 10/0 to a fresh address",
            await bench.c.conclude(ch.params, ch.sign(ch.state(1, (10, 0), final=True))))

    # ---- disputes -----------------------------------------------------------------------------
    ch = bench.channel()
    await bench.a.deposit(ch.params, 0, 5)
    await bench.b.deposit(ch.params, 1, 5)
    s1 = ch.sign(ch.state(1, (5, 5)))
    s2 = ch.sign(ch.state(2, (6, 4)))
    put("register (start a dispute)", await bench.b.register(ch.params, s1))
    put("refute with a newer state", await bench.a.register(ch.params, s2))
    await bench.warp(PERIOD + 1)
    put("concludeAfterTimeout + payouts, 6/4 existing",
        await bench.a.conclude_after_timeout(ch.params, s2.state))
    gas["sad path total (2 ETH deposits + register + refute + payout 6/4)"] = (
        gas["ETH deposit, first"] + gas["ETH deposit, second"]
        + gas["register (start a dispute)"] + gas["refute with a newer state"]
        + gas["concludeAfterTimeout + payouts, 6/4 existing"]
    )

    ch = bench.channel()
    await funded(bench, ch)
    await bench.b.register(ch.params, ch.sign(ch.state(1, (5, 5))))
    put("checkpoint (clear a dispute)",
        await bench.a.checkpoint(ch.params, ch.sign(ch.state(2, (6, 4)))))

    # ---- partial withdrawal -------------------------------------------------------------------
    for asset, label in ((ZERO_ADDRESS, "ETH"), (bench.token, "ERC-20")):
        ch = bench.channel(asset)
        await funded(bench, ch)
        w = Withdrawal(ChannelId(ch.params.channel_id), Version(2), 0, Amount(3),
                       bench.alice.address)
        d = eip712.withdrawal_digest(ch.domain, w)
        sigs = (ch.signers[0].sign_digest(d), ch.signers[1].sign_digest(d))
        put(f"partial withdrawal ({label}, existing recipient)",
            await bench.a.withdraw_partial(ch.params, w, sigs))

    # ---- positions: register and settle at N open positions -----------------------------------
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
            await bench.a.conclude_after_timeout(ch.params, state)
            att = Attestation(ETH_USD, Timestamp(expiry), Price(2001 * 10**8))
            sig = bench.oracle.sign_digest(eip712.attestation_digest(ch.domain, att))
            target = position(0, expiry, ch.params.asset_decimals)
            r = await bench.a.settle_position(ch.params, target, book.proof(target.id), att, sig)
            if n == 10:
                put(f"settle one position ({label}, 1 of 10 open)", r)
            if label == "ETH":
                put(f"settle at {n:,} open positions", r)
                if n == 10:
                    await bench.warp(7 * 24 * 3600)
                    book.remove(target.id)
                    other = position(1, expiry, 18)
                    put("release one position (ETH, 1 of 9 open)", await bench.a.release_unsettled(
                        ch.params, other, book.proof(other.id)))
    return gas


def fmt(v: int | str | None) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else v


def table(gas: dict[str, int]) -> str:
    rows = [("operation", "gasUsed", "goal", "vs goal", "Nitro", "Perun")]
    for name, used in gas.items():
        goal, nitro, perun = ANCHORS.get(name, (None, None, None))
        verdict = "-" if goal is None else ("ok" if used <= goal else f"+{used - goal:,}")
        rows.append((name, fmt(used), fmt(goal), verdict, fmt(nitro), fmt(perun)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:],
                                                                        strict=True)]
        lines.append(" | ".join(cells))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


async def main_async() -> dict[str, int]:
    async with open_anvil(AnvilConfig()) as chain, open_rpc(chain.url) as rpc:
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

        bench = Bench(rpc, chain.chain_id, signers[1], signers[2], signers[3], client(1),
                      client(2), adj, token)
        for c in (bench.c,):
            assert c.sender is not None
            await tokens.approve(rpc, c.sender, token, adj.address, 10**9)
        return await run(bench)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    gas = trio.run(main_async)
    print(table(gas))
    print(f"\n({time.monotonic() - t0:.1f} s; anvil, {len(gas)} measurements)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "gasUsed": gas,
        "anchors": {k: {"goal": g, "nitro": n, "perun": p} for k, (g, n, p) in ANCHORS.items()},
        "artifact": "adjudicator/build/Adjudicator.json",
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
