"""The ``channels`` command: a local chain, deployment, a desk node, and one-shot commands.

::

    channels chain [--port 8545] [--state-file chain.json]   # anvil + adjudicator + test token
    channels deploy --rpc-url URL --key-env DEPLOYER_KEY      # the adjudicator, on any chain
    channels node --config desk-a.toml                        # run a desk until SIGINT/SIGTERM
    channels --config desk-a.toml status                      # and the other one-shot commands

One-shot commands (status, open, pay, write, buy, unwind, top-up, close, dispute, withdraw,
export) talk to the running node over its control socket (:mod:`channels.control`); they never
touch the store or the key themselves, so there is exactly one process that signs.

Keys come from a file (``key_file``) or an environment variable (``key_env``), never from the
command line or the config itself: a key in argv leaks into shell history and ``ps``.

Every failure ends as one line on stderr, ``error: ...``, with exit code 1 (2 for a usage error,
130 when interrupted); never a traceback (set ``CHANNELS_DEBUG=1`` to get one).

The config file (TOML; relative paths are relative to the file)::

    [node]
    key_env = "DESK_A_KEY"          # or key_file = "desk-a.key" (hex private key, mode 0600)
    store = "desk-a.sqlite"
    listen_host = "127.0.0.1"       # optional; without listen_port the node only dials out
    listen_port = 9401
    control = "desk-a.sock"         # optional; default: <store>.sock
    log_level = "info"

    [chain]
    rpc_url = "http://127.0.0.1:8545"
    adjudicator = "0x..."
    confirmations = 1
    asset = "0x..."                 # optional defaults for `channels open`
    oracle = "0x..."

    [peers.desk-b]
    address = "0x..."
    host = "127.0.0.1"
    port = 9402
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

import trio

from channels.cli.chain_cmds import run_chain, run_deploy
from channels.cli.commands import (
    OneShot,
    cmd_buy,
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
    run_one_shot,
)
from channels.cli.commands import _peer_target as _peer_target
from channels.cli.config import (
    CONFIG_ENV,
    DEBUG_ENV,
    DEFAULT_STATE_FILE,
    KEY_REFUSAL,
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Config,
    ConfigError,
    Expiry,
    KeyOnCommandLine,
    PeerConfig,
    UsageError,
    load_config,
    load_signer,
    looks_like_key,
    parse_amount,
    parse_duration,
    parse_endpoint,
    parse_expiry,
    parse_fixed,
    parse_price,
    parse_quantity,
    read_key,
)
from channels.cli.format import (
    fmt_amount,
    fmt_duration,
    fmt_fixed,
    note,
    out,
    positions_table,
    print_json,
    render_table,
    short_hex,
    status_table,
    with_progress,
)
from channels.cli.node_cmd import (
    event_line,
    log_events,
    run_node,
    serve_desk,
    setup_logging,
    wait_for_stop_signal,
)
from channels.cli.parser import build_parser
from channels.control import ControlError, error_text, one_line
from channels.core.errors import ChainError, ChannelError

__all__ = [
    "CONFIG_ENV",
    "DEBUG_ENV",
    "DEFAULT_STATE_FILE",
    "KEY_REFUSAL",
    "PRICE_DECIMALS",
    "QUANTITY_DECIMALS",
    "Config",
    "ConfigError",
    "Expiry",
    "KeyOnCommandLine",
    "OneShot",
    "PeerConfig",
    "UsageError",
    "build_parser",
    "cmd_buy",
    "cmd_close",
    "cmd_dispute",
    "cmd_export",
    "cmd_open",
    "cmd_pay",
    "cmd_status",
    "cmd_top_up",
    "cmd_unwind",
    "cmd_withdraw",
    "cmd_write",
    "describe",
    "event_line",
    "fmt_amount",
    "fmt_duration",
    "fmt_fixed",
    "load_config",
    "load_signer",
    "log_events",
    "looks_like_key",
    "main",
    "note",
    "out",
    "parse_amount",
    "parse_duration",
    "parse_endpoint",
    "parse_expiry",
    "parse_fixed",
    "parse_price",
    "parse_quantity",
    "positions_table",
    "print_json",
    "read_key",
    "render_table",
    "report",
    "run",
    "run_chain",
    "run_deploy",
    "run_node",
    "run_one_shot",
    "serve_desk",
    "setup_logging",
    "short_hex",
    "status_table",
    "wait_for_stop_signal",
    "with_progress",
]


# main ------------------------------------------------------------------------------------------
def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _dev_chain_error() -> type[Exception]:
    """``DevChainError`` if ``adjudicator.devchain`` is loaded (it imports eth-account, which takes
    most of a second: ``channels --help`` should not wait for it)."""
    module = sys.modules.get("adjudicator.devchain")
    error: type[Exception] = getattr(module, "DevChainError", ConfigError)
    return error


def describe(exc: BaseException) -> str:
    """One line for any error, never the traceback."""
    if isinstance(exc, ConfigError | UsageError | ControlError | _dev_chain_error()):
        return one_line(str(exc))
    if isinstance(exc, ChainError):
        return f"chain: {error_text(exc)}"
    if isinstance(exc, ChannelError | OSError | trio.TooSlowError):
        return error_text(exc)
    return f"internal error: {error_text(exc)}"


def report(exc: BaseException) -> int:
    """Print ``error: ...`` for ``exc`` (a group's errors joined) and return the exit code."""
    leaves = [e for e in _leaves(exc) if not isinstance(e, trio.Cancelled)] or [exc]
    if all(isinstance(e, KeyboardInterrupt) for e in leaves):
        note("interrupted")
        return 130
    errors = [e for e in leaves if not isinstance(e, KeyboardInterrupt)]
    messages: list[str] = []
    for e in errors:
        text = describe(e)
        if text not in messages:
            messages.append(text)
    note("error: " + "; ".join(messages))
    return 2 if all(isinstance(e, UsageError) for e in errors) else 1


def run(args: argparse.Namespace) -> int:
    one_shot: OneShot | None = args.one_shot
    if one_shot is not None:
        return trio.run(run_one_shot, args, one_shot)
    runner: Callable[[argparse.Namespace], Awaitable[int]] = args.run
    return trio.run(runner, args)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``channels`` console script. Returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except UsageError as exc:
        return report(exc)
    if args.command is None:
        parser.print_usage(sys.stderr)
        note("error: a command is required (channels --help lists them)")
        return 2
    try:
        return run(args)
    except (Exception, KeyboardInterrupt) as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        return report(exc)
