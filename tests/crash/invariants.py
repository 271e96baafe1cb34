"""The crash cases' invariants: stores read back after their process is gone, no equivocation
across every signature we can see, and payouts equal to the agreed balances after a force close.
(Process control is in ``harness.py``.)"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.core import eip712
from channels.core.signing import recover
from channels.store import Store

from .harness import CHALLENGE_PERIOD, DEPOSIT, Chain, Desk, advance, token_balances

# Reading stores back ---------------------------------------------------------------------------


@dataclass
class StoreView:
    """What one store holds about its (single) channel, read after its process is gone."""

    identity: bytes
    latest_version: int
    latest_hash: bytes
    balances: tuple[int, int]
    highest_signed: int
    history: dict[int, tuple[bytes, tuple[bytes | None, bytes | None]]] = field(
        default_factory=dict
    )
    signed_versions: dict[int, bytes] = field(default_factory=dict)
    last_clean_shutdown: str | None = None


def read_store(path: Path, identity: bytes, chain: Chain) -> StoreView:
    """Open a store only once no process holds it: raw reads first (the signature record and the
    clean-shutdown flag, which the product's ``Store.open`` would overwrite), then ``Store`` for
    the checked history. Closed with ``clean=False``, so the flag stays as a crash left it."""
    raw = sqlite3.connect(str(path))
    try:
        signed = {
            int(v): bytes(h)
            for v, h in raw.execute("SELECT version, state_hash FROM signed_versions")
        }
        flag = raw.execute("SELECT value FROM meta WHERE key = 'last_clean_shutdown'").fetchone()
    finally:
        raw.close()
    store = Store.open(path, identity, chain.chain_id, chain.adjudicator)
    try:
        (stored,) = store.load_channels()
        history = {}
        for update in store.history(stored.channel_id):
            st = update.signed.state
            history[int(st.version)] = (eip712.state_struct_hash(st), update.signed.signatures)
        store.verify_history(stored.channel_id)
        state = stored.latest.signed.state
        return StoreView(
            identity=identity,
            latest_version=int(state.version),
            latest_hash=eip712.state_struct_hash(state),
            balances=(int(state.balances[0]), int(state.balances[1])),
            highest_signed=int(stored.highest_signed),
            history=history,
            signed_versions=signed,
            last_clean_shutdown=None if flag is None else str(flag[0]),
        )
    finally:
        store.close(clean=False)


# Invariants ------------------------------------------------------------------------------------


def signed_by(chain: Chain, state_hash: bytes, signature: bytes | None, who: bytes) -> bool:
    if signature is None:
        return False
    try:
        return recover(eip712.digest(chain.domain(), state_hash), signature) == who
    except Exception:
        return False


def victim_signatures(
    chain: Chain,
    victim: bytes,
    stores: Iterable[StoreView],
    survivor_taps: Iterable[dict[str, Any]],
) -> tuple[dict[int, set[bytes]], list[str]]:
    """Every (version -> state hashes) that carries the victim's signature anywhere we can see:
    both stores' histories, the victim's own signature record, and every message the survivor
    received from it. Also returns the anomalies (a victim signature we cannot attribute)."""
    seen: dict[int, set[bytes]] = {}
    anomalies: list[str] = []
    known: dict[int, set[bytes]] = {}
    stores = list(stores)

    def add(version: int, state_hash: bytes) -> None:
        seen.setdefault(version, set()).add(state_hash)

    for view in stores:
        for version, (h, _sigs) in view.history.items():
            known.setdefault(version, set()).add(h)
        for version, h in view.signed_versions.items():
            known.setdefault(version, set()).add(h)
    for view in stores:
        if view.identity == victim:
            for version, h in view.signed_versions.items():
                add(version, h)
        for version, (h, sigs) in view.history.items():
            if any(signed_by(chain, h, s, victim) for s in sigs):
                add(version, h)
    for row in survivor_taps:
        if row.get("from") != "0x" + victim.hex():
            continue
        kind = row["type"]
        if kind == "Proposal":
            h = bytes.fromhex(row["state_hash"][2:])
            if signed_by(chain, h, bytes.fromhex(row["signature"][2:]), victim):
                add(row["version"], h)
            else:
                anomalies.append(f"a proposal of v{row['version']} not signed by the victim")
        elif kind == "Accept":
            sig = bytes.fromhex(row["signature"][2:])
            matches = [h for h in known.get(row["version"], ()) if signed_by(chain, h, sig, victim)]
            if matches:
                for h in matches:
                    add(row["version"], h)
            else:
                anomalies.append(f"an accept of v{row['version']} signs no state we know of")
        elif kind == "Reestablish":
            h = bytes.fromhex(row["state_hash"][2:])
            for s in row["signatures"]:
                if signed_by(chain, h, bytes.fromhex(s[2:]), victim):
                    add(row["version"], h)
    return seen, anomalies


def assert_no_equivocation(
    chain: Chain, victim: bytes, stores: Iterable[StoreView], taps: Iterable[dict[str, Any]]
) -> dict[int, set[bytes]]:
    seen, anomalies = victim_signatures(chain, victim, stores, taps)
    assert not anomalies, anomalies
    doubles = {v: sorted(h.hex()[:16] for h in hs) for v, hs in seen.items() if len(hs) > 1}
    assert not doubles, f"the victim signed two states of one version: {doubles}"
    return seen


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def force_close_and_check_payouts(
    chain: Chain,
    disputer: Desk,
    other: Desk,
    leader: Desk,
    follower: Desk,
    agreed: dict[str, Any],
    start_balances: tuple[int, int],
    deposit: int = DEPOSIT,
) -> None:
    """Invariant 4: dispute, let the challenge period pass, and compare the payouts (token balance
    changes plus deposits, after both watchers withdrew) with the agreed state's balances."""
    disputer.request("dispute", timeout=20)
    # Cases run side by side on one chain and each moves its time on: a dispute may be concluded
    # before the other side's watcher polls, and that side goes from open to closed directly.
    for desk in (disputer, other):
        desk.wait_event(
            lambda e: (
                e.get("event") == "PhaseChangedEvent" and e["phase"] in ("disputed", "closed")
            ),
            15,
        )
    advance(chain, CHALLENGE_PERIOD + 1)
    expected = (int(agreed["balances"][0]), int(agreed["balances"][1]))
    assert sum(expected) == 2 * deposit
    for desk in (leader, follower):
        desk.wait_event(
            lambda e: e.get("event") == "FinalityChanged" and e["finality"] == "withdrawn", 30
        )

    def paid() -> bool:
        now = token_balances(chain, leader.address, follower.address)
        return (
            now[0] - start_balances[0] + deposit,
            now[1] - start_balances[1] + deposit,
        ) == expected

    try:
        wait_until(paid, 15, "the payouts")
    except AssertionError:
        now = token_balances(chain, leader.address, follower.address)
        raise AssertionError(
            f"payouts {[now[i] - start_balances[i] + deposit for i in (0, 1)]} != agreed {expected}"
        ) from None
