"""The desk's config file and key sources (command-line values: channels/cli/values.py)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from adjudicator.tx_signing import TransactionSigner
from channels.cli.node_guards import GUARD_KEYS, NodeGuards, parse_node_guards
from channels.cli.peer_terms import (
    NO_PEER_TERMS,
    TERM_KEYS,
    PeerTermsConfig,
    TermsError,
    parse_peer_terms,
)
from channels.cli.quote_table import QuoteTable, QuoteTableError, parse_quote_table
from channels.cli.units import UnitError, checked_address
from channels.core.errors import ChannelError, LocalError
from channels.core.model import Address, to_checksum
from channels.core.signing import LocalSigner, Signer
from channels.runtime.towerclient import TowerEndpoint
from channels.signers.errors import KeySourceError
from channels.signers.sources import KeySource, open_key_source, parse_key_source

if TYPE_CHECKING:
    from channels.runtime.node import NodeSettings

log = logging.getLogger("channels.desk")

PRICE_DECIMALS = 8
QUANTITY_DECIMALS = 18
DEFAULT_STATE_FILE = "channels-chain.json"
DEBUG_ENV = "CHANNELS_DEBUG"
CONFIG_ENV = "CHANNELS_CONFIG"


# Errors ----------------------------------------------------------------------------------------
class ConfigError(LocalError):
    """The config file (or a key source it names) is missing, unreadable or wrong."""


class UsageError(LocalError):
    """The command line is wrong (exit code 2)."""


class PortInUse(ConfigError):
    """A port the command would listen on is taken (the message names the port and the key)."""


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
    #: Where to dial it; None for a peer that only dials us.
    host: str | None
    port: int | None
    #: What we accept with this peer, its standing approvals and risk limits, amounts not yet
    #: scaled by their asset's decimals (channels/cli/peer_terms.py; the node's Trust is built
    #: from them by channels/cli/desk_trust.py).
    terms: PeerTermsConfig = NO_PEER_TERMS


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
    log_format: str = "text"
    #: Prometheus /metrics and /healthz: on by default, on loopback only, on a port the OS picks
    #: at start (getinfo shows the URL; the node logs it); ``metrics = false`` turns them off.
    metrics: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    update_timeout: float | None = None
    open_timeout: float | None = None
    max_deposit_fee_bps: int = 0  # consent: the transfer fee this desk accepts (0: none)
    max_tower_lag: int = 0  # versions our newest state may be ahead of a tower's ack
    rpc_url: str | None = None
    rpc_fallback_urls: tuple[str, ...] = ()
    watchtowers: tuple[TowerEndpoint, ...] = ()
    adjudicator: bytes | None = None
    confirmations: int = 1
    poll_interval: float = 1.0
    asset: bytes | None = None
    oracle: bytes | None = None
    challenge_period: int = 3600
    peers: dict[str, PeerConfig] = field(default_factory=dict)
    #: ``[keys.channel]`` / ``[keys.gas]`` (issue 14): where each key lives, chosen separately.
    channel_key: KeySource | None = None
    gas_key: KeySource | None = None
    #: [quotes]: the firm quotes the node answers on its own (channels/cli/quote_table.py).
    quotes: QuoteTable | None = None
    #: [node] gas reserve and connection caps (channels/cli/node_guards.py).
    guards: NodeGuards = field(default_factory=NodeGuards)

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
        from channels.runtime.node import NodeSettings

        extra: dict[str, Any] = {}
        if self.update_timeout is not None:
            extra["update_timeout"] = self.update_timeout
        if self.open_timeout is not None:
            extra["open_timeout"] = self.open_timeout
        return NodeSettings(
            confirmations=self.confirmations,
            chain_poll_interval=self.poll_interval,
            max_deposit_fee_bps=self.max_deposit_fee_bps,
            max_tower_lag=self.max_tower_lag,
            gas_reserve=self.guards.gas_reserve(),
            tx_policy=self.guards.tx_policy(),
            **extra,
        )


_NODE_KEYS = {
    "key_file",
    "key_env",
    "store",
    "listen_host",
    "listen_port",
    "control",
    "log_level",
    "log_format",
    "metrics",
    "metrics_host",
    "metrics_port",
    "update_timeout",
    "open_timeout",
    "max_deposit_fee_bps",
    "max_tower_lag",
} | GUARD_KEYS
_CHAIN_KEYS = {
    "rpc_url",
    "rpc_fallback_urls",
    "adjudicator",
    "confirmations",
    "poll_interval",
    "asset",
    "oracle",
    "challenge_period",
}
_PEER_KEYS = {"address", "host", "port"} | TERM_KEYS
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


class Section:
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
        return self.parse_address(key, text)

    def parse_address(self, key: str, text: object) -> bytes:
        if not isinstance(text, str):
            self.fail(key, "addresses are strings (0x and 40 hex digits)")
        try:
            return checked_address(text)
        except UnitError as exc:
            self.fail(key, str(exc))


MAX_CONFIG_BYTES = 1 << 20
"""A config file is a few KB; anything this long is not one."""


def read_toml(cfg_path: Path) -> dict[str, Any]:
    """A TOML file from disk, bounded in size; nesting too deep is refused (the parser recurses
    and the recursion limit is kept at its safe default, see ``channels.core.boundedjson``)."""
    try:
        with cfg_path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {cfg_path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {cfg_path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{cfg_path}: longer than {MAX_CONFIG_BYTES} bytes, not a config file")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{cfg_path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{cfg_path}: arrays or tables nested too deep") from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a desk config. The key itself is read later (:func:`load_signer`)."""
    cfg_path = Path(path).expanduser()
    doc = read_toml(cfg_path)
    cfg_path = cfg_path.resolve()
    unknown = sorted(set(doc) - {"node", "chain", "peers", "quotes", "keys", "watchtower"})
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
    node = Section(cfg_path, "node", node_table, _NODE_KEYS)
    chain = Section(cfg_path, "chain", doc.get("chain", {}), _CHAIN_KEYS)
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
    channel_key, gas_key = _key_sources(cfg_path, doc.get("keys", {}))
    if channel_key is not None and (key_file is not None or key_env is not None):
        raise ConfigError(
            f"{cfg_path}: the channel key is given twice: in [keys.channel] and in [node]"
        )
    log_level = (node.get_str("log_level") or "info").lower()
    if log_level not in LOG_LEVELS:
        node.fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
    log_format = (node.get_str("log_format") or "text").lower()
    if log_format not in LOG_FORMATS:
        node.fail("log_format", f"must be one of {', '.join(LOG_FORMATS)}")
    default_asset, default_oracle = chain.get_address("asset"), chain.get_address("oracle")
    peers: dict[str, PeerConfig] = {}
    peers_table = doc.get("peers", {})
    if not isinstance(peers_table, dict):
        raise ConfigError(f"{cfg_path}: [peers] must be a table of [peers.<name>] tables")
    for name, table in peers_table.items():
        peer = Section(cfg_path, f"peers.{name}", table, _PEER_KEYS)
        addr, host, port = (
            peer.get_address("address"),
            peer.get_str("host"),
            peer.get_int("port", 1, 65535),
        )
        if addr is None:
            peer.fail("address", "a peer needs its address")
        if (host is None) != (port is None):
            peer.fail("host/port", "give both (where to dial the peer) or neither")
        try:
            terms = parse_peer_terms(name, peer.table, default_asset, default_oracle)
        except TermsError as exc:
            raise ConfigError(f"{cfg_path}: {exc}") from None
        peers[name] = PeerConfig(name, addr, host, port, terms)
    try:
        quotes = parse_quote_table(cfg_path, doc["quotes"]) if "quotes" in doc else None
    except QuoteTableError as exc:
        raise ConfigError(str(exc)) from None
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
        log_format=log_format,
        metrics=_metrics_switch(node),
        metrics_host=node.get_str("metrics_host") or "127.0.0.1",
        metrics_port=node.get_int("metrics_port", 0, 65535) or 0,
        update_timeout=node.get_float("update_timeout"),
        open_timeout=node.get_float("open_timeout"),
        max_deposit_fee_bps=node.get_int("max_deposit_fee_bps", 0, 9_999) or 0,
        max_tower_lag=node.get_int("max_tower_lag", 0, 1 << 32) or 0,
        rpc_url=rpc_url,
        rpc_fallback_urls=_fallback_urls(chain),
        watchtowers=_watchtowers(cfg_path, doc.get("watchtower", [])),
        adjudicator=chain.get_address("adjudicator"),
        confirmations=chain.get_int("confirmations", 1, 1000) or 1,
        poll_interval=chain.get_float("poll_interval") or 1.0,
        asset=chain.get_address("asset"),
        oracle=chain.get_address("oracle"),
        challenge_period=chain.get_int("challenge_period", 1, 2**64 - 1) or 3600,
        peers=peers,
        channel_key=channel_key,
        gas_key=gas_key,
        quotes=quotes,
        guards=parse_node_guards(node.table, node.fail),
    )


def _watchtowers(cfg_path: Path, tables: object) -> tuple[TowerEndpoint, ...]:
    """``[[watchtower]]`` tables: ``address``, ``host`` and ``port`` of each of the desk's towers
    (every fully signed state is streamed to each; see channels/runtime/towerclient.py)."""
    if not isinstance(tables, list):
        raise ConfigError(f"{cfg_path}: watchtowers are [[watchtower]] tables")
    out = []
    for number, table in enumerate(tables, 1):
        tower = Section(cfg_path, f"watchtower #{number}", table, _PEER_KEYS)
        addr, host = tower.get_address("address"), tower.get_str("host")
        port = tower.get_int("port", 1, 65535)
        if addr is None or host is None or port is None:
            tower.fail("address/host/port", "a watchtower needs all three")
        out.append(TowerEndpoint(host, port, Address(addr)))
    return tuple(out)


def _key_sources(path: Path, table: object) -> tuple[KeySource | None, KeySource | None]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [keys] must hold [keys.channel] and/or [keys.gas] tables")
    unknown = sorted(set(table) - {"channel", "gas"})
    if unknown:
        raise ConfigError(f"{path}: [keys] has unknown table(s): {', '.join(unknown)}")
    try:
        return tuple(  # type: ignore[return-value]
            None
            if table.get(name) is None
            else parse_key_source(table[name], path.parent, f"{path}: [keys.{name}]")
            for name in ("channel", "gas")
        )
    except KeySourceError as exc:
        raise ConfigError(str(exc)) from None


def _metrics_switch(node: Section) -> bool:
    value = node.table.get("metrics", True)
    if type(value) is not bool:
        node.fail(
            "metrics", "must be true (the default: /metrics and /healthz on 127.0.0.1) or false"
        )
    return value


def _fallback_urls(chain: Section) -> tuple[str, ...]:
    """``[chain] rpc_fallback_urls``: more endpoints, used in turn when one fails."""
    value = chain.table.get("rpc_fallback_urls", [])
    if not isinstance(value, list) or not all(
        isinstance(u, str) and u.startswith(("http://", "https://")) for u in value
    ):
        chain.fail("rpc_fallback_urls", "must be a list of http:// or https:// URLs")
    return tuple(value)


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
            raise ConfigError(
                f"key file {key_file} is readable or writable by other users; "
                f"run: chmod 600 {key_file}"
            )
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


def load_signer(cfg: Config, env: Mapping[str, str] | None = None) -> Signer:
    """The channel key: ``[keys.channel]``, else ``[node] key_file`` / ``key_env``."""
    if cfg.channel_key is not None:
        try:
            return open_key_source(cfg.channel_key, env)
        except KeySourceError as exc:
            raise ConfigError(f"{cfg.path}: [keys.channel]: {exc}") from None
    if cfg.key_file is None and cfg.key_env is None:
        raise ConfigError(f"{cfg.path}: [node] needs key_file or key_env (or a [keys.channel])")
    return read_key(cfg.key_file, cfg.key_env, env)


def load_gas_key(
    cfg: Config, env: Mapping[str, str] | None = None
) -> bytes | TransactionSigner | None:
    """The gas account: ``[keys.gas]``, else None (the node then pays from the channel key)."""
    if cfg.gas_key is None:
        return None
    try:
        signer = open_key_source(cfg.gas_key, env)
    except KeySourceError as exc:
        raise ConfigError(f"{cfg.path}: [keys.gas]: {exc}") from None
    if isinstance(signer, LocalSigner):
        return signer.secret
    if isinstance(signer, TransactionSigner):
        return signer
    raise ConfigError(f"{cfg.path}: [keys.gas]: this signer cannot sign transactions")


def load_local_signer(cfg: Config, env: Mapping[str, str] | None = None) -> LocalSigner:
    """A raw local key (deploying with ``--config`` needs one)."""
    signer = load_signer(cfg, env)
    if not isinstance(signer, LocalSigner):
        raise ConfigError(f"{cfg.path}: this command needs a raw key (key_file or key_env)")
    return signer


def require_config(args: argparse.Namespace) -> Config:
    path = getattr(args, "config", None)
    if not path:
        raise UsageError(f"give --config desk.toml (or set {CONFIG_ENV})")
    return load_config(path)
