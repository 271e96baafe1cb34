"""Many concurrent trades both ways between two real nodes (TCP on 127.0.0.1, real anvil).

Covers: docs/THREATS.md section 9, properties 1 and 3 (conservation, monotonic versions, no
equivocation: ``verify_history`` on both stores) under pipelined, crossing proposals; P5's
``max_pending`` / ``max_requests`` caps are respected by the callers; the cooperative close pays
out exactly the last state (C13 conservation on chain).
"""

from __future__ import annotations

import random
from pathlib import Path

import trio

from channels.core.errors import InsufficientFunds, PolicyRefused
from channels.core.model import Amount, Position
from channels.core.node_events import (
    PeerConnected,
    PeerLost,
    PhaseChangedEvent,
    StateUpdated,
    UpdateRefusedEvent,
)
from channels.core.options import OpenOption, Pay, Trade, Unwind
from channels.core.protocol import Phase
from channels.runtime.channel import Channel
from channels.runtime.node import UpdateRefusedError

from ._helpers import DEPOSIT, WEEK, desk, open_channel, token_balances, wait_until
from .conftest import Desks

TARGET_TRADES = 1_000
WORKERS_PER_SIDE = 6


class Tally:
    def __init__(self) -> None:
        self.trades = 0
        self.updates = 0
        self.overdraws = 0
        self.unexpected: list[BaseException] = []


def _option(ch: Channel, rng: random.Random, expiry: int, *, write: bool) -> tuple[Position, int]:
    position = ch.new_position(
        kind=rng.choice(("call", "put")),
        underlying=rng.choice(("ETH-USD", "BTC-USD")),
        strike=rng.randrange(1000, 5000) * 10**8,
        expiry=expiry,
        quantity=rng.randrange(1, 10) * 10**17,
        collateral=rng.randrange(100, 2_000),
        writer=ch.our_index if write else 1 - ch.our_index,
    )
    return position, rng.randrange(1, 100)


async def _worker(ch: Channel, seed: int, tally: Tally, expiry: int) -> None:
    rng = random.Random(seed)
    mine: list[Position] = []  # positions this worker opened and alone may unwind
    while tally.trades < TARGET_TRADES:
        roll = rng.random()
        trades: list[Trade] = []
        opened: list[Position] = []
        closed: list[Position] = []
        overdraw = False
        if roll < 0.25:
            trades.append(Pay(ch.our_index, Amount(rng.randrange(1, 500))))
        elif roll < 0.45:
            pos, premium = _option(ch, rng, expiry, write=rng.random() < 0.5)
            trades.append(OpenOption(pos, Amount(premium)))
            opened.append(pos)
        elif roll < 0.65 and mine:
            pos = mine[rng.randrange(len(mine))]
            trades.append(Unwind(pos.id, Amount(rng.randrange(pos.collateral + 1))))
            closed.append(pos)
        elif roll < 0.97:
            # A batch: a payment, a new option and, if we have one, an unwind, in one state.
            trades.append(Pay(ch.our_index, Amount(rng.randrange(1, 50))))
            pos, premium = _option(ch, rng, expiry, write=rng.random() < 0.5)
            trades.append(OpenOption(pos, Amount(premium)))
            opened.append(pos)
            if mine:
                old = mine[rng.randrange(len(mine))]
                trades.append(Unwind(old.id, Amount(old.collateral // 2)))
                closed.append(old)
        else:
            overdraw = True  # on purpose: more than the whole channel holds
            trades.append(Pay(ch.our_index, Amount(10 * DEPOSIT)))
        try:
            if opened and len(trades) == 1 and rng.random() < 0.5:
                # Through the public helpers too (same request underneath).
                pos = opened[0]
                premium = trades[0].premium  # type: ignore[union-attr]
                helper = ch.write_option if pos.writer == ch.our_index else ch.buy_option
                got = await helper(
                    kind=pos.kind,
                    underlying=pos.underlying,
                    strike=pos.strike,
                    expiry=pos.expiry,
                    quantity=pos.quantity,
                    premium=premium,
                    collateral=pos.collateral,
                )
                opened = [got]
            else:
                await ch.trade(*trades)
        except (InsufficientFunds, UpdateRefusedError) as exc:
            rule = getattr(exc, "rule", None)
            if overdraw and rule == "InsufficientFunds":
                tally.overdraws += 1
                continue
            tally.unexpected.append(exc)
            continue
        if overdraw:
            tally.unexpected.append(AssertionError("an overdraw was accepted"))
            continue
        for pos in closed:
            mine.remove(pos)
        mine.extend(opened)
        tally.trades += len(trades)
        tally.updates += 1
    # Wind down: unwind what is left so the channel can close.
    while mine:
        batch, mine = mine[:20], mine[20:]
        await ch.trade(*(Unwind(p.id, Amount(p.collateral)) for p in batch))
        tally.updates += 1


async def test_many_crossing_trades_then_cooperative_close(desks: Desks, tmp_path: Path) -> None:
    before = await token_balances(desks)
    tally = Tally()
    refused_events: list[UpdateRefusedEvent] = []
    versions: dict[str, list[int]] = {"alice": [], "bob": []}

    async def watch(name: str, stream) -> None:  # type: ignore[no-untyped-def]
        async for event in stream:
            if isinstance(event, UpdateRefusedEvent):
                refused_events.append(event)
            elif isinstance(event, StateUpdated):
                versions[name].append(event.state.version)

    with trio.fail_after(120):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
            alice.events() as a_events,
            bob.events() as b_events,
            trio.open_nursery() as watchers,
        ):
            watchers.start_soon(watch, "alice", a_events)
            watchers.start_soon(watch, "bob", b_events)
            ch, bch = await open_channel(alice, bob, desks)
            expiry = alice.now() + WEEK
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for i in range(WORKERS_PER_SIDE):
                    nursery.start_soon(_worker, ch, 1000 + i, tally, expiry)
                    nursery.start_soon(_worker, bch, 2000 + i, tally, expiry)
            elapsed = trio.current_time() - start
            assert not tally.unexpected, tally.unexpected[:5]
            assert tally.trades >= TARGET_TRADES
            await ch.wait_version(bch.version)
            await bch.wait_version(ch.version)
            assert ch.state == bch.state
            assert ch.positions == [] and bch.positions == []
            assert ch.state.locked == 0 and ch.state.conserves()
            assert ch.state.balances[0] + ch.state.balances[1] == 2 * DEPOSIT
            # Both stores hold a verifiable history: links, signatures, no version signed twice.
            assert await alice.store.verify_history(ch.id) >= 2
            assert await bob.store.verify_history(ch.id) >= 2
            await ch.close()
            await bch.wait_phase(Phase.FINAL, Phase.CLOSED)
            final = ch.state
            assert final.is_final and bch.state == final
            watchers.cancel_scope.cancel()
    print(
        f"\n{tally.trades} trades in {tally.updates} updates, {tally.overdraws} refused overdraws, "
        f"{elapsed:.2f} s of trading"
    )
    # UnconfirmedDeposit: the leader credits a deposit its watcher saw before the follower's did
    # (retried on the next poll); InsufficientFunds: the overdraws made on purpose.
    expected_rules = {"InsufficientFunds", "UnconfirmedDeposit"}
    assert all(e.rule in expected_rules for e in refused_events), refused_events[:5]
    for name, seen in versions.items():
        assert seen == sorted(seen) and len(set(seen)) == len(seen), name
    after = await token_balances(desks)
    assert after[0] - before[0] == final.balances[0] - DEPOSIT
    assert after[1] - before[1] == final.balances[1] - DEPOSIT


# Risk hook (issue item 4) ----------------------------------------------------------------------

MAX_EXPOSURE = 3 * 10**18  # gross quantity per underlying


def exposure_policy(holder: dict[str, Channel]):  # type: ignore[no-untyped-def]
    """Refuse any update after which one underlying has more than MAX_EXPOSURE open quantity."""

    def policy(view):  # type: ignore[no-untyped-def]
        ch = holder.get("ch")
        if ch is None:
            return None
        assert view.channel_id == ch.id and view.peer == ch.peer_address
        trades = view.trades
        # The book may already hold the proposed positions: count each id once.
        positions = {p.id: p for p in ch.positions}
        for t in trades:
            if isinstance(t, OpenOption):
                positions[t.position.id] = t.position
            elif isinstance(t, Unwind):
                positions.pop(t.position_id, None)
        totals: dict[bytes, int] = {}
        for p in positions.values():
            totals[p.underlying] = totals.get(p.underlying, 0) + p.quantity
        for underlying, total in totals.items():
            if total > MAX_EXPOSURE:
                return (
                    f"exposure {total} on {underlying.rstrip(bytes(1)).decode()} is above the limit"
                )
        return None

    return policy


async def test_policy_refuses_excess_exposure(desks: Desks, tmp_path: Path) -> None:
    """THREATS P7-adjacent: a bot's pre-trade check on the follower refuses the leader's trade
    with rule PolicyRefused; the channel is unchanged; the next allowed trade works."""
    holder: dict[str, Channel] = {}
    with trio.fail_after(60):
        async with (
            desk(
                desks, desks.bob, tmp_path / "b.sqlite", listen=0, policy=exposure_policy(holder)
            ) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks)
            holder["ch"] = bch
            expiry = alice.now() + WEEK
            terms = dict(
                kind="call", strike=3000 * 10**8, expiry=expiry, premium=10, collateral=100
            )
            await ch.write_option(underlying="ETH-USD", quantity=2 * 10**18, **terms)
            await bch.wait_version(ch.version)
            before = (ch.state, bch.state, ch.positions, bch.positions)
            try:
                await ch.write_option(underlying="ETH-USD", quantity=2 * 10**18, **terms)
            except UpdateRefusedError as exc:
                assert exc.rule == "PolicyRefused", exc
            else:
                raise AssertionError("the policy did not refuse")
            await trio.sleep(0.05)
            assert (ch.state, bch.state, ch.positions, bch.positions) == before
            # Allowed: within the limit on ETH, and another underlying.
            await ch.write_option(underlying="ETH-USD", quantity=10**18, **terms)
            await ch.buy_option(underlying="BTC-USD", quantity=3 * 10**18, **terms)
            await bch.wait_version(ch.version)
            assert ch.state == bch.state and ch.version == before[0].version + 3
            # The follower's own request is checked by its policy before it leaves (and again
            # when the leader proposes it).
            try:
                await bch.write_option(underlying="BTC-USD", quantity=1, **terms)
            except (UpdateRefusedError, PolicyRefused) as exc:
                assert exc.rule == "PolicyRefused", exc
            else:
                raise AssertionError("the policy did not refuse the follower's request")
            await bch.pay(1)
            await ch.wait_version(bch.version)
            assert ch.state == bch.state


# Events (issue item 5) ---------------------------------------------------------------------------


async def test_events_in_a_sane_order(desks: Desks, tmp_path: Path) -> None:
    seen: dict[str, list[object]] = {"alice": [], "bob": []}

    async def collect(name: str, stream) -> None:  # type: ignore[no-untyped-def]
        async for event in stream:
            seen[name].append(event)

    with trio.fail_after(60):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
            async with alice.events() as a_events, trio.open_nursery() as nursery:
                nursery.start_soon(collect, "alice", a_events)
                async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
                    async with bob.events() as b_events:
                        nursery.start_soon(collect, "bob", b_events)
                        ch, bch = await open_channel(alice, bob, desks)
                        await ch.pay(5)
                        await bch.pay(3)
                        await ch.close()
                        await bch.wait_phase(Phase.FINAL, Phase.CLOSED)
                        await ch.wait_phase(Phase.CLOSED)
                        await bch.wait_phase(Phase.CLOSED)
                        await trio.sleep(0.1)
                # Bob's node is gone: Alice loses her peer.
                await wait_until(lambda: any(isinstance(e, PeerLost) for e in seen["alice"]))
                nursery.cancel_scope.cancel()
    for name, events in seen.items():
        kinds = [type(e).__name__ for e in events]
        connected = [i for i, e in enumerate(events) if isinstance(e, PeerConnected)]
        phases = [e.phase for e in events if isinstance(e, PhaseChangedEvent)]
        updates = [(i, e) for i, e in enumerate(events) if isinstance(e, StateUpdated)]
        assert connected, (name, kinds)
        # Phases only move forward, through funding and open to final and closed.
        order = [Phase.FUNDING, Phase.OPEN, Phase.FINAL, Phase.CLOSED]
        assert [order.index(p) for p in phases] == sorted({order.index(p) for p in phases}), (
            name,
            phases,
        )
        assert phases[-1] is Phase.CLOSED and Phase.OPEN in phases and Phase.FINAL in phases
        # Versions grow; the connection came before the first update; the final state's update
        # comes before the FINAL phase; no update after CLOSED.
        versions = [e.state.version for _, e in updates]
        assert versions == sorted(set(versions)) and len(versions) >= 4, (name, versions)
        assert connected[0] < updates[0][0]
        idx = {
            p: next(i for i, e in enumerate(events) if getattr(e, "phase", None) is p)
            for p in phases
        }
        final_update = next(i for i, e in updates if e.state.is_final)
        assert final_update < idx[Phase.FINAL] < idx[Phase.CLOSED]
        assert all(i < idx[Phase.CLOSED] for i, _ in updates)
        # Only the leader's early deposit credit may be refused (and retried) while the
        # follower's watcher has not yet confirmed the deposit.
        refused = [e.rule for e in events if isinstance(e, UpdateRefusedEvent)]
        assert set(refused) <= {"UnconfirmedDeposit"}, (name, refused)
    # Chain events may come at any time; of the others, losing the peer comes last.
    core = (PeerConnected, PeerLost, PhaseChangedEvent, StateUpdated)
    a_kinds = [type(e) for e in seen["alice"] if isinstance(e, core)]
    assert a_kinds[-1] is PeerLost, a_kinds
