"""Prometheus metrics and a health check over HTTP: ``GET /metrics`` and ``GET /healthz``.

Served from the node's own trio loop (not prometheus-client's thread server), so a scrape reads
the node's state from the thread that changes it. Every value is computed at scrape time from the
node and the :class:`~channels.ops.health.HealthMonitor`; nothing is double-booked.

``/healthz`` answers 200 with ``{"healthy": true, ...}`` or 503 with the problems (chain
unreachable, head too old, open alarms), for load balancers and process supervisors.

Requests are hostile until checked: a request line and headers of at most 8 KiB, read within
5 seconds; anything but ``GET`` of the two paths gets 404/405.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from channels.ops.health import HealthMonitor
    from channels.runtime.node import Node

log = logging.getLogger("channels.metrics")

MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeCollector(Collector):
    """Channel, update, dispute, watcher, peer and alarm metrics of one node."""

    def __init__(self, node: Node, health: HealthMonitor) -> None:
        self.node = node
        self.health = health

    def collect(self) -> Iterator[Metric]:
        node, health = self.node, self.health
        infos = node.status()
        phases = GaugeMetricFamily("channels_channels", "Channels by phase", labels=["phase"])
        by_phase: dict[str, int] = {}
        for info in infos:
            by_phase[info.phase.value] = by_phase.get(info.phase.value, 0) + 1
        for phase, count in sorted(by_phase.items()):
            phases.add_metric([phase], count)
        yield phases

        balance = GaugeMetricFamily(
            "channels_balance",
            "Channel balance in the asset's smallest units",
            labels=["channel", "side"],
        )
        version = GaugeMetricFamily(
            "channels_channel_version", "Latest state version", labels=["channel"]
        )
        positions = GaugeMetricFamily(
            "channels_open_positions", "Open option positions", labels=["channel"]
        )
        locked = GaugeMetricFamily(
            "channels_locked", "Collateral locked in positions (smallest units)", labels=["channel"]
        )
        deadline = GaugeMetricFamily(
            "channels_dispute_deadline_timestamp_seconds",
            "End of the challenge period of a registered channel (unix time)",
            labels=["channel"],
        )
        disputed = 0
        for info in infos:
            cid = "0x" + bytes(info.channel_id).hex()
            balance.add_metric([cid, "ours"], float(info.our_balance))
            balance.add_metric([cid, "theirs"], float(info.their_balance))
            version.add_metric([cid], float(info.version))
            positions.add_metric([cid], float(info.positions))
            locked.add_metric([cid], float(info.locked))
            if info.deadline > 0:
                deadline.add_metric([cid], float(info.deadline))
                disputed += 1
        yield from (balance, version, positions, locked, deadline)
        yield GaugeMetricFamily(
            "channels_disputes_open", "Channels registered on chain, not concluded", value=disputed
        )

        c = health.counters
        updates = CounterMetricFamily(
            "channels_updates", "Fully signed state updates", labels=["proposer"]
        )
        for who in ("ours", "theirs"):
            updates.add_metric([who], c.updates[who])
        yield updates
        refusals = CounterMetricFamily(
            "channels_update_refusals", "Updates refused, by rule", labels=["rule"]
        )
        for rule, count in sorted(c.refusals.items()):
            refusals.add_metric([rule], count)
        yield refusals
        chain_events = CounterMetricFamily(
            "channels_watcher_chain_events",
            "Adjudicator events seen by the watcher",
            labels=["event"],
        )
        for name, count in sorted(c.chain_events.items()):
            chain_events.add_metric([name], count)
        yield chain_events
        yield CounterMetricFamily(
            "channels_watcher_polls", "Watcher polls of the chain", value=node.watcher.polls
        )
        alarms = CounterMetricFamily("channels_alarms", "Alarms raised, by kind", labels=["kind"])
        for kind, count in sorted(c.alarms.items()):
            alarms.add_metric([kind], count)
        yield alarms
        yield GaugeMetricFamily(
            "channels_alarms_open", "Alarms open now", value=len(health.open_alarms())
        )

        snapshot = health.snapshot()
        yield GaugeMetricFamily(
            "channels_peers_connected", "Peers with a live link", value=snapshot["peers_connected"]
        )
        yield CounterMetricFamily(
            "channels_peer_disconnects", "Peer links lost", value=c.peer_losses
        )
        yield GaugeMetricFamily(
            "channels_chain_reachable",
            "1 if the chain answered the last probe",
            value=int(snapshot["chain_reachable"]),
        )
        if snapshot["head_block"] is not None:
            yield GaugeMetricFamily(
                "channels_chain_head_block", "Newest block seen", value=snapshot["head_block"]
            )
        if snapshot["head_age_seconds"] is not None:
            yield GaugeMetricFamily(
                "channels_chain_head_age_seconds",
                "Wall time since the newest block seen was made",
                value=snapshot["head_age_seconds"],
            )
        yield GaugeMetricFamily(
            "channels_healthy", "1 if /healthz reports healthy", value=int(snapshot["healthy"])
        )


def metrics_registry(node: Node, health: HealthMonitor) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node, health))
    return registry


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _read_request_line(stream: trio.SocketStream) -> bytes | None:
    data = b""
    with trio.move_on_after(REQUEST_TIMEOUT):
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            chunk = await stream.receive_some(MAX_REQUEST)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST:
                return None
    return data.split(b"\n", 1)[0].strip()


async def serve_metrics(
    node: Node,
    health: HealthMonitor,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` until cancelled; reports the port."""
    registry = metrics_registry(node, health)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                line = await _read_request_line(stream)
                if line is None:
                    reply = _response("431 Request Header Fields Too Large", "text/plain", b"")
                else:
                    reply = _answer(line, registry, health)
                await stream.send_all(reply)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return

    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("metrics on http://%s:%d/metrics, health on /healthz", host, bound)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        task_status.started(bound)


def _answer(line: bytes, registry: CollectorRegistry, health: HealthMonitor) -> bytes:
    parts = line.split()
    if len(parts) < 2:
        return _response("400 Bad Request", "text/plain", b"bad request\n")
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if target not in (b"/metrics", b"/healthz"):
        return _response("404 Not Found", "text/plain", b"try /metrics or /healthz\n")
    if method != b"GET":
        return _response("405 Method Not Allowed", "text/plain", b"GET only\n")
    if target == b"/metrics":
        return _response("200 OK", CONTENT_TYPE, generate_latest(registry))
    snapshot = health.snapshot()
    body = (json.dumps(snapshot, indent=2) + "\n").encode()
    status = "200 OK" if snapshot["healthy"] else "503 Service Unavailable"
    return _response(status, "application/json", body)
