"""Ready-to-use desk configs for a local chain, and a node from a desk config for bots.

``channels chain`` writes one config and one key file per desk (desk-a, desk-b, bot) into a
directory, with the chain's URL, the adjudicator, the test token and the dev oracle filled in and
every desk listed as a peer of the others; ``channels -c desks/desk-a.toml ...`` then works with
nothing to edit. ``open_desk`` runs a node from such a config inside a bot.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from channels.cli.config import Config, ConfigError, load_config, load_signer
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner

if TYPE_CHECKING:
    from channels.runtime.node import Node

#: (desk name, anvil dev account index); account 0 deploys, account 9 is the dev oracle.
DEV_DESKS: tuple[tuple[str, int], ...] = (("desk-a", 1), ("desk-b", 2), ("bot", 3))
DEV_ORACLE_ACCOUNT = 9
DEV_CHALLENGE_PERIOD = 3600
#: Dev desks accept channels with each other up to this deposit (in tokens) ...
DEV_MAX_DEPOSIT = 100_000
#: ... and consent in advance to the option trades the walk-through has the other desks ask of
#: them (buy, write, unwind), never to paying the peer or to withdrawals: a desk trades only what
#: its operator agreed to (channels/cli/peer_terms.py), and these configs are copied.
DEV_APPROVALS = ("buy", "write", "unwind")
DEV_PEER_TERMS = (
    "approve = ["
    + ", ".join(f'"{a}"' for a in DEV_APPROVALS)
    + "]   # what it may ask of us; never pay or withdraw\n"
    "\n[peers.{peer}.assets.token]     # what we lock with it, in the test token's units\n"
    'address = "{token}"\n'
    'max_deposit = "{max_deposit}"          # our deposit in a channel it opens; also our total\n'
)


#: ... and answer requests for firm quotes on one option from a table (channels/cli/quote_table.py):
#: they write ETH-USD 3000 calls at 40 tokens a unit, with 500 tokens of collateral a unit.
DEV_QUOTES = """
[quotes]                           # firm quotes this desk answers by itself (`channels rfq`)
valid_for = 60                     # seconds of chain time each quote stays firm

[[quotes.table]]
underlying = "ETH-USD"
kind = "call"
strike = "3000"
side = "buy"                       # the requester buys: we write
price = "40"                       # premium per unit, in the token's units
collateral = "500"                 # collateral per unit, in the token's units
max_quantity = "1"
"""


@dataclass(frozen=True, slots=True)
class DeskFile:
    name: str
    config: Path
    key_file: Path
    address: str
    listen_port: int


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (mode 0600 from creation on)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_public(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def desk_config_text(
    *,
    name: str,
    comment: str,
    key_line: str,
    listen_port: int,
    rpc_url: str,
    adjudicator: str,
    asset: str,
    asset_note: str,
    oracle: str,
    oracle_note: str,
    challenge_period: int,
    peers: Sequence[tuple[str, str, int]],
    peer_terms: str = "",
    extra_tables: str = "",
) -> str:
    """The TOML text of a desk config; every line says what it is."""
    peer_tables = "".join(
        f'\n[peers.{peer}]\naddress = "{addr}"\nhost = "127.0.0.1"\nport = {port}\n'
        + peer_terms.replace("{peer}", peer)
        for peer, addr, port in peers
    )
    return f"""# {name}: {comment}
# Relative paths are relative to this file. Run it:  channels node --config {name}.toml

[node]
{key_line}
store = "{name}.sqlite"            # durable state; the control socket is {name}.sqlite.sock
listen_host = "127.0.0.1"
listen_port = {listen_port}              # peers dial this port
log_level = "info"

[chain]
rpc_url = "{rpc_url}"
adjudicator = "{adjudicator}"   # the adjudicator contract
confirmations = 1
poll_interval = 0.5                # seconds between chain polls
asset = "{asset}"         # {asset_note}
oracle = "{oracle}"        # {oracle_note}
challenge_period = {challenge_period}            # seconds
{extra_tables}{peer_tables}"""


def write_dev_desks(
    directory: Path,
    *,
    rpc_url: str,
    adjudicator: bytes,
    token: bytes,
    token_decimals: int,
    private_keys: Sequence[str],
) -> list[DeskFile]:
    """Write desk-a, desk-b and bot configs and key files for a local dev chain.

    Refuses to write over a desk that already has a store: its channels belong to an earlier
    chain, and mixing them with a fresh one would only confuse.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, _ in DEV_DESKS:
        store = directory / f"{name}.sqlite"
        if store.exists():
            raise ConfigError(
                f"{store} exists: that desk has channels on an earlier chain; remove "
                f"{directory} or pass --desks OTHER_DIR"
            )
    signers = {name: LocalSigner.from_hex(private_keys[index]) for name, index in DEV_DESKS}
    ports = {name: free_port() for name, _ in DEV_DESKS}
    oracle = LocalSigner.from_hex(private_keys[DEV_ORACLE_ACCOUNT]).address
    written: list[DeskFile] = []
    for name, index in DEV_DESKS:
        key_file = directory / f"{name}.key"
        _write_private(key_file, private_keys[index] + "\n")
        peers = [
            (other, to_checksum(signers[other].address), ports[other])
            for other, _ in DEV_DESKS
            if other != name
        ]
        text = desk_config_text(
            name=name,
            comment=(
                f"generated by `channels chain` for a local dev chain (anvil dev account {index}; "
                f"its key in {name}.key is public: never use it with real funds)"
            ),
            key_line=f'key_file = "{name}.key"          # hex private key, mode 0600',
            listen_port=ports[name],
            rpc_url=rpc_url,
            adjudicator=to_checksum(adjudicator),
            asset=to_checksum(token),
            asset_note=f"the test token ({token_decimals} decimals)",
            oracle=to_checksum(oracle),
            oracle_note=f"the dev oracle (anvil dev account {DEV_ORACLE_ACCOUNT})",
            challenge_period=DEV_CHALLENGE_PERIOD,
            peers=peers,
            peer_terms=DEV_PEER_TERMS.replace("{token}", to_checksum(token)).replace(
                "{max_deposit}", str(DEV_MAX_DEPOSIT)
            ),
            extra_tables=DEV_QUOTES,
        )
        config = directory / f"{name}.toml"
        write_public(config, text)
        written.append(
            DeskFile(name, config, key_file, to_checksum(signers[name].address), ports[name])
        )
    return written


def dev_desk_summary(desks: Sequence[DeskFile]) -> Mapping[str, object]:
    return {
        d.name: {"config": str(d.config), "address": d.address, "listen_port": d.listen_port}
        for d in desks
    }


@asynccontextmanager
async def open_desk(config: str | os.PathLike[str]) -> AsyncIterator[tuple[Node, Config]]:
    """A node run from a desk config (key, store, chain, listen port), and the config itself::

    async with open_desk("desks/bot.toml") as (node, cfg):
        peer = cfg.peers["desk-b"]
        channel = await node.open_channel(peer=(peer.host, peer.port), ...)
    """
    from channels.cli.desk_trust import desk_trust
    from channels.runtime.node import open_node

    cfg = load_config(config)
    rpc_url, adjudicator = cfg.require_chain()
    listen = None if cfg.listen_port is None else (cfg.listen_host, cfg.listen_port)
    async with open_node(
        signer=load_signer(cfg),
        store=cfg.store,
        chain=rpc_url,
        adjudicator=adjudicator,
        listen=listen,
        settings=cfg.node_settings(),
        # consent: the config's declared peers, their terms and limits
        trust=await desk_trust(cfg),
    ) as node:
        yield node, cfg
