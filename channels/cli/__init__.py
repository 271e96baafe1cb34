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

Every failure ends as one line on stderr, ``error: ...`` saying what to do (a JSON object on
stdout under ``--json``), with an exit code per kind of failure (:mod:`channels.cli.errors`:
1 internal, 2 usage or config, 3 refused by a rule, 4 peer, 5 chain, 6 no node, 130
interrupted); never a traceback (set ``CHANNELS_DEBUG=1`` to get one).

Amounts are in the asset's units (``pay 1.5``; ``--raw`` for smallest units), times ISO 8601 and
durations ``1h30m`` / ``PT1H30M`` (:mod:`channels.cli.units`); output puts our side first.

The config file (TOML; relative paths are relative to the file)::

    [node]
    key_env = "DESK_A_KEY"          # or key_file = "desk-a.key" (hex private key, mode 0600)
    store = "desk-a.sqlite"
    listen_host = "127.0.0.1"       # optional; without listen_port the node only dials out
    listen_port = 9401
    control = "desk-a.sock"         # optional; default: <store>.sock
    log_level = "info"
    log_format = "text"             # or "json": one object per line, with channel and peer
    metrics = true                  # Prometheus /metrics and /healthz (default: on) ...
    metrics_host = "127.0.0.1"      # ... on loopback (default) ...
    metrics_port = 9464             # ... on this port (default 0: one the system picks; getinfo)
    max_fee_per_gas_gwei = 100      # gas reserve and dispute fee cap (channels/cli/node_guards.py)
    gas_reserve_alarm_margin_percent = 50
    max_links_per_peer = 2          # authenticated connections of one identity at once
    max_undeclared_links = 32       # of peers a bot's admit callback let in, together

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
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

import trio

from channels.cli.audit_cmds import cmd_export, run_verify
from channels.cli.chain_cmds import run_chain, run_deploy
from channels.cli.commands import (
    OneShot,
    cmd_buy,
    cmd_close,
    cmd_dispute,
    cmd_open,
    cmd_pay,
    cmd_status,
    cmd_top_up,
    cmd_unwind,
    cmd_withdraw,
    cmd_write,
    peer_target,
    run_one_shot,
)
from channels.cli.config import (
    CONFIG_ENV,
    DEBUG_ENV,
    DEFAULT_STATE_FILE,
    KEY_REFUSAL,
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Config,
    ConfigError,
    KeyOnCommandLine,
    PeerConfig,
    UsageError,
    load_config,
    load_signer,
    looks_like_key,
    read_key,
)
from channels.cli.desks import open_desk
from channels.cli.errors import AlreadyClosed, Context, Failure, classify
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
    logging_to_stderr,
    run_node,
    serve_desk,
    wait_for_stop_signal,
)
from channels.cli.parser import build_parser
from channels.cli.values import (
    Expiry,
    parse_amount,
    parse_duration,
    parse_endpoint,
    parse_expiry,
    parse_fixed,
    parse_price,
    parse_quantity,
)
from channels.control import one_line

__all__ = [
    "CONFIG_ENV",
    "DEBUG_ENV",
    "DEFAULT_STATE_FILE",
    "KEY_REFUSAL",
    "PRICE_DECIMALS",
    "QUANTITY_DECIMALS",
    "AlreadyClosed",
    "Config",
    "ConfigError",
    "Context",
    "Expiry",
    "Failure",
    "KeyOnCommandLine",
    "OneShot",
    "PeerConfig",
    "UsageError",
    "build_parser",
    "classify",
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
    "failure_of",
    "fmt_amount",
    "fmt_duration",
    "fmt_fixed",
    "load_config",
    "load_signer",
    "log_events",
    "logging_to_stderr",
    "looks_like_key",
    "main",
    "note",
    "open_desk",
    "out",
    "parse_amount",
    "parse_duration",
    "parse_endpoint",
    "parse_expiry",
    "parse_fixed",
    "parse_price",
    "parse_quantity",
    "peer_target",
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
    "run_verify",
    "serve_desk",
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


def _context(args: argparse.Namespace | None) -> Context:
    if args is None:
        return Context()
    config = getattr(args, "config", None)
    listen_port = None
    if config:
        try:
            listen_port = load_config(config).listen_port
        except (ConfigError, OSError):
            pass
    rpc_option = None
    for flag, dest in (("--rpc-url", "rpc_url"), ("--rpc", "rpc")):
        if getattr(args, dest, None):
            rpc_option = f"{flag} {getattr(args, dest)}"
    return Context(
        config=config,
        peer=getattr(args, "peer_label", None),
        listen_port=listen_port,
        rpc_option=rpc_option,
    )


def describe(exc: BaseException, args: argparse.Namespace | None = None) -> str:
    """One line for any error, never the traceback."""
    return failure_of(exc, args).message


def failure_of(exc: BaseException, args: argparse.Namespace | None = None) -> Failure:
    """The failure to show for ``exc`` (a group's errors joined; interrupts win)."""
    leaves = [e for e in _leaves(exc) if not isinstance(e, trio.Cancelled)] or [exc]
    if any(isinstance(e, KeyboardInterrupt) for e in leaves):
        return classify(KeyboardInterrupt(), Context())
    ctx = _context(args)
    failures: list[Failure] = []
    for e in leaves:
        if type(e).__name__ == "DevChainError":  # anvil missing or not starting
            failure = Failure("chain", "devchain", one_line(str(e)))
        else:
            failure = classify(e, ctx)
        if failure not in failures:
            failures.append(failure)
    if len(failures) == 1:
        return failures[0]
    first = failures[0]
    return Failure(first.category, first.code, "; ".join(f.message for f in failures))


def report(exc: BaseException, args: argparse.Namespace | None = None) -> int:
    """Print the one-line error for ``exc`` (JSON under ``--json``) and return the exit code."""
    failure = failure_of(exc, args)
    if args is not None and getattr(args, "json", False):
        _print_safely(json.dumps(failure.json()))
    elif failure.category == "interrupt":
        note("interrupted")
    else:
        note("error: " + failure.message)
    return failure.exit_code


def _print_safely(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """After the reader of our stdout went away (``| head``): no more writes, no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def run(args: argparse.Namespace) -> int:
    one_shot: OneShot | None = args.one_shot
    if one_shot is not None:
        return trio.run(run_one_shot, args, one_shot)
    runner: Callable[[argparse.Namespace], Awaitable[int]] = args.run
    return trio.run(runner, args)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``channels`` console script. Returns the exit code."""
    parser = build_parser()
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    wants_json = "--json" in raw_argv
    try:
        args = parser.parse_args(raw_argv)
    except SystemExit as exc:  # --help / --version (0), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except UsageError as exc:
        return report(exc, argparse.Namespace(json=wants_json))
    if args.command is None:
        if not wants_json:
            parser.print_usage(sys.stderr)
        return report(UsageError("a command is required (channels --help lists them)"), args)
    try:
        return run(args)
    except BrokenPipeError:
        _silence_stdout()
        return 141  # as a shell reports a writer killed by SIGPIPE
    except (Exception, KeyboardInterrupt) as exc:
        if any(isinstance(e, BrokenPipeError) for e in _leaves(exc)):
            _silence_stdout()
            return 141
        if os.environ.get(DEBUG_ENV):
            raise
        return report(exc, args)
