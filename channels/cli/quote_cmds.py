"""CLI commands of firm quotes, through the control socket: ``rfq`` (request a quote), ``offer``
(``--replaces QUOTE``: a new quote that retires a live one of ours as it is booked), ``quotes``
(list quotes and waiting requests), ``answer`` (quote or decline a waiting request), ``fill`` and
``withdraw-quote``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from channels.cli.config import (
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Config,
)
from channels.cli.format import out, print_json
from channels.cli.help_texts import AMOUNT, CHANNEL, EXPIRY, PRICE, QUANTITY, duration
from channels.cli.units import Amount, UnitError, iso_time, parse_amount_text
from channels.cli.values import (
    Expiry,
    parse_duration,
    parse_expiry,
    parse_price,
    parse_quantity,
)
from channels.cli.views import Units, balances_view, position_view
from channels.control import ControlClient
from channels.core.errors import LocalError
from channels.core.units import fmt_units

#: Quote prices and collateral are per unit of the underlying.
PER_UNIT = "per unit of the underlying"


class QuoteOutsideLimit(LocalError):
    """``rfq --fill-limit``: the peer's quote is worse than our limit; nothing was traded (the
    quote stays in the book, to fill by id while it is firm)."""


def _units(args: argparse.Namespace) -> Units:
    """The named channel's asset units (``--raw``: smallest units)."""
    row = args.channel_row
    return Units(int(row["asset_decimals"]), bool(args.raw))


def _amount(args: argparse.Namespace, value: Amount | None) -> int | None:
    if value is None:
        return None
    units = _units(args)
    return value.units(units.decimals, raw=units.raw)


def quote_view(q: Mapping[str, Any], units: Units) -> dict[str, Any]:
    """A firm quote as every command shows it: human units (``--raw``: smallest units for
    amounts), ISO times; the same fields in text and JSON."""
    view: dict[str, Any] = {
        "quote_id": q["quote_id"],
        "channel": q["channel"],
        "quoter": q["quoter"],
        "request_id": q["request_id"] or None,
        "underlying": q["underlying"],
        "kind": q["kind"],
        "strike": fmt_units(int(q["strike"]), PRICE_DECIMALS),
        "expiry": iso_time(int(q["expiry"])),
        "quoter_side": q["quoter_side"],
        "price": units.amount(int(q["price"])),
        "collateral": units.amount(int(q["collateral"])),
        "max_quantity": fmt_units(int(q["max_quantity"]), QUANTITY_DECIMALS),
        "valid_until": iso_time(int(q["valid_until"])),
        "replaces": q.get("replaces"),
        "signature": q["signature"],
    }
    if "status" in q:  # in our book
        view.update(
            ours=bool(q["ours"]),
            status=q["status"],
            remaining=fmt_units(int(q["remaining"]), QUANTITY_DECIMALS),
        )
    return view


def request_view(r: Mapping[str, Any]) -> dict[str, Any]:
    """A peer's request waiting for our answer (no amounts in it)."""
    return {
        "channel": r["channel"],
        "request_id": r["request_id"],
        "underlying": r["underlying"],
        "kind": r["kind"],
        "strike": fmt_units(int(r["strike"]), PRICE_DECIMALS),
        "expiry": iso_time(int(r["expiry"])),
        "quantity": fmt_units(int(r["quantity"]), QUANTITY_DECIMALS),
        "side": r["side"],
    }


def _quote_line(v: Mapping[str, Any]) -> str:
    status = f" {v['status']}" if "status" in v else ""
    left = f" left {v['remaining']}" if "remaining" in v else ""
    return (
        f"quote {v['quote_id'][:18]}{status} by {v['quoter'][:10]}: quoter {v['quoter_side']}s "
        f"{v['kind']} {v['underlying']} strike {v['strike']} expiry {v['expiry']} at "
        f"{v['price']}/unit, collateral {v['collateral']}/unit, max {v['max_quantity']}"
        f"{left}, firm until {v['valid_until']}"
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


def _fill_view(result: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    units = _units(args)
    return {
        "channel": args.channel,
        "peer": args.peer_label,
        "position": position_view(result["position"], units),
        "quote": quote_view(result["quote"], units),
        "version": result["version"],
        **balances_view(result, units),
    }


def _fill_line(v: Mapping[str, Any]) -> str:
    p = v["position"]
    return (
        f"quote {v['quote']['quote_id'][:18]} filled: position {p['id']} ({p['side']}) qty "
        f"{p['quantity']} (version {v['version']}, ours {v['ours']}, theirs {v['theirs']}, "
        f"left {v['quote']['remaining']})"
    )


def _within(limit: int, price: int, side: str) -> bool:
    """Our side ``buy`` pays the premium (at most the limit), ``sell`` receives it (at least)."""
    return price <= limit if side == "buy" else price >= limit


async def cmd_rfq(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "request_quote", quantity=args.quantity, timeout=args.timeout, **_terms(args)
    )
    units = _units(args)
    view = quote_view(result, units)
    limit = _amount(args, args.fill_limit)
    if limit is None:
        if args.json:
            print_json(view)
        else:
            out(_quote_line(view))
        return 0
    if not _within(limit, int(result["price"]), args.side):
        worse = "above" if args.side == "buy" else "below"
        raise QuoteOutsideLimit(
            f"{args.peer_label} quoted {view['price']}/unit, {worse} --fill-limit "
            f"{units.text(limit)}; nothing traded (fill it by id while firm: channels fill "
            f"{args.peer_label} {view['quote_id'][:10]})"
        )
    filled = await client.call(
        "fill", channel=args.channel, quote=result["quote_id"], quantity=args.quantity
    )
    fill = _fill_view(filled, args)
    if args.json:
        print_json(fill)
    else:
        out(_quote_line(view))
        out(_fill_line(fill))
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
    view = quote_view(result, _units(args))
    if args.json:
        print_json(view)
    else:
        out(_quote_line(view))
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
    decimals = {r["id"]: int(r["asset_decimals"]) for r in await client.call("status")}
    raw = bool(args.raw)
    quotes = [
        quote_view(q, Units(decimals.get(q["channel"], 0), raw or q["channel"] not in decimals))
        for q in result["quotes"]
    ]
    requests = [request_view(r) for r in result["requests"]]
    if args.json:
        print_json({"now": iso_time(int(result["now"])), "quotes": quotes, "requests": requests})
        return 0
    for v in quotes:
        out(_quote_line(v))
    for r in requests:
        out(
            f"request {r['request_id']} on {r['channel'][:10]}: the peer wants to {r['side']} "
            f"{r['quantity']} {r['kind']} {r['underlying']} strike {r['strike']} expiry "
            f"{r['expiry']} (channels answer {r['channel'][:10]} {r['request_id']} --price P "
            "--collateral C)"
        )
    if not quotes and not requests:
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
    if result.get("declined"):
        view: dict[str, Any] = {"declined": True, "request_id": args.request_id}
        text = f"request {args.request_id} declined"
    else:
        view = quote_view(result, _units(args))
        text = _quote_line(view)
    if args.json:
        print_json(view)
    else:
        out(text)
    return 0


async def cmd_fill(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    result = await client.call(
        "fill", channel=args.channel, quote=args.quote, quantity=args.quantity
    )
    view = _fill_view(result, args)
    if args.json:
        print_json(view)
    else:
        out(_fill_line(view))
    return 0


def _request_id(text: str) -> int:
    if not text.isdigit():
        raise UnitError(f"not a request id (a whole number, see channels quotes): {text!r}")
    return int(text)


def add_quote_commands(
    command: Callable[..., argparse.ArgumentParser], typed: Callable[[Any], Any]
) -> None:
    """Add the firm-quote commands to the ``channels`` parser."""

    def option_terms(p: argparse.ArgumentParser, side_help: str) -> None:
        p.add_argument("channel", help=CHANNEL)
        p.add_argument("--kind", choices=("call", "put"), required=True)
        p.add_argument("--underlying", required=True, help="e.g. ETH-USD")
        p.add_argument(
            "--strike", type=typed(parse_price), required=True, help=f"the strike, {PRICE}"
        )
        p.add_argument("--expiry", type=typed(parse_expiry), required=True, help=EXPIRY)
        p.add_argument("--side", choices=("buy", "sell"), required=True, help=side_help)

    p = command("rfq", "request a firm quote from the peer", None, cmd_rfq)
    option_terms(p, "our side: buy (the peer writes) or sell")
    p.add_argument(
        "--quantity", type=typed(parse_quantity), required=True, help=f"the size, {QUANTITY}"
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=10,
        help="how long to wait for the quote, in whole seconds (default 10)",
    )
    p.add_argument(
        "--fill-limit",
        type=typed(parse_amount_text),
        help=f"fill the quote at once if its premium {PER_UNIT} is at most this when buying (at "
        f"least when selling), {AMOUNT}; otherwise nothing is traded",
    )

    p = command("offer", "send the peer an unsolicited firm quote", None, cmd_offer)
    option_terms(p, "the PEER's side: buy (we write) or sell (we buy)")
    p.add_argument(
        "--price",
        type=typed(parse_amount_text),
        required=True,
        help=f"the premium {PER_UNIT}, {AMOUNT}",
    )
    p.add_argument(
        "--collateral",
        type=typed(parse_amount_text),
        required=True,
        help=f"the collateral {PER_UNIT}, {AMOUNT}",
    )
    p.add_argument(
        "--max-quantity",
        type=typed(parse_quantity),
        required=True,
        help=f"the most the peer may fill, {QUANTITY}",
    )
    p.add_argument(
        "--valid-for",
        type=typed(parse_duration),
        default=30,
        help=duration("how long the quote stays firm, in chain time", "30 seconds"),
    )
    p.add_argument(
        "--replaces",
        metavar="QUOTE",
        help="a live quote of ours (id or prefix) this one replaces: retired as this is booked",
    )

    p = command("quotes", "quotes in the book and the peer's waiting requests", None, cmd_quotes)
    p.add_argument("channel", nargs="?", help="one channel (default: all)")

    p = command("answer", "quote (or decline) a peer's waiting request", None, cmd_answer)
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("request_id", type=typed(_request_id), help="see `channels quotes`")
    p.add_argument(
        "--price", type=typed(parse_amount_text), help=f"the premium {PER_UNIT}, {AMOUNT}"
    )
    p.add_argument(
        "--collateral", type=typed(parse_amount_text), help=f"the collateral {PER_UNIT}, {AMOUNT}"
    )
    p.add_argument(
        "--max-quantity",
        type=typed(parse_quantity),
        help=f"the most the peer may fill, {QUANTITY}; default: the size it asked for",
    )
    p.add_argument(
        "--valid-for",
        type=typed(parse_duration),
        default=30,
        help=duration("how long the quote stays firm, in chain time", "30 seconds"),
    )
    p.add_argument("--decline", metavar="REASON", help="decline instead, with this reason")

    p = command("fill", "fill the peer's quote (all that is left, or --quantity)", None, cmd_fill)
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("quote", help="quote id or a unique prefix (see `channels quotes`)")
    p.add_argument(
        "--quantity",
        type=typed(parse_quantity),
        help=f"how much to fill, {QUANTITY}; default: all that is left",
    )

    p = command(
        "withdraw-quote", "withdraw a live quote of ours: fills of it are refused", None,
        cmd_withdraw_quote,
    )  # fmt: skip
    p.add_argument("quote", help="quote id or a unique prefix (see `channels quotes`)")
