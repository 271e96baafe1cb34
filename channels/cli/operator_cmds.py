"""Operator commands: ``getinfo``, ``peers``, ``settle`` and ``init``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from channels.cli.config import Config, ConfigError, UsageError, load_config
from channels.cli.errors import AlreadyClosed
from channels.cli.format import note, out, print_json, with_progress
from channels.cli.units import (
    UnitError,
    checked_address,
    iso_time,
    parse_units,
    text_duration,
)
from channels.cli.views import short_id, state_line, state_view
from channels.control import ControlClient
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
        lines.append(
            f"ALARM {alarm['kind']}{where} since {iso_time(int(alarm['raised_at']))}: "
            f"{alarm['detail']}"
        )
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
    for phase, count in sorted(info["channels_by_phase"].items()):
        out(f"  {phase:<10} {count}")
    for line in health_lines(info.get("health")):
        out(line)
    return 0


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


# settle ----------------------------------------------------------------------------------------
def _attestation_from_file(path: str) -> tuple[int, bytes, Mapping[str, Any]]:
    """(price in 8 decimals, signature, the file's fields) from an attestation JSON file:
    ``{"underlying": "ETH-USD", "expiry": "2027-01-01T08:00:00Z", "price": "3100.5",
    "signature": "0x..."}`` (expiry may be unix seconds; price a decimal string)."""
    try:
        text = Path(path).read_text()
        if len(text) > 16_384:
            raise UsageError(f"{path}: larger than an attestation file can be (16 KiB)")
        doc = json.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read attestation file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: must be a JSON object with price and signature")
    try:
        price = parse_units(str(doc["price"]), 8)
        signature_text = str(doc["signature"])
        signature = bytes.fromhex(signature_text.removeprefix("0x"))
    except KeyError as exc:
        raise UsageError(f"{path}: missing {exc.args[0]!r}") from None
    except (UnitError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    if len(signature) != 65:
        raise UsageError(f"{path}: signature must be 65 bytes (0x and 130 hex digits)")
    return price, signature, doc


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
        price, signature, _ = _attestation_from_file(args.attestation)
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


# init ------------------------------------------------------------------------------------------
def run_init_sync(args: argparse.Namespace) -> int:
    """Write a new desk config and a fresh key (file of mode 0600) next to it."""
    from channels.cli.desks import _write_private, _write_public, desk_config_text, free_port
    from channels.core.signing import LocalSigner

    target = Path(args.path)
    if target.suffix != ".toml":
        raise UsageError(f"{target}: a desk config's name ends in .toml")
    if target.exists():
        raise UsageError(f"{target} exists; choose another name (init never overwrites)")
    name = target.stem
    key_file = target.with_name(f"{name}.key")
    if key_file.exists():
        raise UsageError(f"{key_file} exists; init never overwrites a key")
    template: Config | None = load_config(args.like) if args.like else None
    rpc_url = args.rpc_url or (template.rpc_url if template else None)
    adjudicator = args.adjudicator or (template.adjudicator if template else None)
    asset = args.asset or (template.asset if template else None)
    oracle = args.oracle or (template.oracle if template else None)
    missing = [
        flag
        for flag, value in (
            ("--rpc-url", rpc_url),
            ("--adjudicator", adjudicator),
            ("--asset", asset),
            ("--oracle", oracle),
        )
        if value is None
    ]
    if missing:
        raise UsageError(
            f"give {', '.join(missing)} (or --like desks/desk-a.toml to take them from a config)"
        )
    assert rpc_url and adjudicator and asset and oracle
    target.parent.mkdir(parents=True, exist_ok=True)
    signer = LocalSigner.generate()
    _write_private(key_file, "0x" + signer.secret.hex() + "\n")
    port = args.listen_port if args.listen_port is not None else free_port()
    text = desk_config_text(
        name=name,
        comment="created by `channels init`; its key is in "
        f"{key_file.name} (mode 0600): back it up, never share it",
        key_line=f'key_file = "{key_file.name}"          # hex private key, mode 0600',
        listen_port=port,
        rpc_url=rpc_url,
        adjudicator=to_checksum(adjudicator),
        asset=to_checksum(asset),
        asset_note="the channel asset (ERC-20)",
        oracle=to_checksum(oracle),
        oracle_note="the price oracle both desks trust",
        challenge_period=template.challenge_period if template else 3600,
        peers=[],
    )
    _write_public(target, text)
    try:
        load_config(target)  # what we wrote must load
    except ConfigError:
        target.unlink()
        key_file.unlink()
        raise
    out(f"desk config  {target}")
    out(f"key file     {key_file} (mode 0600)")
    out(f"address      {to_checksum(signer.address)}")
    note(
        "fund this address with the asset and with gas, add the peers you trade with as "
        f"[peers.NAME] tables, then: channels node --config {target}"
    )
    return 0


async def run_init(args: argparse.Namespace) -> int:
    return run_init_sync(args)
