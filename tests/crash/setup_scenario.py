"""kill -9 at the set-up and chain points (docs/THREATS.md section 5.2): channel creation
(``channel``), the deposit (``deposit``) and a chain transaction's intent (``chain_tx``).

``run_setup_case`` for ``channel``/``deposit``: both desks start, the victim with the crash point
armed; the leader opens a channel and both fund it; the victim dies somewhere in there (or the
harness kills it if the point is never reached). The victim restarts. **Funds**: either nothing
was deposited for the channel (the open never got that far; nothing to recover) or both desks
reach the same open, fully credited channel, trade each way, and a force close pays out exactly
the agreed balances. For ``chain_tx``: the channel opens and trades normally, the victim restarts
armed and disputes; it dies around the registration's intent; after its restart the watchers
finish what is on chain (or the survivor disputes) and the payouts are the agreed balances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adjudicator.client import connect_adjudicator

from .harness import (
    CHALLENGE_PERIOD,
    DEPOSIT,
    Chain,
    Desk,
    advance,
    converge,
    free_port,
    new_desk,
    open_channel,
    pay,
    run,
    token_balances,
)


@dataclass
class SetupResult:
    point: str
    phase: str
    role: str
    died_at_point: bool = False
    outcome: str = ""
    notes: list[str] = field(default_factory=list)


def _channels(desk: Desk) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = desk.request("status", timeout=10)["channels"]
    return rows


def _chain_view(chain: Chain, channel_id: str) -> Any:
    async def go() -> Any:
        async with connect_adjudicator(chain.url, chain.adjudicator, None) as view:
            return await view.channel(bytes.fromhex(channel_id[2:]))

    return run(go)


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _payouts_match(
    chain: Chain, alice: Desk, bob: Desk, agreed: dict[str, Any], start: tuple[int, ...]
) -> None:
    expected = (int(agreed["balances"][0]), int(agreed["balances"][1]))
    assert sum(expected) == 2 * DEPOSIT

    def paid() -> bool:
        now = token_balances(chain, alice.address, bob.address)
        return (now[0] - start[0] + DEPOSIT, now[1] - start[1] + DEPOSIT) == expected

    assert _wait(paid, 45), (
        f"payouts {token_balances(chain, alice.address, bob.address)} from {start} != {expected}"
    )


def run_setup_case(chain: Chain, workdir: Path, point: str, phase: str, role: str) -> SetupResult:
    result = SetupResult(point, phase, role)
    workdir.mkdir(parents=True, exist_ok=True)
    alice_key, bob_key = new_desk(chain), new_desk(chain)
    start = tuple(token_balances(chain, alice_key.address, bob_key.address))
    spec = f"{point}:{phase}:1"
    arm_now = point != "chain_tx"
    alice = Desk(
        "alice",
        chain,
        alice_key,
        workdir,
        crash_at=spec if arm_now and role == "leader" else None,
        partners=[bob_key.address],
    )
    bob = Desk(
        "bob",
        chain,
        bob_key,
        workdir,
        listen_port=free_port(),
        crash_at=spec if arm_now and role == "follower" else None,
        partners=[alice_key.address],
    )
    victim, survivor = (alice, bob) if role == "leader" else (bob, alice)
    try:
        if point == "chain_tx":
            open_channel(alice, bob)
            pay(alice, 1_000)
            pay(bob, 2_000)
            agreed = converge(alice, bob)
            victim.quit()
            victim.start(spec)
            converge(alice, bob)
            victim.send("dispute")
        else:
            assert bob.listen_port is not None
            alice.send(
                "open",
                peer_port=bob.listen_port,
                peer_address="0x" + bob.address.hex(),
                asset="0x" + chain.token.hex(),
                deposit=DEPOSIT,
                peer_deposit=DEPOSIT,
                oracle="0x" + chain.oracle.hex(),
                challenge_period=CHALLENGE_PERIOD,
            )
        result.died_at_point = victim.wait_dead(40) is not None
        if not result.died_at_point:
            result.notes.append(f"the {role} never reached {spec}; killed by the harness")
            victim.kill()
        assert victim.wait_dead(10) == -9
        victim.start()
        if point == "chain_tx":
            # The registration went out or it did not: either way the funds end as agreed.
            cid = str(_channels(survivor)[0]["channel_id"])
            if _wait(lambda: _chain_view(chain, cid).status.name != "OPEN", 3):
                result.outcome = "registered before the crash; concluded after the restart"
            else:
                converge(alice, bob, timeout=20)
                survivor.request("dispute", timeout=20)
                result.outcome = "not registered; the survivor disputed"
            advance(chain, CHALLENGE_PERIOD + 1)
            _payouts_match(chain, alice, bob, agreed, start)
            return result
        # channel / deposit: recovered to an open channel, or nothing deposited at all.
        def both_open() -> bool:
            a, b = _channels(alice), _channels(bob)
            return bool(a and b) and all(
                r["phase"] == "open" and r["state"]["deposited"] == [DEPOSIT, DEPOSIT]
                for r in (a[0], b[0])
            )

        if not _wait(both_open, 25):
            rows = _channels(alice) or _channels(bob)
            if not rows:
                result.outcome = "never created: no channel on either side"
                return result
            view = _chain_view(chain, str(rows[0]["channel_id"]))
            assert view.deposits == (0, 0), (
                f"funds stuck: deposits {view.deposits} on chain, but the channel never opened "
                f"(alice {_channels(alice)}, bob {_channels(bob)})"
            )
            result.outcome = "never funded: nothing on chain"
            return result
        agreed = converge(alice, bob, timeout=20)
        pay(victim, 7)
        pay(survivor, 11)
        agreed = converge(alice, bob)
        survivor.request("dispute", timeout=20)
        advance(chain, CHALLENGE_PERIOD + 1)
        _payouts_match(chain, alice, bob, agreed, start)
        result.outcome = "recovered: opened, traded and paid out as agreed"
        return result
    finally:
        for desk in (alice, bob):
            if desk.alive:
                try:
                    desk.quit()
                except AssertionError:
                    desk.kill()
