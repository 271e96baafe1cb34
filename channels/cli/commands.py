"""The one-shot commands: they drive a running node over its control socket."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from channels.cli.config import (
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Config,
    Expiry,
    UsageError,
    _require_config,
    load_config,
    parse_endpoint,
)
from channels.cli.format import (
    fmt_amount,
    fmt_duration,
    fmt_fixed,
    note,
    out,
    positions_table,
    print_json,
    status_table,
    with_progress,
)
from channels.control import ControlClient, ControlError, connect_control
from channels.core.errors import ChannelError
from channels.core.model import address, to_checksum

if TYPE_CHECKING:
    pass


# One-shot commands -----------------------------------------------------------------------------
def _socket_and_config(args: argparse.Namespace) -> tuple[Path, Config | None]:
    if getattr(args, "socket", None):
        cfg = load_config(args.config) if getattr(args, "config", None) else None
        return Path(args.socket), cfg
    cfg = _require_config(args)
    return cfg.control, cfg


OneShot = Callable[[ControlClient, argparse.Namespace, Config | None], Awaitable[int]]


async def run_one_shot(args: argparse.Namespace, command: OneShot) -> int:
    path, cfg = _socket_and_config(args)
    async with connect_control(path) as client:
        return await command(client, args, cfg)


async def cmd_status(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    info = await client.call("ping")
    rows = await client.call("status")
    if args.json:
        print_json({"node": info, "channels": rows})
        return 0
    gas = info.get("gas_reserve") or {}
    reserve = ""
    if gas.get("balance") is not None:  # the account that pays for the defence, vs its reserve
        reserve = (
            f"  gas {gas['balance'] / 10**18:.6f} ETH (reserve {gas['reserve'] / 10**18:.6f}"
            + (", LOW: add ETH)" if gas.get("low") else ")")
        )
    out(
        f"node {info['address']}  chain {info['chain_id']}  adjudicator {info['adjudicator']}  "
        f"chain time {dt.datetime.fromtimestamp(info['now'], dt.UTC):%Y-%m-%d %H:%M:%S}Z{reserve}"
    )
    if not rows:
        out("no channels")
        return 0
    out(status_table(rows, int(info["now"]), cfg))
    positions = positions_table(rows)
    if positions and not args.brief:
        out()
        out(positions)
    return 0


def _peer_target(args: argparse.Namespace, cfg: Config | None) -> tuple[bytes, str, int]:
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
        return bytes(address(addr_text)), host, port
    except (argparse.ArgumentTypeError, ChannelError) as exc:
        raise UsageError(f"peer {text!r}: {exc}") from None


async def cmd_open(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    peer_address, host, port = _peer_target(args, cfg)
    asset = args.asset or (cfg.asset if cfg else None)
    oracle = args.oracle or (cfg.oracle if cfg else None)
    if asset is None:
        raise UsageError("give --asset (or set [chain] asset in the config)")
    if oracle is None:
        raise UsageError("give --oracle (or set [chain] oracle in the config)")
    challenge = args.challenge_period or (cfg.challenge_period if cfg else 3600)
    peer_deposit = args.deposit if args.peer_deposit is None else args.peer_deposit
    row = await with_progress(
        f"opening a channel with {to_checksum(peer_address)} at {host}:{port} "
        "(both deposit; waiting for confirmations)",
        client.call(
            "open",
            peer_host=host,
            peer_port=port,
            peer_address=peer_address,
            asset=asset,
            deposit=args.deposit,
            peer_deposit=peer_deposit,
            oracle=oracle,
            challenge_period=challenge,
        ),
    )
    if args.json:
        print_json(row)
    else:
        out(
            f"channel {row['id']} {row['phase']} v{row['version']}: "
            f"ours {fmt_amount(row['our_balance'])}, theirs {fmt_amount(row['their_balance'])}"
        )
    return 0


def _print_state(args: argparse.Namespace, what: str, result: Mapping[str, Any]) -> None:
    if args.json:
        print_json(result)
        return
    balances = result.get("balances") or []
    out(
        f"{what}: version {result.get('version')}, balances "
        + " / ".join(fmt_amount(b) for b in balances)
        + (f", locked {fmt_amount(result['locked'])}" if result.get("locked") else "")
    )


async def cmd_pay(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call("pay", channel=args.channel, amount=args.amount)
    _print_state(args, f"paid {fmt_amount(args.amount)}", result)
    return 0


async def _cmd_option(client: ControlClient, args: argparse.Namespace, write: bool) -> int:
    expiry: Expiry = args.expiry
    result = await client.call(
        "write_option" if write else "buy_option",
        channel=args.channel,
        kind=args.kind,
        underlying=args.underlying,
        strike=args.strike,
        expiry=expiry.absolute,
        expiry_in=expiry.relative,
        quantity=args.quantity,
        premium=args.premium,
        collateral=args.collateral,
    )
    if args.json:
        print_json(result)
        return 0
    p = result["position"]
    when = dt.datetime.fromtimestamp(int(p["expiry"]), dt.UTC)
    out(
        f"position {p['id']} {'written' if write else 'bought'}: {p['kind']} {p['underlying']} "
        f"strike {fmt_fixed(int(p['strike']), PRICE_DECIMALS)} "
        f"qty {fmt_fixed(int(p['quantity']), QUANTITY_DECIMALS)} "
        f"expiry {when:%Y-%m-%d %H:%M}Z, premium {fmt_amount(args.premium)}, "
        f"collateral {fmt_amount(p['collateral'])} (version {result['version']})"
    )
    return 0


async def cmd_write(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    return await _cmd_option(client, args, write=True)


async def cmd_buy(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    return await _cmd_option(client, args, write=False)


async def cmd_unwind(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "unwind", channel=args.channel, position=args.position, holder_share=args.holder_share
    )
    _print_state(args, f"position {args.position} unwound", result)
    return 0


async def cmd_top_up(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await with_progress(
        f"depositing {fmt_amount(args.amount)} (waiting for confirmations)",
        client.call("top_up", channel=args.channel, amount=args.amount),
    )
    _print_state(args, f"topped up {fmt_amount(args.amount)}", result)
    return 0


async def cmd_checkpoint(
    client: ControlClient, args: argparse.Namespace, cfg: Config | None
) -> int:
    row = await with_progress(
        "recording our newest state on chain (checkpoint)",
        client.call("checkpoint", channel=args.channel),
    )
    if args.json:
        print_json(row)
    else:
        out(f"channel {row['id']} recorded on chain at version {row['version']} ({row['phase']})")
    return 0


async def cmd_close(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    row = await with_progress(
        "closing: agreeing the final state and concluding it on chain",
        client.call("close", channel=args.channel),
    )
    if args.json:
        print_json(row)
    else:
        out(
            f"channel {row['id']} closed at version {row['version']}: ours "
            f"{fmt_amount(row['our_balance'])}, theirs {fmt_amount(row['their_balance'])} "
            f"({row['finality']})"
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
                f"registered v{view['version']} on chain; challenge period ends in "
                f"{fmt_duration(left)}" + (" (concluding)" if left == 0 else "")
            )
            if tty:
                print(f"\r{text:<78}", end="", file=sys.stderr, flush=True)
            elif (
                text.split(" ends in ")[0] != last.split(" ends in ")[0]
                or trio.current_time() - printed_at >= 15
                or (left == 0 and text != last)
            ):
                note(text)
                printed_at = trio.current_time()
            last = text
        await trio.sleep(interval)


async def cmd_dispute(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    path, _ = _socket_and_config(args)
    note("forcing a close: registering our latest state on chain")
    async with connect_control(path) as progress_client, trio.open_nursery() as nursery:
        nursery.start_soon(_dispute_countdown, progress_client, args.channel, args.poll)
        try:
            row = await client.call(
                "dispute",
                channel=args.channel,
                wait=False if args.no_wait else None,
                force=True if args.force else None,
            )
        finally:
            nursery.cancel_scope.cancel()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        print_json(row)
    elif args.no_wait:
        out(
            f"channel {row['id']} registered at version {row['version']}; the node concludes "
            f"it after the challenge period ({fmt_duration(int(row['challenge_period']))})"
        )
    else:
        out(
            f"channel {row['id']} concluded on chain at version {row['version']}: ours "
            f"{fmt_amount(row['our_balance'])}, theirs {fmt_amount(row['their_balance'])} "
            f"({row['finality']})"
        )
    return 0


async def cmd_withdraw(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    if args.credits:
        if args.channel is not None:
            raise UsageError("withdraw --credits takes no channel")
        asset = args.asset or (cfg.asset if cfg else None)
        if asset is None:
            raise UsageError("give --asset (or set [chain] asset in the config)")
        result = await with_progress(
            "withdrawing credits", client.call("withdraw", asset=asset, recipient=args.to)
        )
        if args.json:
            print_json(result)
        else:
            out(f"withdrew {fmt_amount(result['withdrawn'])} of {result['asset']}")
        return 0
    if args.channel is None or args.amount is None:
        raise UsageError("withdraw needs CHANNEL AMOUNT (or --credits)")
    result = await with_progress(
        f"withdrawing {fmt_amount(args.amount)} (co-signed, then on chain)",
        client.call("withdraw", channel=args.channel, amount=args.amount, recipient=args.to),
    )
    _print_state(args, f"withdrew {fmt_amount(args.amount)}", result)
    return 0


async def cmd_export(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call("export", channel=args.channel)
    text = json.dumps(result, indent=2) + "\n"
    states = sum(len(c["states"]) for c in result["channels"].values())
    if args.output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        target = Path(args.output)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
        note(f"exported {len(result['channels'])} channel(s), {states} signed state(s) to {target}")
    return 0
