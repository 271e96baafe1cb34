"""CLI commands of firm quotes, through the control socket: ``rfq`` (request a quote), ``offer``
(``--replaces QUOTE``: a new quote that retires a live one of ours as it is booked), ``quotes``
(list quotes and waiting requests), ``answer`` (quote or decline a waiting request), ``fill`` and
``withdraw-quote``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from channels.cli.config import (
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Config,
    Expiry,
    parse_amount,
    parse_duration,
    parse_expiry,
    parse_price,
    parse_quantity,
)
from channels.cli.format import fmt_fixed, out, print_json
from channels.cli.units import Amount, iso_time, parse_amount_text
from channels.cli.views import Units
from channels.control import ControlClient

AMOUNT = "in the asset's units, e.g. 40.5 (smallest units with --raw)"


def _units(args: argparse.Namespace) -> Units:
    """The channel's asset units (``--raw``: smallest units; no channel named: smallest units)."""
    row = getattr(args, "channel_row", None)
    if row is None:
        return Units(0, True)
    return Units(int(row["asset_decimals"]), bool(args.raw))


def _amount(args: argparse.Namespace, value: Amount | None) -> int | None:
    if value is None:
        return None
    units = _units(args)
    return value.units(units.decimals, raw=units.raw)


def _quote_line(q: dict[str, Any], units: Units) -> str:
    when = iso_time(int(q["expiry"]))
    until = iso_time(int(q["valid_until"]))
    status = f" {q['status']}" if "status" in q else ""
    size = fmt_fixed(int(q["max_quantity"]), QUANTITY_DECIMALS)
    left = f" left {fmt_fixed(int(q['remaining']), QUANTITY_DECIMALS)}" if "remaining" in q else ""
    return (
        f"quote {q['quote_id'][:18]}{status} by {q['quoter'][:10]}: quoter {q['quoter_side']}s "
        f"{q['kind']} {q['underlying']} strike {fmt_fixed(int(q['strike']), PRICE_DECIMALS)} "
        f"expiry {when} at {units.text(q['price'])}/unit, collateral "
        f"{units.text(q['collateral'])}/unit, max {size}"
        f"{left}, firm until {until}"
    )


def _terms(args: argparse.Namespace) -> dict[str, Any]:
    expiry: Expiry = args.expiry
    return {
        "channel": args.channel,
        "kind": args.kind,
        "underlying": args.underlying,
        "strike": args.strike,
        "expiry": expiry.absolute,
        "expiry_in": expiry.relative,
        "side": args.side,
    }


async def cmd_rfq(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "request_quote", quantity=args.quantity, timeout=args.timeout, **_terms(args)
    )
    if args.json:
        print_json(result)
    else:
        out(_quote_line(result, _units(args)))
    return 0


async def cmd_offer(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "offer",
        price=_amount(args, args.price),
        collateral=_amount(args, args.collateral),
        max_quantity=args.max_quantity,
        valid_for=args.valid_for,
        **({"replaces": args.replaces} if args.replaces else {}),
        **_terms(args),
    )
    if args.json:
        print_json(result)
    else:
        out(_quote_line(result, _units(args)))
    return 0


async def cmd_withdraw_quote(
    client: ControlClient, args: argparse.Namespace, cfg: Config | None
) -> int:
    result = await client.call("withdraw_quote", quote=args.quote)
    if args.json:
        print_json(result)
    else:
        out(f"quote {result['quote_id'][:18]} withdrawn: fills of it are refused from now on")
    return 0


async def cmd_quotes(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call("quotes", channel=args.channel)
    if args.json:
        print_json(result)
        return 0
    for q in result["quotes"]:
        out(_quote_line(q, _units(args)))
    for r in result["requests"]:
        out(
            f"request {r['request_id']} on {r['channel'][:10]}: the peer wants to {r['side']} "
            f"{fmt_fixed(int(r['quantity']), QUANTITY_DECIMALS)} {r['kind']} {r['underlying']} "
            f"strike {fmt_fixed(int(r['strike']), PRICE_DECIMALS)} (answer it)"
        )
    if not result["quotes"] and not result["requests"]:
        out("no quotes and no waiting requests")
    return 0


async def cmd_answer(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "answer",
        channel=args.channel,
        request_id=args.request_id,
        price=_amount(args, args.price),
        collateral=_amount(args, args.collateral),
        max_quantity=args.max_quantity,
        valid_for=args.valid_for,
        decline=args.decline,
    )
    if args.json:
        print_json(result)
    elif result.get("declined"):
        out(f"request {args.request_id} declined")
    else:
        out(_quote_line(result, _units(args)))
    return 0


async def cmd_fill(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "fill", channel=args.channel, quote=args.quote, quantity=args.quantity
    )
    if args.json:
        print_json(result)
        return 0
    p = result["position"]
    out(
        f"quote {result['quote']['quote_id'][:18]} filled: position {p['id']} "
        f"qty {fmt_fixed(int(p['quantity']), QUANTITY_DECIMALS)} (version {result['version']}, "
        f"left {fmt_fixed(int(result['quote']['remaining']), QUANTITY_DECIMALS)})"
    )
    return 0


def add_quote_commands(
    command: Callable[..., argparse.ArgumentParser], typed: Callable[[Any], Any]
) -> None:
    """Add the firm-quote commands to the ``channels`` parser."""

    def option_terms(p: argparse.ArgumentParser, side_help: str) -> None:
        p.add_argument("channel", help="channel id or a unique prefix")
        p.add_argument("--kind", choices=("call", "put"), required=True)
        p.add_argument("--underlying", required=True, help="e.g. ETH-USD")
        p.add_argument("--strike", type=typed(parse_price), required=True, help="e.g. 3000.5")
        p.add_argument(
            "--expiry", type=typed(parse_expiry), required=True, help="+7d, unix time or ISO"
        )
        p.add_argument("--side", choices=("buy", "sell"), required=True, help=side_help)

    p = command("rfq", "request a firm quote from the peer", None, cmd_rfq)
    option_terms(p, "our side: buy (the peer writes) or sell")
    p.add_argument("--quantity", type=typed(parse_quantity), required=True, help="e.g. 1.5")
    p.add_argument("--timeout", type=int, default=10, help="seconds to wait (default 10)")

    p = command("offer", "send the peer an unsolicited firm quote", None, cmd_offer)
    option_terms(p, "the PEER's side: buy (we write) or sell (we buy)")
    p.add_argument(
        "--price", type=typed(parse_amount_text), required=True, help=f"premium per unit, {AMOUNT}"
    )
    p.add_argument(
        "--collateral", type=typed(parse_amount_text), required=True, help=f"per unit, {AMOUNT}"
    )
    p.add_argument("--max-quantity", type=typed(parse_quantity), required=True)
    p.add_argument("--valid-for", type=typed(parse_duration), default=30, help="default 30s")
    p.add_argument(
        "--replaces",
        metavar="QUOTE",
        help="a live quote of ours (id or prefix) this one replaces: retired as this is booked",
    )

    p = command("quotes", "quotes in the book and the peer's waiting requests", None, cmd_quotes)
    p.add_argument("channel", nargs="?", help="one channel (default: all)")

    p = command("answer", "quote (or decline) a peer's waiting request", None, cmd_answer)
    p.add_argument("channel", help="channel id or a unique prefix")
    p.add_argument("request_id", type=typed(parse_amount), help="see `channels quotes`")
    p.add_argument("--price", type=typed(parse_amount_text), help=f"premium per unit, {AMOUNT}")
    p.add_argument(
        "--collateral", type=typed(parse_amount_text), help=f"collateral per unit, {AMOUNT}"
    )
    p.add_argument("--max-quantity", type=typed(parse_quantity), help="default: the asked size")
    p.add_argument("--valid-for", type=typed(parse_duration), default=30, help="default 30s")
    p.add_argument("--decline", metavar="REASON", help="decline instead, with this reason")

    p = command("fill", "fill the peer's quote (all that is left, or --quantity)", None, cmd_fill)
    p.add_argument("channel", help="channel id or a unique prefix")
    p.add_argument("quote", help="quote id or a unique prefix (see `channels quotes`)")
    p.add_argument("--quantity", type=typed(parse_quantity), help="default: all that is left")

    p = command(
        "withdraw-quote", "withdraw a live quote of ours: fills of it are refused", None,
        cmd_withdraw_quote,
    )  # fmt: skip
    p.add_argument("quote", help="quote id or a unique prefix (see `channels quotes`)")
