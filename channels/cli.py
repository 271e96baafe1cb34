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
import datetime as dt
import json
import logging
import os
import re
import signal
import stat
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import trio

from adjudicator.rpc import ChainError
from channels.control import (
    ControlClient,
    ControlError,
    connect_control,
    error_text,
    one_line,
)
from channels.core.errors import ChannelError
from channels.core.model import address, to_checksum
from channels.core.signing import LocalSigner

if TYPE_CHECKING:
    from adjudicator.devchain import AnvilConfig, DevChain
    from channels.events import Event
    from channels.node import Node, NodeSettings

log = logging.getLogger("channels.desk")
T = TypeVar("T")

PRICE_DECIMALS = 8
QUANTITY_DECIMALS = 18
DEFAULT_STATE_FILE = "channels-chain.json"
DEBUG_ENV = "CHANNELS_DEBUG"
CONFIG_ENV = "CHANNELS_CONFIG"


# Errors ----------------------------------------------------------------------------------------
class ConfigError(Exception):
    """The config file (or a key source it names) is missing, unreadable or wrong."""


class UsageError(Exception):
    """The command line is wrong (exit code 2)."""


class KeyOnCommandLine(UsageError):
    """A private key was given as a command-line argument: refused."""


KEY_REFUSAL = (
    "refusing a private key on the command line (it would leak into shell history and the "
    "process list); put it in a file (key_file / --key-file) or an environment variable "
    "(key_env / --key-env)"
)
_HEX_KEY = re.compile(r"(0[xX])?[0-9a-fA-F]{64}")


def looks_like_key(text: str) -> bool:
    return _HEX_KEY.fullmatch(text.strip()) is not None


# Config ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PeerConfig:
    name: str
    address: bytes
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    store: Path
    control: Path
    key_file: Path | None = None
    key_env: str | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int | None = None
    log_level: str = "info"
    update_timeout: float | None = None
    open_timeout: float | None = None
    rpc_url: str | None = None
    adjudicator: bytes | None = None
    confirmations: int = 1
    poll_interval: float = 1.0
    asset: bytes | None = None
    oracle: bytes | None = None
    challenge_period: int = 3600
    peers: dict[str, PeerConfig] = field(default_factory=dict)

    def require_chain(self) -> tuple[str, bytes]:
        if self.rpc_url is None:
            raise ConfigError(
                f"{self.path}: [chain] rpc_url is not set, and this command needs a chain "
                "(start a local one with `channels chain`)"
            )
        if self.adjudicator is None:
            raise ConfigError(
                f"{self.path}: [chain] adjudicator is not set (deploy one with `channels deploy` "
                "or `channels chain`)"
            )
        return self.rpc_url, self.adjudicator

    def peer_name(self, addr: str) -> str | None:
        for peer in self.peers.values():
            if to_checksum(peer.address).lower() == addr.lower():
                return peer.name
        return None

    def node_settings(self) -> NodeSettings:
        from channels.node import NodeSettings

        extra: dict[str, Any] = {}
        if self.update_timeout is not None:
            extra["update_timeout"] = self.update_timeout
        if self.open_timeout is not None:
            extra["open_timeout"] = self.open_timeout
        return NodeSettings(
            confirmations=self.confirmations, chain_poll_interval=self.poll_interval, **extra
        )


_NODE_KEYS = {
    "key_file",
    "key_env",
    "store",
    "listen_host",
    "listen_port",
    "control",
    "log_level",
    "update_timeout",
    "open_timeout",
}
_CHAIN_KEYS = {
    "rpc_url",
    "adjudicator",
    "confirmations",
    "poll_interval",
    "asset",
    "oracle",
    "challenge_period",
}
_PEER_KEYS = {"address", "host", "port"}
_LOG_LEVELS = ("debug", "info", "warning", "error")


class _Section:
    """Typed reads of one TOML table, naming the file and key in every error."""

    def __init__(self, path: Path, name: str, table: object, known: set[str]) -> None:
        self.path = path
        self.name = name
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        self.table: dict[str, Any] = table
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{path}: [{name}] has unknown key(s): {', '.join(unknown)}")

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.path}: [{self.name}] {key}: {message}")

    def get_str(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, "must be a non-empty string")
        return value

    def get_int(self, key: str, low: int, high: int) -> int | None:
        value = self.table.get(key)
        if value is None:
            return None
        if type(value) is not int or not low <= value <= high:
            self.fail(key, f"must be an integer from {low} to {high}")
        return value

    def get_float(self, key: str) -> float | None:
        value = self.table.get(key)
        if value is None:
            return None
        if type(value) not in (int, float) or value <= 0:
            self.fail(key, "must be a positive number")
        return float(value)

    def get_path(self, key: str) -> Path | None:
        text = self.get_str(key)
        if text is None:
            return None
        return (self.path.parent / Path(text).expanduser()).resolve()

    def get_address(self, key: str) -> bytes | None:
        text = self.get_str(key)
        if text is None:
            return None
        try:
            return bytes(address(text))
        except ChannelError as exc:
            self.fail(key, str(exc))


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a desk config. The key itself is read later (:func:`load_signer`)."""
    cfg_path = Path(path).expanduser()
    try:
        with cfg_path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {cfg_path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {cfg_path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML: {exc}") from None
    cfg_path = cfg_path.resolve()
    unknown = sorted(set(doc) - {"node", "chain", "peers"})
    if unknown:
        raise ConfigError(f"{cfg_path}: unknown section(s): {', '.join(unknown)}")
    node_table = doc.get("node", {})
    if isinstance(node_table, dict):
        for refused in ("key", "private_key", "secret", "secret_key"):
            if refused in node_table:
                raise ConfigError(
                    f"{cfg_path}: [node] {refused}: a private key must not be written in the "
                    "config; use key_file (a file of mode 0600) or key_env"
                )
    node = _Section(cfg_path, "node", node_table, _NODE_KEYS)
    chain = _Section(cfg_path, "chain", doc.get("chain", {}), _CHAIN_KEYS)
    store = node.get_path("store")
    if store is None:
        raise ConfigError(f"{cfg_path}: [node] store is required (the SQLite file of the desk)")
    control = node.get_path("control") or store.with_name(store.name + ".sock")
    key_file = node.get_path("key_file")
    key_env = node.get_str("key_env")
    if key_file is not None and key_env is not None:
        raise ConfigError(f"{cfg_path}: [node] give key_file or key_env, not both")
    if key_env is not None and looks_like_key(key_env):
        node.fail("key_env", "takes the NAME of an environment variable, not a key")
    log_level = (node.get_str("log_level") or "info").lower()
    if log_level not in _LOG_LEVELS:
        node.fail("log_level", f"must be one of {', '.join(_LOG_LEVELS)}")
    peers: dict[str, PeerConfig] = {}
    peers_table = doc.get("peers", {})
    if not isinstance(peers_table, dict):
        raise ConfigError(f"{cfg_path}: [peers] must be a table of [peers.<name>] tables")
    for name, table in peers_table.items():
        peer = _Section(cfg_path, f"peers.{name}", table, _PEER_KEYS)
        addr, host, port = (
            peer.get_address("address"),
            peer.get_str("host"),
            peer.get_int("port", 1, 65535),
        )
        if addr is None or host is None or port is None:
            peer.fail("address/host/port", "a peer needs all three")
        peers[name] = PeerConfig(name, addr, host, port)
    rpc_url = chain.get_str("rpc_url")
    if rpc_url is not None and not rpc_url.startswith(("http://", "https://")):
        chain.fail("rpc_url", "must be an http:// or https:// URL")
    return Config(
        path=cfg_path,
        store=store,
        control=control,
        key_file=key_file,
        key_env=key_env,
        listen_host=node.get_str("listen_host") or "127.0.0.1",
        listen_port=node.get_int("listen_port", 0, 65535),
        log_level=log_level,
        update_timeout=node.get_float("update_timeout"),
        open_timeout=node.get_float("open_timeout"),
        rpc_url=rpc_url,
        adjudicator=chain.get_address("adjudicator"),
        confirmations=chain.get_int("confirmations", 1, 1000) or 1,
        poll_interval=chain.get_float("poll_interval") or 1.0,
        asset=chain.get_address("asset"),
        oracle=chain.get_address("oracle"),
        challenge_period=chain.get_int("challenge_period", 1, 2**64 - 1) or 3600,
        peers=peers,
    )


def read_key(
    key_file: Path | None, key_env: str | None, env: Mapping[str, str] | None = None
) -> LocalSigner:
    """The signer from a key file or an environment variable (hex, optional 0x)."""
    env = os.environ if env is None else env
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
            text = key_file.read_text().strip()
        except FileNotFoundError:
            raise ConfigError(f"key file {key_file} not found") from None
        except OSError as exc:
            raise ConfigError(f"cannot read key file {key_file}: {exc.strerror}") from None
        if stat.S_IMODE(mode) & 0o077:
            log.warning("key file %s is readable by other users; chmod 600 it", key_file)
        source = f"key file {key_file}"
    elif key_env is not None:
        value = env.get(key_env)
        if not value:
            raise ConfigError(f"environment variable {key_env} (the private key) is not set")
        text = value.strip()
        source = f"environment variable {key_env}"
    else:
        raise ConfigError("no key: set [node] key_file or key_env")
    try:
        return LocalSigner.from_hex(text)
    except ChannelError as exc:  # the message never contains the key
        raise ConfigError(f"{source}: not a valid private key ({exc})") from None


def load_signer(cfg: Config, env: Mapping[str, str] | None = None) -> LocalSigner:
    if cfg.key_file is None and cfg.key_env is None:
        raise ConfigError(f"{cfg.path}: [node] needs key_file or key_env")
    return read_key(cfg.key_file, cfg.key_env, env)


# Parsing values --------------------------------------------------------------------------------
def parse_amount(text: str) -> int:
    """A non-negative integer in the asset's smallest unit; underscores may group digits."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def parse_fixed(text: str, decimals: int) -> int:
    """A decimal number scaled by 10**decimals, exactly (``3000.5`` -> 300050000000 for 8)."""
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number: {text!r}")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r} has more than {decimals} decimals")
    return int(scaled)


def parse_price(text: str) -> int:
    return parse_fixed(text, PRICE_DECIMALS)


def parse_quantity(text: str) -> int:
    return parse_fixed(text, QUANTITY_DECIMALS)


_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90m``, ``7d``, ``1d12h``."""
    pos, total = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 3600, 90m, 7d, 1d12h): {text!r}")
    return total


@dataclass(frozen=True, slots=True)
class Expiry:
    absolute: int | None = None
    relative: int | None = None


def parse_expiry(text: str) -> Expiry:
    """``+7d`` (from the node's chain time), a unix time, or an ISO time (UTC unless given)."""
    if text.startswith("+"):
        return Expiry(relative=parse_duration(text[1:]))
    if text.isdigit():
        return Expiry(absolute=int(text))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an expiry (+7d, a unix time, or 2025-06-27T08:00Z): {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return Expiry(absolute=int(when.timestamp()))


def parse_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)


# Output ----------------------------------------------------------------------------------------
def out(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fmt_amount(value: object) -> str:
    return f"{value:_}" if isinstance(value, int) else "-"


def fmt_fixed(value: int, decimals: int) -> str:
    text = str(Decimal(value).scaleb(-decimals).normalize())
    return f"{Decimal(text):f}"


def fmt_duration(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


def short_hex(text: str, digits: int = 10) -> str:
    return text[: 2 + digits]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    right = {i for i, h in enumerate(headers) if h in ("VER", "OURS", "THEIRS", "POS")}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def status_table(rows: Sequence[Mapping[str, Any]], now: int, cfg: Config | None) -> str:
    headers = ("CHANNEL", "PEER", "PHASE", "VER", "OURS", "THEIRS", "POS", "FINALITY", "DEADLINE")
    lines = []
    for row in rows:
        peer = str(row.get("peer", ""))
        name = cfg.peer_name(peer) if cfg is not None else None
        deadline = "-"
        if isinstance(row.get("dispute_deadline"), int):
            deadline = f"dispute ends in {fmt_duration(row['dispute_deadline'] - now)}"
        elif isinstance(row.get("next_expiry"), int):
            deadline = f"expiry in {fmt_duration(row['next_expiry'] - now)}"
        lines.append(
            (
                short_hex(str(row.get("id", ""))),
                name or f"{peer[:6]}…{peer[-4:]}",
                str(row.get("phase", "")),
                str(row.get("version", "")),
                fmt_amount(row.get("our_balance")),
                fmt_amount(row.get("their_balance")),
                str(len(row.get("positions") or ())),
                str(row.get("finality", "")),
                deadline,
            )
        )
    return render_table(headers, lines)


def positions_table(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = (
        "CHANNEL",
        "POSITION",
        "SIDE",
        "KIND",
        "UNDERLYING",
        "STRIKE",
        "QTY",
        "COLLAT",
        "EXPIRY",
    )
    lines = []
    for row in rows:
        for p in row.get("positions") or ():
            expiry = dt.datetime.fromtimestamp(int(p["expiry"]), dt.UTC)
            lines.append(
                (
                    short_hex(str(row["id"])),
                    str(p["id"]),
                    str(p["side"]),
                    str(p["kind"]),
                    str(p["underlying"]),
                    fmt_fixed(int(p["strike"]), PRICE_DECIMALS),
                    fmt_fixed(int(p["quantity"]), QUANTITY_DECIMALS),
                    fmt_amount(p["collateral"]),
                    expiry.strftime("%Y-%m-%d %H:%M"),
                )
            )
    return render_table(headers, lines) if lines else ""


def print_json(value: object) -> None:
    out(json.dumps(value, indent=2))


async def with_progress(label: str, work: Awaitable[T], *, interval: float = 1.0) -> T:
    """Await ``work`` while showing that something is happening: dots on a terminal."""
    tty = sys.stderr.isatty()
    if tty:
        print(f"{label}…", end="", file=sys.stderr, flush=True)
    else:
        note(f"{label}…")
    result: list[T] = []

    async def run(cancel: trio.CancelScope) -> None:
        result.append(await work)
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, nursery.cancel_scope)
        if tty:
            while True:
                await trio.sleep(interval)
                print(".", end="", file=sys.stderr, flush=True)
    if tty:
        print(" done", file=sys.stderr, flush=True)
    return result[0]


# Logging of a running node ---------------------------------------------------------------------
def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    if level != "debug":  # one line per JSON-RPC request drowns the desk's own log
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def event_line(node: Node, event: Event) -> tuple[int, str]:
    """(log level, message) for a node event; channel events start ``[ch=0x.. v=N]``."""
    from channels.events import (
        Alarm,
        ChainEventSeen,
        FinalityChanged,
        PeerConnected,
        PeerLost,
        PhaseChangedEvent,
        StateUpdated,
        UpdateRefusedEvent,
    )

    prefix = ""
    our_index = 0
    if event.channel_id is not None:
        version: object = "?"
        try:
            channel = node.channel(event.channel_id)
            version, our_index = channel.version, channel.our_index
        except ChannelError:
            pass
        if isinstance(event, StateUpdated):
            version = event.state.version
        elif isinstance(event, FinalityChanged):
            version = event.version
        prefix = f"[ch=0x{event.channel_id.hex()[:8]} v={version}] "
    if isinstance(event, StateUpdated):
        s = event.state
        return logging.INFO, (
            f"{prefix}state by={'us' if event.ours else 'peer'} "
            f"ours={s.balances[our_index]} theirs={s.balances[1 - our_index]} "
            f"locked={s.locked} positions={s.position_count}" + (" final" if s.is_final else "")
        )
    if isinstance(event, PhaseChangedEvent):
        return logging.INFO, f"{prefix}phase={event.phase.value}"
    if isinstance(event, UpdateRefusedEvent):
        return logging.WARNING, f"{prefix}refused rule={event.rule} reason={one_line(event.reason)}"
    if isinstance(event, FinalityChanged):
        return logging.INFO, f"{prefix}finality={event.finality.value.replace(' ', '-')}"
    if isinstance(event, ChainEventSeen):
        return logging.INFO, f"{prefix}chain event={event.name} block={event.block_number}"
    if isinstance(event, Alarm):
        return logging.WARNING, f"{prefix}ALARM kind={event.kind} detail={one_line(event.detail)}"
    if isinstance(event, PeerConnected):
        return logging.INFO, f"peer={to_checksum(event.peer)} connected"
    if isinstance(event, PeerLost):
        return logging.INFO, f"peer={to_checksum(event.peer)} lost"
    return logging.INFO, f"{prefix}event={type(event).__name__}"


async def log_events(
    node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    from channels.events import ChainEventSeen

    seen: dict[tuple[object, ...], None] = {}
    async with node.events() as stream:
        task_status.started()
        async for event in stream:
            if isinstance(event, ChainEventSeen):
                # The watcher rescans its reorg window, so it may report a log more than once.
                key = (event.channel_id, event.name, event.block_number, repr(event.args))
                if key in seen:
                    continue
                seen[key] = None
                if len(seen) > 4096:
                    del seen[next(iter(seen))]
            level, message = event_line(node, event)
            log.log(level, "%s", message)


# Commands: chain, deploy, node -----------------------------------------------------------------
async def wait_for_stop_signal() -> int:
    """Until SIGINT or SIGTERM; returns the signal number."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            return int(signum)
    return 0  # pragma: no cover - the receiver never ends by itself


@asynccontextmanager
async def _anvil_on_port(port: int, host: str, cfg: AnvilConfig) -> AsyncIterator[DevChain]:
    """anvil on a fixed port (``open_anvil`` picks a free one)."""
    import subprocess
    import tempfile

    import httpx

    from adjudicator.devchain import DevChain, DevChainError, dev_private_keys, find_anvil

    url = f"http://{host}:{port}"
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    with tempfile.TemporaryFile() as output:
        proc = await trio.lowlevel.open_process(
            [str(find_anvil()), *cfg.args(port, host)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            chain_id = None
            async with httpx.AsyncClient(timeout=1.0) as client:
                with trio.move_on_after(15):
                    while proc.poll() is None and chain_id is None:
                        try:
                            body = (await client.post(url, json=request)).json()
                            chain_id = int(body["result"], 16)
                        except (httpx.HTTPError, ValueError, KeyError, TypeError):
                            await trio.sleep(0.05)
            if chain_id is None:
                output.seek(0)
                tail = one_line(output.read()[-300:].decode(errors="replace"))
                raise DevChainError(f"anvil did not start on {url}: {tail or 'no answer'}")
            yield DevChain(url, port, chain_id, dev_private_keys(cfg.accounts), proc.pid)
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.terminate()
                    with trio.move_on_after(5):
                        await proc.wait()
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()


def _write_json_file(path: Path, value: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _deployment_info(url: str, dep: Any, accounts: Sequence[str], mint: int) -> dict[str, Any]:
    return {
        "rpc_url": url,
        "chain_id": dep.chain_id,
        "adjudicator": to_checksum(dep.adjudicator),
        "token": to_checksum(dep.token) if dep.token is not None else None,
        "token_decimals": dep.token_decimals,
        "minted_per_account": mint,
        "accounts": list(accounts),
    }


def _print_deployment(info: Mapping[str, Any], dev_keys: bool) -> None:
    out(f"rpc url      {info['rpc_url']}")
    out(f"chain id     {info['chain_id']}")
    out(f"adjudicator  {info['adjudicator']}")
    out(f"test token   {info['token']} ({info['token_decimals']} decimals)")
    out(f"minted       {fmt_amount(info['minted_per_account'])} units to each account below")
    if dev_keys:
        out("dev accounts (their keys are anvil's well-known dev keys, from the public mnemonic")
        out("'test test ... junk': never send real funds to them):")
    else:
        out("funded accounts:")
    for i, account in enumerate(info["accounts"]):
        out(f"  {i:>2}  {account}" + ("  (deployer)" if i == 0 and dev_keys else ""))


async def run_chain(args: argparse.Namespace) -> int:
    from adjudicator.deploy import deploy_dev_setup
    from adjudicator.devchain import AnvilConfig, open_anvil
    from adjudicator.rpc import open_rpc

    mint: int = args.mint
    if args.rpc_url is not None:
        signer = _key_from_args(args)
        async with open_rpc(args.rpc_url) as rpc:
            dep = await with_progress(
                "deploying the adjudicator and a test token",
                deploy_dev_setup(rpc, signer.secret, fund=[signer.address], amount=mint),
            )
        info = _deployment_info(args.rpc_url, dep, [to_checksum(signer.address)], mint)
        _print_deployment(info, dev_keys=False)
        if args.state_file is not None:
            _write_json_file(Path(args.state_file), info)
        return 0
    state_file = Path(args.state_file or DEFAULT_STATE_FILE)
    # Interval mining by default: chain time then moves on its own as on a real chain, so
    # challenge periods and expiries pass without anyone sending transactions.
    anvil_cfg = AnvilConfig(block_time=args.block_time or None)
    chain_cm = (
        open_anvil(anvil_cfg, host=args.host)
        if args.port is None
        else _anvil_on_port(args.port, args.host, anvil_cfg)
    )
    async with chain_cm as chain:
        accounts = [bytes(address(a)) for a in chain.accounts]
        async with open_rpc(chain.url) as rpc:
            dep = await deploy_dev_setup(rpc, chain.private_keys[0], fund=accounts, amount=mint)
        info = _deployment_info(chain.url, dep, [to_checksum(a) for a in accounts], mint)
        info["anvil_pid"] = chain.pid
        _print_deployment(info, dev_keys=True)
        _write_json_file(state_file, info)
        out(f"state file   {state_file}")
        out("the chain runs until Ctrl-C")
        try:
            await wait_for_stop_signal()
        finally:
            state_file.unlink(missing_ok=True)
    note("chain stopped")
    return 0


def _key_from_args(args: argparse.Namespace) -> LocalSigner:
    key_file = getattr(args, "key_file", None)
    key_env = getattr(args, "key_env", None)
    if key_file is not None or key_env is not None:
        return read_key(Path(key_file) if key_file else None, key_env)
    cfg_path = getattr(args, "config", None)
    if cfg_path:
        return load_signer(load_config(cfg_path))
    raise UsageError("give --key-env VAR or --key-file FILE (or --config with a key)")


async def run_deploy(args: argparse.Namespace) -> int:
    from adjudicator.deploy import deploy_adjudicator
    from adjudicator.rpc import open_rpc

    url: str | None = args.rpc_url
    if url is None and args.config:
        url = load_config(args.config).rpc_url
    if url is None:
        raise UsageError("give --rpc-url URL (or --config with [chain] rpc_url)")
    signer = _key_from_args(args)
    async with open_rpc(url) as rpc:
        chain_id = await rpc.chain_id()
        addr = await with_progress(
            f"deploying the adjudicator to chain {chain_id} from {to_checksum(signer.address)}",
            deploy_adjudicator(rpc, signer.secret),
        )
    if args.json:
        print_json({"adjudicator": to_checksum(addr), "chain_id": chain_id})
    else:
        out(to_checksum(addr))
    return 0


async def serve_desk(
    cfg: Config,
    signer: LocalSigner,
    *,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the desk's node, its control socket and its event log until cancelled."""
    from channels.control import serve_control
    from channels.node import open_node

    rpc_url, adjudicator = cfg.require_chain()
    listen = None if cfg.listen_port is None else (cfg.listen_host, cfg.listen_port)
    async with open_node(
        signer=signer,
        store=cfg.store,
        chain=rpc_url,
        adjudicator=adjudicator,
        listen=listen,
        settings=cfg.node_settings(),
    ) as node:
        async with trio.open_nursery() as nursery:
            await nursery.start(log_events, node)
            await nursery.start(serve_control, node, cfg.control)
            log.info(
                "node %s chain_id=%d adjudicator=%s listen=%s control=%s channels=%d",
                to_checksum(node.address),
                node.chain_id,
                to_checksum(adjudicator),
                "-" if node.listen_port is None else f"{cfg.listen_host}:{node.listen_port}",
                cfg.control,
                len(node.channels),
            )
            for channel in node.channels:
                log.info(
                    "[ch=0x%s v=%d] restored phase=%s ours=%d theirs=%d positions=%d",
                    channel.id.hex()[:8],
                    channel.version,
                    channel.phase.value,
                    channel.our_balance,
                    channel.their_balance,
                    len(channel.positions),
                )
            task_status.started(node)
            await trio.sleep_forever()


async def run_node(args: argparse.Namespace) -> int:
    cfg = _require_config(args)
    setup_logging(args.log_level or cfg.log_level)
    signer = load_signer(cfg)
    cfg.require_chain()
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_desk, cfg, signer)
        signum = await wait_for_stop_signal()
        log.info("stopping (%s)", signal.Signals(signum).name)
        nursery.cancel_scope.cancel()
    log.info("stopped")
    return 0


# One-shot commands -----------------------------------------------------------------------------
def _require_config(args: argparse.Namespace) -> Config:
    path = getattr(args, "config", None)
    if not path:
        raise UsageError(f"give --config desk.toml (or set {CONFIG_ENV})")
    return load_config(path)


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
    out(
        f"node {info['address']}  chain {info['chain_id']}  adjudicator {info['adjudicator']}  "
        f"chain time {dt.datetime.fromtimestamp(info['now'], dt.UTC):%Y-%m-%d %H:%M:%S}Z"
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
                "dispute", channel=args.channel, wait=False if args.no_wait else None
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

    p = command("dispute", "force a close: register, wait the challenge period", None, cmd_dispute)
    p.add_argument("channel")
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--no-wait", action="store_true", help="return once registered (the node concludes later)"
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

    p = command("export", "the audit trail of signed states, as JSON", None, cmd_export)
    p.add_argument("channel", nargs="?", help="one channel (default: all)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
