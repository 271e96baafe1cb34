"""Control commands for the desk operator: asset facts, node info with health, peers.

``asset_info``  ``asset``: the asset's decimals (read from the chain), so the CLI can take amounts
                in the asset's units
``getinfo``     the node: version, address, chain, listen port, metrics URL, channel counts by
                phase, and its health (chain reachable, head age, peers connected, open alarms)
``peers``       every peer the node has a channel with: online or not, and its channels
``alarms``      ``[all]``: the open alarms (with ``all``: acknowledged ones too), each with its id
``ack``         ``id``: acknowledge an alarm; it stays acknowledged across restarts
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from channels.control.errors import BadRequest
from channels.control.fields import Fields, Handler
from channels.core.model import to_checksum

if TYPE_CHECKING:
    from channels.ops.health import HealthMonitor
    from channels.runtime.node import Node


class _Server(Protocol):
    """What these commands use of the control server (its module imports this one)."""

    node: Node
    health: HealthMonitor | None
    metrics_url: str | None
    commands: dict[str, tuple[frozenset[str], Handler]]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("option-channels")
    except PackageNotFoundError:  # a checkout run without `pip install -e .`
        return "0+unknown"


def _hex(channel_id: bytes) -> str:
    return "0x" + bytes(channel_id).hex()


def register_operator_commands(server: _Server) -> None:
    node = server.node

    async def asset_info(f: Fields) -> Any:
        asset = f.get_address("asset")
        decimals = await node.chain.asset_decimals(asset)
        return {"asset": to_checksum(asset), "decimals": decimals}

    async def getinfo(f: Fields) -> Any:
        phases: dict[str, int] = {}
        for channel in node.channels:
            phases[channel.phase.value] = phases.get(channel.phase.value, 0) + 1
        health = server.health.snapshot() if server.health is not None else None
        return {
            "version": package_version(),
            "address": to_checksum(node.address),
            "chain_id": node.chain_id,
            "adjudicator": to_checksum(node.chain.address),
            "listen_port": node.listen_port,
            "metrics_url": server.metrics_url,
            "channels": len(node.channels),
            "channels_by_phase": phases,
            "peers_connected": len(connected()),
            "health": health,
            "towers": towers_recovered(),
        }

    def towers_recovered() -> dict[str, Any] | None:
        """What the start got back from the watchtowers (None: the desk has none)."""
        if not node.towers.towers:
            return None
        report = node.rebuilt
        return {
            "rebuilt": None
            if report is None
            else {
                "channels": {_hex(c): v for c, v in report.rebuilt.items()},
                "positions": {_hex(c): n for c, n in report.positions.items()},
                "skipped": {_hex(c): why for c, why in report.skipped.items()},
            },
            "restored": {_hex(c): list(pair) for c, pair in node.towers.restored.items()},
        }

    def connected() -> set[str]:
        """Peers with a live link, from the node's own view (not only events seen since the
        control server started)."""
        return {"0x" + bytes(info.peer).hex() for info in node.status() if info.connected}

    async def peers(f: Fields) -> Any:
        online = connected()
        by_peer: dict[bytes, list[Any]] = {}
        for channel in node.channels:
            by_peer.setdefault(bytes(channel.peer_address), []).append(channel)
        rows = []
        for peer, channels in by_peer.items():
            rows.append(
                {
                    "address": to_checksum(peer),
                    "connected": "0x" + peer.hex() in online,
                    "channels": ["0x" + c.id.hex() for c in channels],
                    "open_channels": sum(1 for c in channels if c.phase.value != "closed"),
                }
            )
        return rows

    def alarm_book() -> HealthMonitor:
        if server.health is None:
            raise BadRequest("this node keeps no alarms (it runs without a health monitor)")
        return server.health

    async def alarms(f: Fields) -> Any:
        from channels.ops.health import alarm_json

        health = alarm_book()
        shown = health.alarms.records() if f.has("all") else health.open_alarms()
        return {"alarms": [alarm_json(a) for a in shown], "open": len(health.open_alarms())}

    async def ack(f: Fields) -> Any:
        from channels.ops.alarms import UnknownAlarm
        from channels.ops.health import alarm_json

        alarm_id = f.get_int("id")
        try:
            record, was_open = alarm_book().acknowledge(alarm_id)
        except UnknownAlarm as exc:
            raise BadRequest(str(exc)) from None
        return {"alarm": alarm_json(record), "was_open": was_open}

    for name, fields, handler in (
        ("asset_info", ("asset",), asset_info),
        ("getinfo", (), getinfo),
        ("peers", (), peers),
        ("alarms", ("all",), alarms),
        ("ack", ("id",), ack),
    ):
        server.commands[name] = (frozenset(fields), handler)
