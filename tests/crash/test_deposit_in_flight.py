"""A deposit pending at a crash is not sent twice (issue 13): the deposit is journalled before
it is sent, and a restarted node that finds the intent open waits for its account's pending
transactions before it decides. Before, the restarted node read no credit on chain (the
deposit was still in the mempool) and deposited again: both were mined.

The chain's automine is off so the deposit stays pending across the kill -9 (this module has its
own anvil, see conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from adjudicator.client import connect_adjudicator
from adjudicator.rpc import open_rpc

from .harness import (
    CHALLENGE_PERIOD,
    DEPOSIT,
    Chain,
    Desk,
    free_port,
    new_desk,
    run,
    token_balances,
)


def _pending_to(chain: Chain, sender: bytes) -> list[str]:
    """Where ``sender``'s pending transactions go (lower-case 0x addresses)."""

    async def go() -> list[str]:
        async with open_rpc(chain.url) as rpc:
            pool: Any = await rpc.request("txpool_content")
        mine = {k.lower(): v for k, v in pool.get("pending", {}).items()}
        return [str(tx.get("to", "")).lower() for tx in mine.get("0x" + sender.hex(), {}).values()]

    return run(go)


def _mine(chain: Chain, *, automine: bool | None = None) -> None:
    async def go() -> None:
        async with open_rpc(chain.url) as rpc:
            if automine is not None:
                await rpc.dev.set_automine(automine)
            await rpc.dev.evm_mine()

    run(go)


def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_deposit_pending_at_a_crash_is_not_sent_again(chain: Chain, tmp_path: Path) -> None:
    a_key, b_key = new_desk(chain), new_desk(chain)
    before = token_balances(chain, a_key.address)[0]
    alice = Desk("alice", chain, a_key, tmp_path, partners=[b_key.address])
    bob = Desk(
        "bob", chain, b_key, tmp_path, listen_port=free_port(), partners=[a_key.address]
    )
    adjudicator = "0x" + chain.adjudicator.hex()
    try:
        _mine(chain, automine=False)
        try:
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

            # Mine Alice's approval(s) until her deposit itself is the pending transaction.
            def deposit_pending() -> bool:
                pending = _pending_to(chain, alice.address)
                if adjudicator in pending:
                    return True
                if pending:
                    _mine(chain)
                return False

            _until(deposit_pending, 60, "Alice's deposit never went out")
            alice.kill()
            assert alice.wait_dead(10) == -9
            alice.start()
            # Back up, she finds her journalled deposit open and the transaction pending: she
            # waits for it rather than sending another.
            _until(
                lambda: "may be in flight" in alice.log_path.read_text(),
                60,
                "the restarted node did not wait for its pending deposit",
            )
            assert _pending_to(chain, alice.address).count(adjudicator) == 1
        finally:
            _mine(chain, automine=True)

        def both_open() -> bool:
            rows = [d.request("status", timeout=10)["channels"] for d in (alice, bob)]
            return all(
                r and r[0]["phase"] == "open" and r[0]["state"]["deposited"] == [DEPOSIT, DEPOSIT]
                for r in rows
            )

        _until(both_open, 60, "the channel did not open with one deposit each")
        cid = bytes.fromhex(str(alice.request("status")["channels"][0]["channel_id"])[2:])

        async def deposits() -> tuple[int, int]:
            async with connect_adjudicator(chain.url, chain.adjudicator, None) as view:
                record = await view.channel(cid)
                return record.deposits

        assert run(deposits) == (DEPOSIT, DEPOSIT)
        assert token_balances(chain, a_key.address)[0] == before - DEPOSIT  # paid once
    finally:
        for desk in (alice, bob):
            if desk.alive:
                try:
                    desk.quit()
                except AssertionError:
                    desk.kill()
