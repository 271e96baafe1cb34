"""The one-shot commands: they drive a running node over its control socket."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from channels.cli.config import (
    Config,
    UsageError,
    load_config,
    require_config,
)
from channels.cli.errors import AlreadyClosed
from channels.cli.format import (
    currency_notes,
    note,
    out,
    positions_table,
    print_json,
    status_table,
    with_progress,
)
from channels.cli.operator_cmds import health_lines
from channels.cli.units import (
    Amount,
    UnitError,
    checked_address,
    iso_duration,
    iso_time,
    text_duration,
)
from channels.cli.values import (
    Expiry,
    parse_endpoint,
)
from channels.cli.views import (
    Units,
    balances_view,
    channel_view,
    peer_label,
    position_view,
    short_id,
    state_line,
    state_view,
)
from channels.control import ControlClient, ControlError, connect_control
from channels.core.errors import ChannelError
from channels.core.model import to_checksum
from channels.core.units import fmt_units

if TYPE_CHECKING:
    pass


# One-shot commands -----------------------------------------------------------------------------
def _socket_and_config(args: argparse.Namespace) -> tuple[Path, Config | None]:
    if getattr(args, "socket", None):
        cfg = load_config(args.config) if getattr(args, "config", None) else None
        return Path(args.socket), cfg
    cfg = require_config(args)
    return cfg.control, cfg


OneShot = Callable[[ControlClient, argparse.Namespace, Config | None], Awaitable[int]]


async def run_one_shot(args: argparse.Namespace, command: OneShot) -> int:
    path, cfg = _socket_and_config(args)
    async with connect_control(path) as client:
        if getattr(args, "channel", None) is not None:
            row = await resolve_channel(client, args.channel, cfg)
            args.channel, args.channel_row = row["id"], row
            args.peer_label = peer_label(row, cfg)
        return await command(client, args, cfg)


async def resolve_channel(client: ControlClient, text: str, cfg: Config | None) -> dict[str, Any]:
    """The status row of a channel given as a [peers] name (its one channel not closed with that
    peer), a peer address, or a channel id or unique id prefix."""
    rows: list[dict[str, Any]] = await client.call("status")
    peer_address: str | None = None
    if cfg is not None and text in cfg.peers:
        peer_address = to_checksum(cfg.peers[text].address)
    elif len(text) == 42 and text[:2] == "0x" and any(r["peer"] == text for r in rows):
        peer_address = text
    if peer_address is not None:
        with_peer = [r for r in rows if r["peer"] == peer_address]
        live = [r for r in with_peer if r["phase"] != "closed"] or with_peer[-1:]
        if not live:
            raise UsageError(
                f"no channel with {text} yet (open one: channels -c {_cfg_arg(cfg)} open {text} "
                "--deposit AMOUNT)"
            )
        if len(live) > 1:
            ids = ", ".join(short_id(r["id"]) for r in live)
            raise UsageError(f"{len(live)} open channels with {text} ({ids}): give a channel id")
        return live[0]
    want = (text[2:] if text[:2] in ("0x", "0X") else text).lower()
    if not want or any(c not in "0123456789abcdef" for c in want):
        names = ", ".join(sorted(cfg.peers)) if cfg is not None and cfg.peers else "none"
        raise UsageError(
            f"{text!r} is neither a peer name (known: {names}) nor a channel id (see `status`)"
        )
    found = [r for r in rows if r["id"][2:].startswith(want)]
    if not found:
        raise UsageError(f"no channel 0x{want} on this node (`status` lists them)")
    if len(found) > 1:
        raise UsageError(f"channel prefix 0x{want} matches {len(found)} channels: give more digits")
    return found[0]


def _cfg_arg(cfg: Config | None) -> str:
    return str(cfg.path) if cfg is not None else "DESK.toml"


def _units(args: argparse.Namespace) -> Units:
    return Units(int(args.channel_row["asset_decimals"]), bool(args.raw))


def _amount(args: argparse.Namespace, value: Amount) -> int:
    decimals = int(args.channel_row["asset_decimals"])
    return value.units(decimals, raw=bool(args.raw))


async def cmd_status(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    info = await client.call("ping")
    rows = await client.call("status")
    health = await _health(client)
    chain_ok = health is None or (
        health["chain_reachable"]
        and (health["head_age_seconds"] or 0) <= health["max_head_age_seconds"]
    )
    views = [channel_view(row, cfg, bool(args.raw)) for row in rows]
    if args.json:
        node = node_view(info, chain_ok)
        print_json({"node": node, "health": health, "channels": views})
        return 0
    gas = info.get("gas_reserve") or {}
    reserve = ""
    if gas.get("balance") is not None:  # the account that pays for the defence, vs its reserve
        reserve = (
            f"  gas {gas['balance'] / 10**18:.6f} ETH (reserve {gas['reserve'] / 10**18:.6f} ETH"
            f" at {fmt_units(int(gas['max_fee_per_gas']), 9)} gwei"
            + (", LOW: add ETH)" if gas.get("low") else ")")
        )
    out(
        f"node {info['address']}  chain {info['chain_id']}  adjudicator {info['adjudicator']}"
        + reserve
    )
    if chain_ok:
        out(f"chain time {iso_time(int(info['now']))}")
    else:
        # The node's clock runs on from the last block it saw: not a time to act on.
        last = health.get("head_timestamp") if health else None
        out(
            "chain time UNKNOWN: "
            + ("chain unreachable" if health and not health["chain_reachable"] else "head stale")
            + (f"; last block seen was made {iso_time(int(last))}" if last else "")
            + "; deadlines below are as of then"
        )
    if health is not None:
        for line in health_lines(health)[1:]:
            out(line)
    if not rows:
        out("no channels")
        return 0
    out(status_table(views, int(info["now"])))
    for line in currency_notes(views):
        out(line)
    positions = positions_table(views)
    if positions and not args.brief:
        out()
        out(positions)
    return 0


async def _health(client: ControlClient) -> dict[str, Any] | None:
    """The node's health (``getinfo``), or None from a node that does not report it."""
    try:
        info = await client.call("getinfo")
    except ControlError as exc:
        if exc.kind == "BadRequest":
            return None
        raise
    health: dict[str, Any] | None = info.get("health")
    return health


def node_view(info: Mapping[str, Any], chain_ok: bool = True) -> dict[str, Any]:
    """The node in JSON: ``now`` is null while the chain is unreachable or its head stale."""
    view = dict(info)
    view["now"] = iso_time(int(info["now"])) if chain_ok else None
    return view


def peer_target(args: argparse.Namespace, cfg: Config | None) -> tuple[bytes, str, int]:
    """The peer ``--peer`` names: a ``[peers]`` name from the config, or ``ADDRESS@HOST:PORT``;
    its address, host and port."""
    text: str = args.peer
    if cfg is not None and text in cfg.peers:
        p = cfg.peers[text]
        if p.host is None or p.port is None:
            raise UsageError(f"peer {text!r} has no host and port in the config: it dials us")
        return p.address, p.host, p.port
    addr_text, sep, endpoint = text.partition("@")
    if not sep:
        known = ", ".join(sorted(cfg.peers)) if cfg is not None and cfg.peers else "none"
        raise UsageError(
            f"peer {text!r} is not a [peers] name (known: {known}) nor ADDRESS@HOST:PORT"
        )
    try:
        host, port = parse_endpoint(endpoint)
        return checked_address(addr_text), host, port
    except (argparse.ArgumentTypeError, UnitError) as exc:
        raise UsageError(f"peer {text!r}: {exc}") from None


async def cmd_open(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    peer_address, host, port = peer_target(args, cfg)
    asset = args.asset or (cfg.asset if cfg else None)
    oracle = args.oracle or (cfg.oracle if cfg else None)
    if asset is None:
        raise UsageError("give --asset (or set [chain] asset in the config)")
    if oracle is None:
        raise UsageError("give --oracle (or set [chain] oracle in the config)")
    challenge = args.challenge_period or (cfg.challenge_period if cfg else 3600)
    decimals = int((await client.call("asset_info", asset=asset))["decimals"])
    deposit = args.deposit.units(decimals, raw=args.raw)
    peer_deposit = (
        deposit if args.peer_deposit is None else args.peer_deposit.units(decimals, raw=args.raw)
    )
    args.peer_label = args.peer
    row = await with_progress(
        f"opening a channel with {args.peer} ({to_checksum(peer_address)} at {host}:{port}; "
        "both deposit, then we wait for confirmations)",
        client.call(
            "open",
            peer_host=host,
            peer_port=port,
            peer_address=peer_address,
            asset=asset,
            deposit=deposit,
            peer_deposit=peer_deposit,
            oracle=oracle,
            challenge_period=challenge,
            asset_decimals=decimals,
        ),
    )
    view = channel_view(row, cfg, bool(args.raw))
    if args.json:
        print_json(view)
    else:
        out(
            f"channel {view['id']} with {view['peer']} {view['phase']} v{view['version']}: "
            f"ours {view['ours']}, theirs {view['theirs']}"
        )
    return 0


def _print_state(args: argparse.Namespace, cfg: Config | None, what: str, result: Any) -> None:
    view = state_view(result, args.channel_row, cfg, bool(args.raw))
    if args.json:
        print_json(view)
    else:
        out(state_line(what, view))


async def cmd_pay(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    amount = _amount(args, args.amount)
    result = await client.call("pay", channel=args.channel, amount=amount)
    _print_state(args, cfg, f"paid {_units(args).text(amount)} to {args.peer_label}", result)
    return 0


async def _cmd_option(
    client: ControlClient, args: argparse.Namespace, cfg: Config | None, write: bool
) -> int:
    expiry: Expiry = args.expiry
    premium, collateral = _amount(args, args.premium), _amount(args, args.collateral)
    result = await client.call(
        "write_option" if write else "buy_option",
        channel=args.channel,
        kind=args.kind,
        underlying=args.underlying,
        strike=args.strike,
        expiry=expiry.absolute,
        expiry_in=expiry.relative,
        quantity=args.quantity,
        premium=premium,
        collateral=collateral,
    )
    units = _units(args)
    position = position_view(result["position"], units)
    view = {
        "channel": args.channel,
        "peer": args.peer_label,
        "version": result["version"],
        **balances_view(result, units),
        "premium": units.amount(premium),
        "position": position,
    }
    if args.json:
        print_json(view)
        return 0
    p = position
    out(
        f"position {p['id']} {'written' if write else 'bought'}: {p['kind']} {p['underlying']} "
        f"strike {p['strike']} qty {p['quantity']} expiry {p['expiry']}, premium "
        f"{units.text(premium)}, collateral {p['collateral']} (version {view['version']}: "
        f"ours {view['ours']}, theirs {view['theirs']})"
    )
    return 0


async def cmd_write(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    return await _cmd_option(client, args, cfg, write=True)


async def cmd_buy(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    return await _cmd_option(client, args, cfg, write=False)


async def cmd_unwind(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    share = _amount(args, args.holder_share)
    result = await client.call(
        "unwind", channel=args.channel, position=args.position, holder_share=share
    )
    _print_state(args, cfg, f"position {args.position} unwound", result)
    return 0


async def cmd_top_up(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    amount = _amount(args, args.amount)
    text = _units(args).text(amount)
    result = await with_progress(
        f"depositing {text} (waiting for confirmations)",
        client.call("top_up", channel=args.channel, amount=amount),
    )
    _print_state(args, cfg, f"topped up {text}", result)
    return 0


async def cmd_checkpoint(
    client: ControlClient, args: argparse.Namespace, cfg: Config | None
) -> int:
    row = await with_progress(
        "recording our newest state on chain (checkpoint)",
        client.call("checkpoint", channel=args.channel),
    )
    view = channel_view(row, cfg, bool(args.raw))
    if args.json:
        print_json(view)
    else:
        out(
            f"channel {view['id']} recorded on chain at version {view['version']} "
            f"({view['phase']})"
        )
    return 0


async def cmd_close(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    if args.channel_row["phase"] == "closed":
        raise AlreadyClosed(
            f"channel {short_id(args.channel)} with {args.peer_label} is already closed "
            "(`status` shows its final balances)"
        )
    row = await with_progress(
        f"closing with {args.peer_label}: agreeing the final state and concluding it on chain",
        client.call("close", channel=args.channel),
    )
    view = channel_view(row, cfg, bool(args.raw))
    if args.json:
        print_json(view)
    else:
        out(
            f"channel {view['id']} closed at version {view['version']}: ours "
            f"{view['ours']}, theirs {view['theirs']} ({view['finality']})"
        )
    return 0


async def _dispute_countdown(client: ControlClient, channel: str, interval: float) -> None:
    """Show the on-chain dispute and the challenge period left, until cancelled."""
    tty = sys.stderr.isatty()
    last = ""
    printed_at = -1e9
    while True:
        try:
            view = await client.call("chain_view", channel=channel)
        except (ControlError, ChannelError):
            view = None
        if view is not None and view["status"] == "disputed":
            left = max(0, int(view["deadline"]) - int(view["now"]))
            text = (
                f"registered v{view['version']} on chain; challenge period ends "
                f"{iso_time(int(view['deadline']))} (in {text_duration(left)})"
                + (" (concluding)" if left == 0 else "")
            )
            if tty:
                print(f"\r{text:<100}", end="", file=sys.stderr, flush=True)
            elif (
                text.split(" (in ")[0] != last.split(" (in ")[0]
                or trio.current_time() - printed_at >= 15
                or (left == 0 and text != last)
            ):
                note(text)
                printed_at = trio.current_time()
            last = text
        await trio.sleep(interval)


async def cmd_dispute(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    """Register our latest state and return with the deadline; ``--follow`` waits for the end."""
    if args.channel_row["phase"] == "closed":
        raise AlreadyClosed(
            f"channel {short_id(args.channel)} is already closed: nothing to dispute"
        )
    row = await with_progress(
        f"forcing a close with {args.peer_label}: registering our latest state on chain",
        client.call(
            "dispute", channel=args.channel, wait=False, force=True if args.force else None
        ),
    )
    view = await client.call("chain_view", channel=args.channel)
    deadline = int(view["deadline"]) or None
    if not args.follow:
        result = {
            "channel": row["id"],
            "peer": args.peer_label,
            "registered_version": view["version"],
            "deadline": iso_time(deadline) if deadline else None,
            "challenge_period": iso_duration(int(row["challenge_period"])),
        }
        if args.json:
            print_json(result)
        else:
            out(
                f"channel {short_id(row['id'])} registered at version {view['version']}; the "
                f"challenge period ends {result['deadline']}, then the node concludes it by "
                f"itself (watch: channels -c {_cfg_arg(cfg)} dispute {args.peer_label} --follow)"
            )
        return 0
    path, _ = _socket_and_config(args)
    interrupted = False
    try:
        async with connect_control(path) as progress_client, trio.open_nursery() as nursery:
            nursery.start_soon(_dispute_countdown, progress_client, args.channel, args.poll)
            try:
                row = await client.call(
                "dispute", channel=args.channel, force=True if args.force else None
            )
            finally:
                nursery.cancel_scope.cancel()
    except* KeyboardInterrupt:
        interrupted = True
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if interrupted:
        note(
            "stopped watching; the node carries the dispute on by itself "
            f"(channels -c {_cfg_arg(cfg)} status shows the deadline)"
        )
        return 130
    final = channel_view(row, cfg, bool(args.raw))
    if args.json:
        print_json(final)
    else:
        out(
            f"channel {final['id']} concluded on chain at version {final['version']}: ours "
            f"{final['ours']}, theirs {final['theirs']} ({final['finality']})"
        )
    return 0


async def cmd_withdraw(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    if args.credits:
        if args.channel is not None:
            raise UsageError("withdraw --credits takes no channel")
        asset = args.asset or (cfg.asset if cfg else None)
        if asset is None:
            raise UsageError("give --asset (or set [chain] asset in the config)")
        decimals = int((await client.call("asset_info", asset=asset))["decimals"])
        result = await with_progress(
            "withdrawing credits", client.call("withdraw", asset=asset, recipient=args.to)
        )
        units = Units(decimals, bool(args.raw))
        view = {
            "asset": result["asset"],
            "withdrawn": units.amount(int(result["withdrawn"])),
            "recipient": result["recipient"],
            "tx": result.get("tx"),
        }
        if args.json:
            print_json(view)
        else:
            out(f"withdrew {view['withdrawn']} of {view['asset']} to {view['recipient']}")
        return 0
    if args.channel is None or args.amount is None:
        raise UsageError("withdraw needs CHANNEL AMOUNT (or --credits)")
    amount = _amount(args, args.amount)
    text = _units(args).text(amount)
    result = await with_progress(
        f"withdrawing {text} (co-signed with {args.peer_label}, then on chain)",
        client.call("withdraw", channel=args.channel, amount=amount, recipient=args.to),
    )
    _print_state(args, cfg, f"withdrew {text}", result)
    return 0
