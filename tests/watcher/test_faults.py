"""The watcher under a faulty JSON-RPC endpoint (docs/THREATS.md sections 6.6 and 7): 500s,
timeouts, lost responses, "nonce too low", "already known", a lagging head, an old head (time
dilation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.rpc import open_rpc
from channels.core.node_events import Alarm, Event
from channels.core.protocol import Phase
from channels.defence.watcher import SAFE_MIN_CHALLENGE_PERIOD, check_challenge_period

from .conftest import DEPOSIT, PERIOD, Desks, balances, cheat_setup, desk, view, wait_for
from .faultproxy import FaultProxy, Rule


@asynccontextmanager
async def fault_proxy(desks: Desks) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(desks.url, enabled=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()


def alarms_of(events: trio.MemoryReceiveChannel[Event]) -> list[Alarm]:
    out = []
    while True:
        try:
            event = events.receive_nowait()
        except trio.WouldBlock:
            return out
        if isinstance(event, Alarm):
            out.append(event)


async def test_stale_registration_is_refuted_through_a_faulty_rpc(
    desks: Desks, tmp_path: Path
) -> None:
    async with open_rpc(desks.url) as rpc:
        before = await balances(desks, rpc)
    with trio.fail_after(80):
        async with fault_proxy(desks) as proxy:
            ch, old, latest = await cheat_setup(desks, tmp_path, alice_url=proxy.url)
            proxy.rules = [
                Rule("eth_sendRawTransaction", "nonce_too_low", limit=1),
                Rule("eth_sendRawTransaction", "already_known", limit=1),
                Rule("eth_sendRawTransaction", "http500_after", limit=1),
                Rule("eth_blockNumber", "stale_block", every=2, lag=3),
                Rule("eth_getLogs", "timeout", limit=1, delay=1.0),
                # More failures in a row than the client retries: a whole poll fails.
                Rule("eth_getLogs", "http500", limit=6),
                Rule("eth_getTransactionReceipt", "http500", every=3),
                Rule("eth_call", "http500", every=4),
                Rule("eth_estimateGas", "http500", every=2, limit=2),
                Rule(None, "http500", every=7),
            ]
            proxy.enabled = True
            async with desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False, url=proxy.url
            ) as alice:
                alice.chain.rpc.timeout = 0.5  # so the proxy's held requests time out
                async with alice.events() as events:
                    async with connect_adjudicator(
                        desks.url, desks.adjudicator, desks.bob.secret
                    ) as bob:
                        await bob.register(ch.params, old)
                    await wait_for(
                        lambda: _version_is(desks, ch.id, latest.state.version), timeout=30
                    )
                    async with open_rpc(desks.url) as rpc:
                        await rpc.dev.increase_time(PERIOD + 1)
                        await rpc.dev.evm_mine()
                    await alice.channel(ch.id).wait_phase(Phase.CLOSED)
                    alarms = alarms_of(events)
                assert alice.watcher.errors > 0  # polls failed, and the loop went on
        assert (await view(desks, ch.id)).status is ChannelStatus.CONCLUDED
    for fault in ("nonce_too_low", "stale_block", "timeout", "http500"):
        assert proxy.injected[fault] >= 1, (fault, proxy.injected)
    assert proxy.injected["already_known"] + proxy.injected["http500_after"] >= 1
    kinds = {a.kind for a in alarms}
    assert "ChallengePeriodTooShort" in kinds
    async with open_rpc(desks.url) as rpc:
        after = await balances(desks, rpc)
    assert after[0] - before[0] == latest.state.balances[0] - DEPOSIT
    assert after[1] - before[1] == latest.state.balances[1] - DEPOSIT


async def _version_is(desks: Desks, cid: bytes, version: int) -> bool:
    return (await view(desks, cid)).version == version


async def test_an_old_head_raises_stale_head(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with fault_proxy(desks) as proxy:
            proxy.rules = [Rule("eth_getBlockByNumber", "old_timestamp", lag=1000)]
            async with desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False, url=proxy.url
            ) as alice:
                alice.watcher.max_head_age = 60.0
                async with alice.events() as events:
                    proxy.enabled = True  # the node is now fed a chain 1000 s behind wall time
                    seen: list[Alarm] = []

                    def stale() -> bool:
                        seen.extend(alarms_of(events))
                        return any(a.kind == "StaleHead" for a in seen)

                    await wait_for(stale, timeout=10)
                    proxy.enabled = False
                    await wait_for(lambda: not alice.watcher.head_stale, timeout=10)
                    await trio.sleep(0.3)
                    seen.extend(alarms_of(events))
                assert [a.kind for a in seen].count("StaleHead") == 1  # once per episode


def test_challenge_period_bound() -> None:
    assert check_challenge_period(SAFE_MIN_CHALLENGE_PERIOD, inclusion_window=0) is None
    assert check_challenge_period(120, inclusion_window=0) is not None
    day = 24 * 3600
    # On a rollup the forced-inclusion window dominates: a week is fine, a day is not.
    assert check_challenge_period(7 * day, inclusion_window=day) is None
    problem = check_challenge_period(day, inclusion_window=day, poll_interval=2.0)
    assert problem is not None and str(day + 20) in problem
    assert check_challenge_period(100, inclusion_window=0, poll_interval=1.0, minimum=10) is None
    assert check_challenge_period(5, inclusion_window=0, poll_interval=1.0, minimum=0) is not None
