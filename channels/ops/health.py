"""A desk's health as an operator needs it: is the chain reachable, how old is its head, which
peers are connected, which alarms are open (not acknowledged: :mod:`channels.ops.alarms`); and
counters of what the node did (for metrics).

The monitor probes the chain itself (a bounded ``eth_blockNumber`` + latest block timestamp every
``probe_interval`` seconds) rather than trusting the node's extrapolated clock: with the chain
down, the node's ``now()`` keeps running from the last block it saw, which must not look healthy.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from channels.core.model import to_checksum
from channels.ops.alarms import AlarmBook, AlarmRecord

if TYPE_CHECKING:
    from channels.runtime.node import Node

log = logging.getLogger("channels.health")


@dataclass
class Counters:
    """What the node did since start, by kind (the metrics read these)."""

    updates: Counter[str] = field(default_factory=Counter)  # by "ours" / "theirs"
    refusals: Counter[str] = field(default_factory=Counter)  # by rule
    alarms: Counter[str] = field(default_factory=Counter)  # by kind
    chain_events: Counter[str] = field(default_factory=Counter)  # by event name
    peer_connects: int = 0
    peer_losses: int = 0


class HealthMonitor:
    """``await nursery.start(monitor.run)``; then :meth:`snapshot` at any time."""

    def __init__(
        self,
        node: Node,
        *,
        probe_interval: float = 1.0,
        probe_timeout: float = 5.0,
        max_head_age: float | None = None,
        alarms: AlarmBook | None = None,
    ) -> None:
        """``alarms``: the desk's persisted alarm book (default: one in memory)."""
        self.node = node
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.max_head_age = (
            max_head_age
            if max_head_age is not None
            else float(getattr(node.settings, "max_head_age", 180.0))
        )
        self.counters = Counters()
        self.chain_reachable = False
        self.chain_error: str | None = None
        self.head_block: int | None = None
        self.head_timestamp: int | None = None
        self.last_probe_ok: float | None = None  # wall time
        self.alarms = alarms if alarms is not None else AlarmBook()
        self.probes = 0

    # running -----------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._follow_events)
            await self.probe()
            task_status.started()
            while True:
                await trio.sleep(self.probe_interval)
                await self.probe()

    async def probe(self) -> None:
        """Ask the chain for its head, bounded in time; remember what we saw."""
        self.probes += 1
        try:
            with trio.fail_after(self.probe_timeout):
                head = await self.node.chain.head()
                timestamp = await self.node.chain.block_timestamp("latest")
        except Exception as exc:  # any failure means "not reachable"; the text says which
            if self.chain_reachable:
                log.warning("chain unreachable: %s", exc)
            self.chain_reachable = False
            self.chain_error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
            return
        self.chain_reachable = True
        self.chain_error = None
        self.head_block = head
        self.head_timestamp = timestamp
        self.last_probe_ok = time.time()

    async def _follow_events(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        from channels.core.node_events import (
            Alarm,
            ChainEventSeen,
            PeerConnected,
            PeerLost,
            StateUpdated,
            UpdateRefusedEvent,
        )

        async with self.node.events() as stream:
            task_status.started()
            async for event in stream:
                c = self.counters
                if isinstance(event, StateUpdated):
                    c.updates["ours" if event.ours else "theirs"] += 1
                elif isinstance(event, UpdateRefusedEvent):
                    c.refusals[event.rule] += 1
                elif isinstance(event, Alarm):
                    c.alarms[event.kind] += 1
                    channel = None if event.channel_id is None else "0x" + event.channel_id.hex()
                    self.alarms.raise_alarm(event.kind, event.detail, channel, time.time())
                elif isinstance(event, ChainEventSeen):
                    c.chain_events[event.name] += 1
                elif isinstance(event, PeerConnected):
                    c.peer_connects += 1
                elif isinstance(event, PeerLost):
                    c.peer_losses += 1

    # reading -----------------------------------------------------------------------------------
    def head_age(self) -> float | None:
        """Seconds of wall time since the newest block we saw was made."""
        if self.head_timestamp is None:
            return None
        return max(0.0, time.time() - self.head_timestamp)

    def open_alarms(self) -> list[AlarmRecord]:
        """Alarms not acknowledged; StaleHead closes by itself once the head is fresh again."""
        age = self.head_age()
        head_fresh = self.chain_reachable and age is not None and age <= self.max_head_age
        return [
            a
            for a in self.alarms.open_records()
            if not (a.kind == "StaleHead" and head_fresh)
        ]

    def acknowledge(self, alarm_id: int) -> tuple[AlarmRecord, bool]:
        """The operator saw alarm ``alarm_id``: it no longer counts against health."""
        record, was_open = self.alarms.ack(alarm_id, time.time())
        if was_open:
            log.info("alarm %d (%s) acknowledged", alarm_id, record.kind)
        return record, was_open

    def peers(self) -> dict[str, bool]:
        """Every peer we have a channel with: connected or not."""
        peers: dict[str, bool] = {}
        for info in self.node.status():
            peer = to_checksum(info.peer)
            peers[peer] = peers.get(peer, False) or info.connected
        return peers

    def snapshot(self) -> dict[str, Any]:
        """What ``/healthz``, ``getinfo`` and ``status`` show. ``healthy`` is false while the
        chain is unreachable, its head is older than ``max_head_age``, or an alarm is open."""
        age = self.head_age()
        alarms = self.open_alarms()
        problems: list[str] = []
        if not self.chain_reachable:
            problems.append(f"chain unreachable ({self.chain_error or 'no answer yet'})")
        elif age is not None and age > self.max_head_age:
            problems.append(f"chain head is {age:.0f}s old (> {self.max_head_age:.0f}s)")
        if alarms:
            problems.append(f"{len(alarms)} open alarm(s)")
        peers = self.peers()
        return {
            "healthy": not problems,
            "problems": problems,
            "chain_reachable": self.chain_reachable,
            "chain_error": self.chain_error,
            "head_block": self.head_block,
            "head_timestamp": self.head_timestamp,
            "head_age_seconds": None if age is None else round(age, 1),
            "max_head_age_seconds": self.max_head_age,
            "last_probe_ok": self.last_probe_ok,
            "peers_connected": sum(1 for up in peers.values() if up),
            "peers": [{"address": a, "connected": up} for a, up in sorted(peers.items())],
            "open_alarms": [alarm_json(a) for a in alarms],
        }


def alarm_json(a: AlarmRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "detail": a.detail,
        "channel": a.channel,
        "raised_at": a.raised_at,
        "last_raised_at": a.last_raised_at,
        "repeats": a.repeats,
        "acked_at": a.acked_at,
    }
