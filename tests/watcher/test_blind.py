"""A watcher whose endpoint stops answering says so: a ``StaleHead`` alarm (as for an old head)
and a few log lines, not one warning per poll. Before: 225 identical warnings in 3 minutes and
no alarm, while ``now`` kept extrapolating a healthy chain time."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from channels.core.node_events import Alarm
from channels.runtime.node import NodeSettings

from .conftest import Desks, desk
from .faultproxy import Rule
from .test_faults import fault_proxy

BLIND = NodeSettings(chain_poll_interval=0.05, update_timeout=10.0, max_head_age=2.0)


async def test_failing_endpoint_raises_stale_head_and_logs_sparingly(
    desks: Desks, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.defence.watcher")
    with trio.fail_after(60):
        async with fault_proxy(desks) as proxy:
            async with desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False, url=proxy.url,
                settings=BLIND,
            ) as alice, alice.events() as events:
                proxy.rules = [Rule(None, "http500")]
                proxy.enabled = True
                blind: list[Alarm] = []
                while not blind:
                    event = await events.receive()
                    if isinstance(event, Alarm) and "no successful chain poll" in event.detail:
                        blind.append(event)
                assert blind[0].kind == "StaleHead"
                assert alice.watcher.head_stale
                failed_polls = alice.watcher.health.failures
                assert failed_polls >= 2
                warnings = [r for r in caplog.records if "watcher poll failed" in r.message]
                assert len(warnings) < failed_polls
                assert len(warnings) <= 2
                proxy.enabled = False
                while alice.watcher.health.failures:
                    await trio.sleep(0.05)
                assert alice.watcher.health.blind_for == 0.0
