"""``channels tower --config tower.toml``: run a watchtower for a desk until a signal.

The config is TOML, like a desk's::

    [tower]
    key_env = "TOWER_KEY"          # or key_file (mode 0600), or keystore = "tower.keystore.json"
                                   # with password_env, password_file or password_prompt = true
                                   # (docs/SIGNERS.md); the tower pays gas from this key
    store = "tower.sqlite"
    listen_host = "127.0.0.1"
    listen_port = 9735
    clients = ["0x..."]            # the desks whose states it accepts
    poll_interval = 1.0

    [chain]
    rpc_url = "http://127.0.0.1:8545"
    adjudicator = "0x..."
    confirmations = 1

A desk names the tower in its own config as a ``[[watchtower]]`` table (address, host, port).
"""

from __future__ import annotations

import argparse
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import trio

from channels.cli.config import ConfigError, Section, read_toml
from channels.cli.node_cmd import logging_to_stderr, wait_for_stop_signal
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner
from channels.signers.errors import KeySourceError
from channels.signers.keystore import load_keystore_key
from channels.signers.sources import KeySource, open_key_source, parse_key_source

log = logging.getLogger("channels.tower")

#: Where the tower's key lives: exactly one of key_env, key_file, keystore (with its password
#: source). It signs its logins and its own transactions in-process, so no remote signer.
_KEY_KEYS = ("key_env", "key_file", "keystore", "password_env", "password_file", "password_prompt")
_TOWER_KEYS = {
    *_KEY_KEYS,
    "store",
    "listen_host",
    "listen_port",
    "clients",
    "poll_interval",
    "log_level",
}
_CHAIN_KEYS = {"rpc_url", "adjudicator", "confirmations"}


@dataclass(frozen=True)
class TowerConfig:
    key: KeySource
    store: Path
    listen: tuple[str, int]
    clients: tuple[bytes, ...]
    poll_interval: float
    log_level: str
    rpc_url: str
    adjudicator: bytes
    confirmations: int


def load_tower_config(path: str) -> TowerConfig:
    cfg_path = Path(path).expanduser()
    doc = read_toml(cfg_path)
    cfg_path = cfg_path.resolve()
    unknown = sorted(set(doc) - {"tower", "chain"})
    if unknown:
        raise ConfigError(f"{cfg_path}: unknown section(s): {', '.join(unknown)}")
    tower = Section(cfg_path, "tower", doc.get("tower", {}), _TOWER_KEYS)
    chain = Section(cfg_path, "chain", doc.get("chain", {}), _CHAIN_KEYS)
    store = tower.get_path("store")
    rpc_url, adjudicator = chain.get_str("rpc_url"), chain.get_address("adjudicator")
    if store is None or rpc_url is None or adjudicator is None:
        raise ConfigError(
            f"{cfg_path}: [tower] store, [chain] rpc_url and [chain] adjudicator are required"
        )
    raw_clients = tower.table.get("clients", [])
    if not isinstance(raw_clients, list) or not raw_clients:
        tower.fail("clients", "must list the addresses of the desks it serves")
    clients = []
    for text in raw_clients:
        probe = Section(cfg_path, "tower", {"clients": text}, {"clients"})
        addr = probe.get_address("clients")
        assert addr is not None
        clients.append(addr)
    key_table = {k: tower.table[k] for k in _KEY_KEYS if k in tower.table}
    try:
        key = parse_key_source(key_table, cfg_path.parent, f"{cfg_path}: [tower]")
    except KeySourceError as exc:
        raise ConfigError(f"{exc} (the tower's key: key_env, key_file or keystore)") from None
    return TowerConfig(
        key=key,
        store=store,
        listen=(
            tower.get_str("listen_host") or "127.0.0.1",
            tower.get_int("listen_port", 0, 65535) or 0,
        ),
        clients=tuple(clients),
        poll_interval=tower.get_float("poll_interval") or 1.0,
        log_level=(tower.get_str("log_level") or "info").lower(),
        rpc_url=rpc_url,
        adjudicator=adjudicator,
        confirmations=chain.get_int("confirmations", 1, 1000) or 1,
    )


def tower_key(cfg: TowerConfig) -> LocalSigner:
    """The tower's key, opened in-process (a keystore is decrypted here)."""
    try:
        if cfg.key.kind == "keystore":
            assert cfg.key.path is not None and cfg.key.password is not None
            return load_keystore_key(cfg.key.path, cfg.key.password)
        signer = open_key_source(cfg.key)
    except KeySourceError as exc:
        raise ConfigError(f"[tower] key: {exc}") from None
    assert isinstance(signer, LocalSigner)  # key_file and key_env open as local keys
    return signer


async def serve_tower(
    cfg: TowerConfig, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the tower until cancelled; ``task_status`` gets its listening port."""
    from channels.defence.watchtower import open_watchtower

    signer = await trio.to_thread.run_sync(tower_key, cfg)  # scrypt takes a second
    async with open_watchtower(
        signer,
        cfg.store,
        cfg.rpc_url,
        cfg.adjudicator,
        cfg.listen,
        clients=cfg.clients,
        poll_interval=cfg.poll_interval,
        confirmations=cfg.confirmations,
    ) as tower:
        log.info(
            "watchtower %s listening on %s:%s for %d desk(s)",
            to_checksum(tower.address),
            cfg.listen[0],
            tower.listen_port,
            len(cfg.clients),
        )
        assert tower.listen_port is not None
        task_status.started(tower.listen_port)
        await trio.sleep_forever()


async def run_tower(args: argparse.Namespace) -> int:
    if not args.config:
        raise ConfigError("channels tower needs --config tower.toml")
    cfg = load_tower_config(args.config)
    with logging_to_stderr(cfg.log_level):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_tower, cfg)
            signum = await wait_for_stop_signal()
            log.info("stopping (%s)", signal.Signals(signum).name)
            nursery.cancel_scope.cancel()
    return 0
