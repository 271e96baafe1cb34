"""The ``channels`` argument parser."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from channels.cli.chain_cmds import run_chain, run_deploy
from channels.cli.commands import (
    OneShot,
    cmd_buy,
    cmd_checkpoint,
    cmd_close,
    cmd_dispute,
    cmd_export,
    cmd_open,
    cmd_pay,
    cmd_status,
    cmd_top_up,
    cmd_unwind,
    cmd_withdraw,
    cmd_write,
)
from channels.cli.config import (
    _LOG_LEVELS,
    CONFIG_ENV,
    DEFAULT_STATE_FILE,
    KEY_REFUSAL,
    KeyOnCommandLine,
    looks_like_key,
    parse_amount,
    parse_duration,
    parse_expiry,
    parse_price,
    parse_quantity,
)
from channels.cli.key_cmds import run_address, run_keygen
from channels.cli.node_cmd import run_node
from channels.cli.quote_cmds import add_quote_commands
from channels.core.errors import ChannelError
from channels.core.model import address

if TYPE_CHECKING:
    pass

T = TypeVar("T")


# The parser ------------------------------------------------------------------------------------
class _RefuseKey(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        raise KeyOnCommandLine(KEY_REFUSAL)


class _KeyEnv(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, str) and looks_like_key(values):
            raise KeyOnCommandLine(KEY_REFUSAL)
        setattr(namespace, self.dest, values)


def _typed(fn: Callable[[str], T]) -> Callable[[str], T]:
    """argparse type: keep the function name out of its error messages."""

    def convert(text: str) -> T:
        return fn(text)

    convert.__name__ = "value"
    return convert


def _address_arg(text: str) -> bytes:
    try:
        return bytes(address(text))
    except ChannelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        default=os.environ.get(CONFIG_ENV) if top else argparse.SUPPRESS,
        help=f"the desk's TOML config (default: ${CONFIG_ENV})",
    )
    parser.add_argument(
        "--socket", metavar="PATH", default=default, help="the node's control socket (overrides)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print results as JSON",
    )
    for flag in ("--key", "--private-key", "--secret-key"):
        parser.add_argument(flag, action=_RefuseKey, help=argparse.SUPPRESS)


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-env", metavar="VAR", action=_KeyEnv, help="env var with the hex key")
    parser.add_argument("--key-file", metavar="FILE", help="file with the hex key (mode 0600)")


def _password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--password-env", metavar="VAR", action=_KeyEnv, help="env var with the password"
    )
    group.add_argument("--password-file", metavar="FILE", help="file with the password (0600)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="channels",
        description="Two-party state channels for cash-settled options: run a desk node and "
        "drive it.",
        epilog="Amounts are whole numbers in the asset's smallest unit (1_000_000 is fine). "
        "Keys come from a file or an environment variable, never the command line.",
        allow_abbrev=False,
    )
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, run: Any, one_shot: OneShot | None = None) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        _add_common(p, top=False)
        p.set_defaults(run=run, one_shot=one_shot)
        return p

    p = command("chain", "start a local anvil, deploy the adjudicator and a test token", run_chain)
    p.add_argument("--port", type=int, help="anvil's port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="anvil's host (default 127.0.0.1)")
    p.add_argument(
        "--block-time",
        type=float,
        default=1.0,
        help="seconds between blocks (default 1; 0 mines one block per transaction, and then "
        "chain time stands still between transactions)",
    )
    p.add_argument(
        "--state-file",
        metavar="FILE",
        help=f"write the URL and addresses as JSON here (default ./{DEFAULT_STATE_FILE})",
    )
    p.add_argument(
        "--mint",
        type=_typed(parse_amount),
        default=1_000_000 * 10**6,
        help="test tokens minted to each account (smallest units; default 1e12)",
    )
    p.add_argument(
        "--rpc-url", help="deploy to this chain instead of starting anvil (needs a key option)"
    )
    _key_options(p)

    p = command("deploy", "deploy the adjudicator to a chain and print its address", run_deploy)
    p.add_argument("--rpc-url", help="JSON-RPC URL (default: [chain] rpc_url of --config)")
    _key_options(p)

    p = command("keygen", "create a new key in an encrypted keystore file", run_keygen)
    p.add_argument("--output", "-o", metavar="FILE", required=True, help="the keystore to write")
    # Tests only: a cheap scrypt work factor (the default is eth-account's, 2**18).
    p.add_argument("--scrypt-n", type=int, default=None, help=argparse.SUPPRESS)
    _password_options(p)

    p = command(
        "address", "print the address of a key (or the config's channel and gas keys)", run_address
    )
    p.add_argument("--keystore", metavar="FILE", help="an encrypted keystore (no password needed)")
    p.add_argument("--remote", metavar="URL", help="a JSON-RPC signer holding one account")
    _key_options(p)

    p = command("node", "run a desk node from its config until SIGINT/SIGTERM", run_node)
    p.add_argument("--log-level", choices=_LOG_LEVELS, help="overrides [node] log_level")

    p = command("status", "channels, balances, positions, finality and deadlines", None, cmd_status)
    p.add_argument("--brief", action="store_true", help="leave out the positions table")

    p = command("open", "open and fund a channel with a peer", None, cmd_open)
    p.add_argument("peer", help="a [peers] name from the config, or ADDRESS@HOST:PORT")
    p.add_argument("--deposit", type=_typed(parse_amount), required=True, help="our deposit")
    p.add_argument("--peer-deposit", type=_typed(parse_amount), help="theirs (default: ours)")
    p.add_argument("--asset", type=_typed(_address_arg), help="ERC-20 (default: [chain] asset)")
    p.add_argument("--oracle", type=_typed(_address_arg), help="price oracle ([chain] oracle)")
    p.add_argument(
        "--challenge-period", type=_typed(parse_duration), help="e.g. 3600 or 1h ([chain])"
    )

    p = command("pay", "pay the peer", None, cmd_pay)
    p.add_argument("channel", help="channel id or a unique prefix")
    p.add_argument("amount", type=_typed(parse_amount))

    for name, verb, handler in (("write", "sell", cmd_write), ("buy", "buy", cmd_buy)):
        p = command(name, f"{verb} a European cash-settled option", None, handler)
        p.add_argument("channel", help="channel id or a unique prefix")
        p.add_argument("--kind", choices=("call", "put"), required=True)
        p.add_argument("--underlying", required=True, help="e.g. ETH-USD")
        p.add_argument(
            "--strike", type=_typed(parse_price), required=True, help="price, e.g. 3000.5"
        )
        p.add_argument(
            "--expiry",
            type=_typed(parse_expiry),
            required=True,
            help="+7d (from chain time), a unix time, or 2025-06-27T08:00Z",
        )
        p.add_argument(
            "--quantity", type=_typed(parse_quantity), required=True, help="e.g. 1.5 (units)"
        )
        p.add_argument("--premium", type=_typed(parse_amount), required=True)
        p.add_argument("--collateral", type=_typed(parse_amount), required=True)

    p = command("unwind", "close a position early at an agreed split", None, cmd_unwind)
    p.add_argument("channel")
    p.add_argument("position", type=_typed(parse_amount), help="position id (see status)")
    p.add_argument("holder_share", type=_typed(parse_amount), help="collateral to the holder")

    p = command("top-up", "deposit more into an open channel", None, cmd_top_up)
    p.add_argument("channel")
    p.add_argument("amount", type=_typed(parse_amount))

    p = command("close", "close cooperatively (one transaction)", None, cmd_close)
    p.add_argument("channel")

    p = command(
        "checkpoint",
        "record our newest state on chain: clears a dispute over an older one",
        None,
        cmd_checkpoint,
    )
    p.add_argument("channel")

    p = command("dispute", "force a close: register, wait the challenge period", None, cmd_dispute)
    p.add_argument("channel")
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--no-wait", action="store_true", help="return once registered (the node concludes later)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="register even though the node has not established that its latest state is the "
        "newest (it may be an old copy: the peer then takes the newer state's payout and more)",
    )

    p = command(
        "withdraw", "partial withdrawal from an open channel, or pull credits", None, cmd_withdraw
    )
    p.add_argument("channel", nargs="?")
    p.add_argument("amount", nargs="?", type=_typed(parse_amount))
    p.add_argument("--to", type=_typed(_address_arg), help="recipient (default: the node)")
    p.add_argument(
        "--credits", action="store_true", help="pull what failed payouts credited to the node"
    )
    p.add_argument("--asset", type=_typed(_address_arg), help="with --credits ([chain] asset)")

    add_quote_commands(command, _typed)  # firm quotes: rfq, offer, quotes, answer, fill

    p = command("export", "the audit trail of signed states, as JSON", None, cmd_export)
    p.add_argument("channel", nargs="?", help="one channel (default: all)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    return parser
