"""Operator commands: ``getinfo``, ``peers`` and ``settle`` (``init``: :mod:`.init_cmd`)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping
from typing import Any

from channels.cli.config import Config, UsageError
from channels.cli.errors import AlreadyClosed
from channels.cli.format import out, print_json, with_progress
from channels.cli.units import (
    UnitError,
    checked_address,
    iso_time,
    parse_units,
    text_duration,
)
from channels.cli.views import short_id, state_line, state_view
from channels.control import ControlClient
from channels.core import boundedjson
from channels.core.errors import BadAttestation
from channels.core.model import to_checksum

#: anvil's chain id: the dev oracle signs only there.
DEV_CHAIN_ID = 31337


def health_lines(health: Mapping[str, Any] | None) -> list[str]:
    """The node's health in a few lines: chain, head age, peers, open alarms."""
    if health is None:
        return ["health: unknown (this node does not report it)"]
    lines = []
    if not health["chain_reachable"]:
        lines.append(f"chain: UNREACHABLE ({health.get('chain_error') or 'no answer'})")
    else:
        age = health.get("head_age_seconds")
        stale = age is not None and age > health["max_head_age_seconds"]
        lines.append(
            f"chain: {'STALE' if stale else 'ok'}, block {health['head_block']}"
            + (f" made {text_duration(int(age))} ago" if age is not None else "")
        )
    lines.append(f"peers connected: {health['peers_connected']} of {len(health['peers'])}")
    for alarm in health["open_alarms"]:
        where = f" channel {short_id(alarm['channel'])}" if alarm.get("channel") else ""
        number = f" {alarm['id']}" if "id" in alarm else ""
        lines.append(
            f"ALARM{number} {alarm['kind']}{where} since {iso_time(int(alarm['raised_at']))}: "
            f"{alarm['detail']}"
        )
    if health["open_alarms"] and "id" in health["open_alarms"][0]:
        lines.append("(once handled: channels ack ID; channels alarms --all lists every alarm)")
    lines.append("healthy" if health["healthy"] else "UNHEALTHY: " + "; ".join(health["problems"]))
    return lines


async def cmd_getinfo(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    info = await client.call("getinfo")
    if args.json:
        print_json(info)
        return 0
    out(f"channels {info['version']}  node {info['address']}")
    out(f"chain {info['chain_id']}  adjudicator {info['adjudicator']}")
    out(f"listen port {info['listen_port'] or '-'}  channels {info['channels']}")
    metrics = info.get("metrics_url")
    out(f"metrics {metrics}/metrics  health {metrics}/healthz" if metrics else "metrics off")
    for phase, count in sorted(info["channels_by_phase"].items()):
        out(f"  {phase:<10} {count}")
    for line in health_lines(info.get("health")):
        out(line)
    for line in tower_lines(info.get("towers")):
        out(line)
    return 0


def tower_lines(towers: Mapping[str, Any] | None) -> list[str]:
    """What the start recovered from the watchtowers (nothing to say without towers)."""
    if not towers:
        return []
    lines = []
    rebuilt = towers.get("rebuilt") or {}
    if rebuilt.get("channels") or rebuilt.get("skipped"):
        positions = sum(int(n) for n in (rebuilt.get("positions") or {}).values())
        lines.append(
            f"rebuilt from the towers: {len(rebuilt['channels'])} channel(s), "
            f"{positions} open position(s)"
        )
        for cid, version in rebuilt["channels"].items():
            lines.append(f"  {short_id(cid)} at v{version}")
        for cid, why in (rebuilt.get("skipped") or {}).items():
            lines.append(f"  {short_id(cid)} not rebuilt: {why}")
    for cid, (old, new) in (towers.get("restored") or {}).items():
        lines.append(f"old copy of {short_id(cid)} brought from v{old} to v{new} by a tower")
    return lines


async def cmd_peers(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    """Configured peers and every peer with a channel: online or not, channels."""
    rows: list[dict[str, Any]] = await client.call("peers")
    by_address = {row["address"]: row for row in rows}
    views: list[dict[str, Any]] = []
    configured = cfg.peers if cfg is not None else {}
    for name, peer in sorted(configured.items()):
        addr = to_checksum(peer.address)
        row = by_address.pop(addr, None)
        views.append(
            {
                "name": name,
                "address": addr,
                "endpoint": f"{peer.host}:{peer.port}",
                "connected": bool(row and row["connected"]),
                "open_channels": row["open_channels"] if row else 0,
                "channels": row["channels"] if row else [],
            }
        )
    for addr, row in sorted(by_address.items()):
        views.append(
            {
                "name": None,
                "address": addr,
                "endpoint": None,
                "connected": row["connected"],
                "open_channels": row["open_channels"],
                "channels": row["channels"],
            }
        )
    if args.json:
        print_json(views)
        return 0
    if not views:
        out("no peers (add [peers.NAME] tables to the config)")
        return 0
    from channels.cli.views import render_table

    out(
        render_table(
            ("PEER", "ADDRESS", "ENDPOINT", "ONLINE", "OPEN", "CHANNELS"),
            [
                (
                    v["name"] or "-",
                    v["address"],
                    v["endpoint"] or "-",
                    "yes" if v["connected"] else "no",
                    str(v["open_channels"]),
                    " ".join(short_id(c) for c in v["channels"]) or "-",
                )
                for v in views
            ],
        )
    )
    return 0


# alarms ----------------------------------------------------------------------------------------
def alarm_view(a: Mapping[str, Any]) -> dict[str, Any]:
    """An alarm as ``alarms`` and ``ack`` show it: ISO times, open or acknowledged."""
    acked = a.get("acked_at")
    return {
        "id": a["id"],
        "kind": a["kind"],
        "channel": a.get("channel"),
        "detail": a["detail"],
        "raised_at": iso_time(int(a["raised_at"])),
        "last_raised_at": iso_time(int(a["last_raised_at"])),
        "repeats": a["repeats"],
        "state": "open" if acked is None else "acknowledged",
        "acked_at": None if acked is None else iso_time(int(acked)),
    }


async def cmd_alarms(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    """The node's open alarms (``--all``: acknowledged ones too)."""
    result = await client.call("alarms", all=True if args.all else None)
    views = [alarm_view(a) for a in result["alarms"]]
    if args.json:
        print_json({"alarms": views, "open": result["open"]})
        return 0
    if not views:
        out("no open alarms" if not args.all else "no alarms")
        return 0
    from channels.cli.views import render_table

    out(
        render_table(
            ("ID", "KIND", "CHANNEL", "RAISED", "REPEATS", "STATE", "DETAIL"),
            [
                (
                    str(v["id"]),
                    v["kind"],
                    short_id(v["channel"]) if v["channel"] else "-",
                    v["raised_at"],
                    str(v["repeats"]),
                    v["state"],
                    v["detail"],
                )
                for v in views
            ],
        )
    )
    if result["open"]:
        out("acknowledge one once handled: channels ack ID")
    return 0


async def cmd_ack(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    """Acknowledge an alarm: it stops counting against the desk's health, across restarts."""
    result = await client.call("ack", id=args.alarm_id)
    view = alarm_view(result["alarm"])
    if args.json:
        print_json({"alarm": view, "was_open": result["was_open"]})
    elif result["was_open"]:
        out(f"alarm {view['id']} ({view['kind']}) acknowledged")
    else:
        out(f"alarm {view['id']} ({view['kind']}) was already acknowledged at {view['acked_at']}")
    return 0


# settle ----------------------------------------------------------------------------------------
#: An attestation file is a few hundred bytes; anything much larger is not one.
MAX_ATTESTATION_FILE = 16_384


def _attestation_from_file(path: str, position: Mapping[str, Any]) -> tuple[int, bytes]:
    """(price in 8 decimals, signature) from an attestation JSON file::

        {"underlying": "ETH-USD", "expiry": "2027-01-01T08:00:00Z", "price": "3100.5",
         "signature": "0x..."}

    ``price`` is a decimal string in the quote currency; ``underlying`` and ``expiry`` (ISO or
    unix seconds) are optional, and when given must be the position's: a file for another
    position is refused here with :class:`BadAttestation`, before the node is asked. A malformed
    file is a :class:`UsageError`. The signature itself is checked by the node."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_ATTESTATION_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read attestation file {path}: {exc.strerror}") from None
    if len(raw) > MAX_ATTESTATION_FILE:
        raise UsageError(f"{path}: larger than an attestation file can be (16 KiB)")
    try:
        doc = boundedjson.loads(raw, max_bytes=MAX_ATTESTATION_FILE, max_depth=8)
    except boundedjson.JsonRejected as exc:
        raise UsageError(f"{path}: not an attestation (not JSON: {exc})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: must be a JSON object with price and signature")
    for key in ("price", "signature"):
        if not isinstance(doc.get(key), str):
            raise UsageError(f"{path}: {key!r} must be a string (see channels settle --help)")
    try:
        price = parse_units(doc["price"], 8)
        signature = bytes.fromhex(doc["signature"].removeprefix("0x"))
    except (UnitError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    if price <= 0:
        raise UsageError(f"{path}: the price must be above zero")
    if len(signature) != 65:
        raise UsageError(f"{path}: signature must be 65 bytes (0x and 130 hex digits)")
    underlying, expiry = doc.get("underlying"), doc.get("expiry")
    if underlying is not None and underlying != position["underlying"]:
        raise BadAttestation(
            f"{path} attests {underlying!r}; position {position['id']} is on "
            f"{position['underlying']!r}"
        )
    if expiry is not None:
        try:
            when = _file_time(expiry)
        except UnitError as exc:
            raise UsageError(f"{path}: expiry: {exc}") from None
        if when != int(position["expiry"]):
            raise BadAttestation(
                f"{path} attests the price at {iso_time(when)}; position {position['id']} "
                f"expires {iso_time(int(position['expiry']))}"
            )
    return price, signature


def _file_time(value: object) -> int:
    """An attestation file's expiry: unix seconds, or an ISO 8601 time (UTC unless given)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise UnitError(f"not a time: {value!r} (unix seconds or ISO 8601)") from None
        return int((when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp())
    raise UnitError(f"not a time: {value!r} (unix seconds or ISO 8601)")


def _dev_oracle_signature(
    info: Mapping[str, Any], underlying: str, expiry: int, price: int
) -> bytes:
    from adjudicator.devchain import DEV_PRIVATE_KEYS
    from channels.cli.desks import DEV_ORACLE_ACCOUNT
    from channels.core import eip712
    from channels.core.model import Address, Attestation, Price, Timestamp, symbol
    from channels.core.signing import LocalSigner

    if int(info["chain_id"]) != DEV_CHAIN_ID:
        raise UsageError(
            f"--dev-oracle signs only on a local anvil chain (chain id {DEV_CHAIN_ID}), not on "
            f"chain {info['chain_id']}: give --attestation FILE from the channel's oracle"
        )
    oracle = LocalSigner.from_hex(DEV_PRIVATE_KEYS[DEV_ORACLE_ACCOUNT])
    domain = eip712.Domain(int(info["chain_id"]), Address(checked_address(info["adjudicator"])))
    attestation = Attestation(symbol(underlying), Timestamp(expiry), Price(price))
    return oracle.sign_digest(eip712.attestation_digest(domain, attestation))


async def cmd_settle(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    """Settle an expired position at the oracle's signed price."""
    row = args.channel_row
    if row["phase"] == "closed":
        raise AlreadyClosed(f"channel {short_id(row['id'])} is already closed")
    matching = [p for p in row.get("positions") or () if p["id"] == args.position]
    if not matching:
        ids = ", ".join(str(p["id"]) for p in row.get("positions") or ()) or "none"
        raise UsageError(f"no open position {args.position} in that channel (open: {ids})")
    position = matching[0]
    info = await client.call("ping")
    if int(info["now"]) < int(position["expiry"]):
        raise UsageError(
            f"position {args.position} expires {iso_time(int(position['expiry']))}; it can be "
            "settled after that (before, unwind it at an agreed split)"
        )
    if args.attestation is not None:
        price, signature = _attestation_from_file(args.attestation, position)
    else:
        if args.price is None:
            raise UsageError("--dev-oracle needs --price (the settlement price, e.g. 3100.5)")
        price = args.price
        signature = _dev_oracle_signature(
            info, position["underlying"], int(position["expiry"]), price
        )
    result = await with_progress(
        f"settling position {args.position} with {args.peer_label}",
        client.call(
            "settle",
            channel=args.channel,
            position=args.position,
            price=price,
            signature="0x" + signature.hex(),
        ),
    )
    view = state_view(result, row, cfg, bool(args.raw))
    if args.json:
        print_json(view)
    else:
        out(state_line(f"position {args.position} settled", view))
    return 0
