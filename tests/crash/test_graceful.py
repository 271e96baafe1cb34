"""Graceful stop/start of either desk between trades (docs/THREATS.md section 5.2, last point).

A clean restart is the easy case: it is here so a failure of the kill -9 matrix can be told apart
from a failure to restart at all. It is not a substitute for SIGKILL (test_kill_matrix.py).
"""

from __future__ import annotations

from pathlib import Path

from .harness import (
    Chain,
    Desk,
    converge,
    free_port,
    new_desk,
    open_channel,
    pay,
)
from .invariants import read_store


def test_stop_and_restart_each_side_between_trades(chain: Chain, tmp_path: Path) -> None:
    a_key, b_key = new_desk(chain), new_desk(chain)
    alice = Desk("alice", chain, a_key, tmp_path, partners=[b_key.address])
    bob = Desk("bob", chain, b_key, tmp_path, listen_port=free_port(), partners=[a_key.address])
    try:
        open_channel(alice, bob)
        pay(alice, 1_000)
        pay(bob, 2_000)
        expiry = int(alice.request("status")["now"]) + 7 * 86400
        alice.request(
            "write_option",
            strike=3000_00000000,
            expiry=expiry,
            quantity=10**18,
            premium=25_000,
            collateral=100_000,
        )
        before = converge(alice, bob)
        assert before["position_count"] == 1
        for desk in (bob, alice, bob):
            desk.quit()
            desk.start()
            after = converge(alice, bob)
            assert after == before  # nothing lost, nothing invented, the position survived
            pay(alice, 3)
            pay(bob, 5)
            before = converge(alice, bob)
            assert before["version"] == after["version"] + 2
        assert before["balances"] == [
            1_000_000 - 1_000 + 2_000 + 25_000 - 3 * 3 + 5 * 3 - 100_000,
            1_000_000 + 1_000 - 2_000 - 25_000 + 3 * 3 - 5 * 3,
        ]
    finally:
        for desk in (alice, bob):
            if desk.alive:
                desk.quit()
    views = [read_store(d.store_path, d.address, chain) for d in (alice, bob)]
    assert views[0].latest_hash == views[1].latest_hash
    assert views[0].latest_version == before["version"]
    assert all(v.last_clean_shutdown == "1" for v in views)
