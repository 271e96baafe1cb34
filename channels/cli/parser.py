"""The ``channels`` argument parser."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from channels.cli.audit_cmds import cmd_export, run_verify
from channels.cli.chain_cmds import run_chain, run_deploy
from channels.cli.commands import (
    OneShot,
    cmd_buy,
    cmd_checkpoint,
    cmd_close,
    cmd_dispute,
    cmd_open,
    cmd_pay,
    cmd_status,
    cmd_top_up,
    cmd_unwind,
    cmd_withdraw,
    cmd_write,
)
from channels.cli.config import (
    CONFIG_ENV,
    DEFAULT_STATE_FILE,
    KEY_REFUSAL,
    LOG_FORMATS,
    LOG_LEVELS,
    KeyOnCommandLine,
    UsageError,
    looks_like_key,
)
from channels.cli.help_texts import AMOUNT, CHANNEL, EXPIRY, PRICE, QUANTITY, duration
from channels.cli.init_cmd import run_init
from channels.cli.key_cmds import run_address, run_keygen
from channels.cli.node_cmd import run_node
from channels.cli.operator_cmds import cmd_ack, cmd_alarms, cmd_getinfo, cmd_peers, cmd_settle
from channels.cli.quote_cmds import add_quote_commands
from channels.cli.tower_cmd import run_tower
from channels.cli.units import (
    Amount,
    UnitError,
    checked_address,
    parse_amount_text,
    parse_duration_text,
)
from channels.cli.values import (
    parse_expiry,
    parse_price,
    parse_quantity,
)
from channels.control.operator import package_version

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
        try:
            return fn(text)
        except UnitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = "value"
    convert.__wrapped__ = fn  # type: ignore[attr-defined]  # what it parses (the help test)
    return convert


def _address_arg(text: str) -> bytes:
    try:
        return checked_address(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None




def _alarm_id(text: str) -> int:
    if not text.isdigit():
        raise UnitError(f"not an alarm id (a whole number, see channels alarms): {text!r}")
    return int(text)


def _position_id(text: str) -> int:
    if not text.isdigit():
        raise UnitError(f"not a position id (a whole number, see status): {text!r}")
    return int(text)


ActionT = TypeVar("ActionT", bound=argparse.Action)


class ChannelsParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing and exiting, so a usage
    error is one line (JSON under --json) like every other error; and that lists what it was
    given (``arguments``, ``commands``), for checks over the whole command line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Every argument, in the order added (those of mutually exclusive groups too).
        self.arguments: list[argparse.Action] = []
        #: Each command's parser by name, once ``add_subparsers`` was called.
        self.commands: dict[str, argparse.ArgumentParser] = {}
        super().__init__(*args, **kwargs)

    def _add_action(self, action: ActionT) -> ActionT:
        # The one place argparse adds every argument, also one added to a group.
        self.arguments.append(action)
        return super()._add_action(action)

    def add_subparsers(self, **kwargs: Any) -> Any:
        subparsers = super().add_subparsers(**kwargs)
        self.commands = subparsers.choices  # filled in as the commands are added
        return subparsers

    def error(self, message: str) -> NoReturn:
        raise UsageError(
            f"{message} (channels {self.prog.partition(' ')[2] or ''} --help)".replace(
                "channels  --help", "channels --help"
            )
        )


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
        help="print results (and errors) as JSON",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="amounts in the asset's smallest units (integers), in and out",
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


def _deployer_options(parser: argparse.ArgumentParser) -> None:
    """The account that pays for a deployment: the same key sources as a desk's (SIGNERS.md)."""
    _key_options(parser)
    parser.add_argument(
        "--keystore", metavar="FILE", help="an encrypted keystore (its password: see below)"
    )
    parser.add_argument("--remote", metavar="URL", help="a JSON-RPC signer holding one account")
    _password_options(parser)


def build_parser() -> ChannelsParser:
    parser = ChannelsParser(
        prog="channels",
        description="Two-party state channels for cash-settled options: run a desk node and "
        "drive it.",
        epilog="Amounts are in the asset's units (1.5 is 1.5 USDC; --raw for smallest units); "
        "times are ISO 8601 (UTC) and durations 90m, 1h, 7d or PT1H. Keys come from a file or "
        "an environment variable, never the command line. Exit codes: 1 internal, 2 usage or "
        "config, 3 refused by a rule, 4 peer, 5 chain, 6 node not running, 130 interrupted.",
        allow_abbrev=False,
    )
    _add_common(parser, top=True)
    parser.add_argument("--version", action="version", version=f"channels {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, run: Any, one_shot: OneShot | None = None) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        assert isinstance(p, ChannelsParser)
        _add_common(p, top=False)
        p.set_defaults(run=run, one_shot=one_shot)
        return p

    p = command("chain", "start a local anvil, deploy the adjudicator and a test token", run_chain)
    p.add_argument("--port", type=int, help="anvil's TCP port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="anvil's host (default 127.0.0.1)")
    p.add_argument(
        "--block-time",
        type=float,
        default=1.0,
        help="seconds between blocks, e.g. 0.5 (default 1; 0 mines one block per transaction, "
        "and then chain time stands still between transactions)",
    )
    p.add_argument(
        "--state-file",
        metavar="FILE",
        help=f"write the URL and addresses as JSON here (default ./{DEFAULT_STATE_FILE})",
    )
    p.add_argument(
        "--mint",
        type=_typed(parse_amount_text),
        default=Amount("1000000"),
        help="test tokens minted to each account, in the token's units (6 decimals; smallest "
        "units with --raw; default 1000000)",
    )
    p.add_argument(
        "--desks",
        metavar="DIR",
        default="desks",
        help="write ready-to-use configs and dev keys for desk-a, desk-b and bot here "
        "(default ./desks)",
    )
    p.add_argument(
        "--rpc-url", help="deploy to this chain instead of starting anvil (needs a key option)"
    )
    _deployer_options(p)

    p = command("deploy", "deploy the adjudicator to a chain and print its address", run_deploy)
    p.add_argument("--rpc-url", help="JSON-RPC URL (default: [chain] rpc_url of --config)")
    _deployer_options(p)

    command("tower", "run a watchtower from its TOML config until SIGINT/SIGTERM", run_tower)

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
    p.add_argument("--log-level", choices=LOG_LEVELS, help="overrides [node] log_level")
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text, or json (one object per line with channel and peer fields); overrides "
        "[node] log_format",
    )

    p = command("status", "channels, balances, positions, finality and deadlines", None, cmd_status)
    p.add_argument("--brief", action="store_true", help="leave out the positions table")

    p = command("open", "open and fund a channel with a peer", None, cmd_open)
    p.add_argument("peer", help="a [peers] name from the config, or ADDRESS@HOST:PORT")
    p.add_argument(
        "--deposit", type=_typed(parse_amount_text), required=True, help=f"our deposit, {AMOUNT}"
    )
    p.add_argument(
        "--peer-deposit", type=_typed(parse_amount_text), help=f"theirs (default: ours), {AMOUNT}"
    )
    p.add_argument("--asset", type=_typed(_address_arg), help="ERC-20 (default: [chain] asset)")
    p.add_argument("--oracle", type=_typed(_address_arg), help="price oracle ([chain] oracle)")
    p.add_argument(
        "--challenge-period",
        type=_typed(parse_duration_text),
        help=duration("how long a dispute stays open", "[chain] challenge_period"),
    )

    p = command("pay", "pay the peer", None, cmd_pay)
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("amount", type=_typed(parse_amount_text), help=f"the payment, {AMOUNT}")

    for name, verb, handler in (("write", "sell", cmd_write), ("buy", "buy", cmd_buy)):
        p = command(name, f"{verb} a European cash-settled option", None, handler)
        p.add_argument("channel", help=CHANNEL)
        p.add_argument("--kind", choices=("call", "put"), required=True)
        p.add_argument("--underlying", required=True, help="e.g. ETH-USD")
        p.add_argument(
            "--strike", type=_typed(parse_price), required=True, help=f"the strike, {PRICE}"
        )
        p.add_argument("--expiry", type=_typed(parse_expiry), required=True, help=EXPIRY)
        p.add_argument(
            "--quantity", type=_typed(parse_quantity), required=True, help=f"the size, {QUANTITY}"
        )
        p.add_argument(
            "--premium",
            type=_typed(parse_amount_text),
            required=True,
            help=f"paid by the holder to the writer, {AMOUNT}",
        )
        p.add_argument(
            "--collateral",
            type=_typed(parse_amount_text),
            required=True,
            help=f"locked by the writer (caps the payoff), {AMOUNT}",
        )

    p = command("unwind", "close a position early at an agreed split", None, cmd_unwind)
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("position", type=_typed(_position_id), help="position id (see status)")
    p.add_argument(
        "holder_share",
        type=_typed(parse_amount_text),
        help=f"the collateral's part that goes to the holder, {AMOUNT}",
    )

    p = command("top-up", "deposit more into an open channel", None, cmd_top_up)
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("amount", type=_typed(parse_amount_text), help=f"the deposit, {AMOUNT}")

    p = command("close", "close cooperatively (one transaction)", None, cmd_close)
    p.add_argument("channel", help=CHANNEL)

    p = command(
        "checkpoint",
        "record our newest state on chain: clears a dispute over an older one",
        None,
        cmd_checkpoint,
    )
    p.add_argument("channel", help=CHANNEL)

    p = command(
        "dispute",
        "force a close: register our latest state on chain and return with the deadline",
        None,
        cmd_dispute,
    )
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    # Older scripts ask for what is now the default: return once registered.
    p.add_argument("--no-wait", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--follow",
        action="store_true",
        help="stay and show the challenge period until the node concludes (Ctrl-C leaves; the "
        "node carries on)",
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
    p.add_argument("channel", nargs="?", help=CHANNEL)
    p.add_argument(
        "amount", nargs="?", type=_typed(parse_amount_text), help=f"to withdraw, {AMOUNT}"
    )
    p.add_argument("--to", type=_typed(_address_arg), help="recipient (default: the node)")
    p.add_argument(
        "--credits", action="store_true", help="pull what failed payouts credited to the node"
    )
    p.add_argument("--asset", type=_typed(_address_arg), help="with --credits ([chain] asset)")

    p = command(
        "getinfo", "the node: version, identity, channels, and its health", None, cmd_getinfo
    )

    p = command("peers", "configured peers and peers with channels: online or not", None, cmd_peers)

    p = command(
        "alarms", "open alarms with their ids (--all: acknowledged ones too)", None, cmd_alarms
    )
    p.add_argument("--all", action="store_true", help="acknowledged alarms too")

    p = command(
        "ack",
        "acknowledge an alarm once handled: it no longer makes the desk unhealthy (kept across "
        "restarts; the same condition raised again stays acknowledged)",
        None,
        cmd_ack,
    )
    p.add_argument("alarm_id", type=_typed(_alarm_id), help="the alarm's id (see alarms, status)")

    p = command(
        "settle",
        "settle an expired position at the oracle's signed price (off chain, both sign)",
        None,
        cmd_settle,
    )
    p.add_argument("channel", help=CHANNEL)
    p.add_argument("position", type=_typed(_position_id), help="position id (see status)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--attestation",
        metavar="FILE",
        help='the oracle\'s attestation as JSON: {"price": "3100.5", "signature": "0x..."} '
        "(price in the quote currency)",
    )
    source.add_argument(
        "--dev-oracle",
        action="store_true",
        help="sign with the local dev chain's oracle (anvil dev account 9; only on chain 31337)",
    )
    p.add_argument(
        "--price",
        type=_typed(parse_price),
        help=f"with --dev-oracle: the settlement price, {PRICE}",
    )

    p = command(
        "init",
        "create a desk config and a fresh key in an encrypted keystore (mode 0600) next to it",
        run_init,
    )
    p.add_argument("path", help="the config to create, e.g. desks/my-desk.toml")
    p.add_argument("--like", metavar="FILE", help="take the [chain] settings from this config")
    p.add_argument("--rpc-url", help="the chain's JSON-RPC URL")
    p.add_argument("--adjudicator", type=_typed(_address_arg), help="the adjudicator contract")
    p.add_argument("--asset", type=_typed(_address_arg), help="the channel asset (ERC-20)")
    p.add_argument("--oracle", type=_typed(_address_arg), help="the price oracle's address")
    p.add_argument(
        "--listen-port", type=int, help="the TCP port peers dial (default: a free one, now)"
    )
    p.add_argument("--scrypt-n", type=int, default=None, help=argparse.SUPPRESS)  # tests only
    _password_options(p)  # the config reads the password the same way (default: a prompt)

    add_quote_commands(command, _typed)  # firm quotes: rfq, offer, quotes, answer, fill

    p = command("export", "the audit trail, streamed as JSON Lines", None, cmd_export)
    p.add_argument("channel", nargs="?", help="one channel (default: all)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")

    p = command(
        "verify", "check an export: ids, state hashes, signatures, links, quotes", run_verify
    )
    p.add_argument("export", help="the file `channels export` wrote")
    p.add_argument(
        "--rpc",
        metavar="URL",
        help="also check each cited transaction on chain (mined, its outcome, its event)",
    )
    return parser


def walk_arguments(
    parser: ChannelsParser, command: str = ""
) -> Iterator[tuple[str, argparse.Action]]:
    """Every argument of ``parser`` and of its commands, as (command, action), the top level's
    with command "": for checks over the whole command line (tests/cli/test_help_units.py)."""
    for action in parser.arguments:
        yield command, action
    for name, sub in parser.commands.items():
        assert isinstance(sub, ChannelsParser)
        yield from walk_arguments(sub, f"{command} {name}".strip())
