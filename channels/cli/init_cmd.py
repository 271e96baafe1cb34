"""``channels init``: a new desk config whose channel key is a fresh encrypted keystore.

The key never exists on disk unencrypted: it is generated in memory and written only as a Web3
Secret Storage keystore (scrypt, mode 0600, docs/SIGNERS.md). The config's ``[keys.channel]``
table says where the password comes from, the way it was given to ``init``: an environment
variable (``--password-env``), a file of mode 0600 (``--password-file``) or, by default, typed
at a prompt (twice here, once each time the node starts).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import coincurve
import trio

from channels.cli.config import Config, ConfigError, UsageError, load_config
from channels.cli.desks import desk_config_text, free_port, write_public
from channels.cli.format import note, out
from channels.cli.key_cmds import new_password
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner
from channels.signers.errors import KeySourceError
from channels.signers.keystore import check_private_file, write_keystore

__all__ = ["run_init"]


def _toml_string(text: str) -> str:
    """A TOML basic string (paths and variable names; quotes and backslashes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _password_line(args: argparse.Namespace, config_dir: Path) -> str:
    """The ``[keys.channel]`` line naming where the node reads the password from."""
    if args.password_env is not None:
        return f"password_env = {_toml_string(args.password_env)}"
    if args.password_file is not None:
        file = Path(args.password_file).expanduser().resolve()
        try:
            check_private_file(file)
        except KeySourceError as exc:
            raise UsageError(f"--password-file: {exc}") from None
        try:
            shown = str(file.relative_to(config_dir.resolve()))
        except ValueError:
            shown = str(file)  # outside the config's folder: the absolute path
        return f"password_file = {_toml_string(shown)}    # mode 0600"
    return "password_prompt = true              # typed each time the node starts"


def _chain_settings(args: argparse.Namespace) -> tuple[str, bytes, bytes, bytes, int]:
    template: Config | None = load_config(args.like) if args.like else None
    rpc_url = args.rpc_url or (template.rpc_url if template else None)
    adjudicator = args.adjudicator or (template.adjudicator if template else None)
    asset = args.asset or (template.asset if template else None)
    oracle = args.oracle or (template.oracle if template else None)
    missing = [
        flag
        for flag, value in (
            ("--rpc-url", rpc_url),
            ("--adjudicator", adjudicator),
            ("--asset", asset),
            ("--oracle", oracle),
        )
        if value is None
    ]
    if missing:
        raise UsageError(
            f"give {', '.join(missing)} (or --like desks/desk-a.toml to take them from a config)"
        )
    assert rpc_url and adjudicator and asset and oracle
    return rpc_url, adjudicator, asset, oracle, template.challenge_period if template else 3600


async def run_init(args: argparse.Namespace) -> int:
    """Write a new desk config and a fresh encrypted keystore (mode 0600) next to it."""
    target = Path(args.path).expanduser()
    if target.suffix != ".toml":
        raise UsageError(f"{target}: a desk config's name ends in .toml")
    if target.exists():
        raise UsageError(f"{target} exists; choose another name (init never overwrites)")
    name = target.stem
    keystore = target.with_name(f"{name}.keystore.json")
    if keystore.exists():
        raise UsageError(f"{keystore} exists; init never overwrites a key")
    rpc_url, adjudicator, asset, oracle, challenge_period = _chain_settings(args)
    target.parent.mkdir(parents=True, exist_ok=True)
    password_line = _password_line(args, target.parent)
    password = new_password(args)
    secret = coincurve.PrivateKey().secret
    try:
        await trio.to_thread.run_sync(  # scrypt: about a second
            functools.partial(write_keystore, iterations=args.scrypt_n), keystore, secret, password
        )
    except KeySourceError as exc:
        raise UsageError(str(exc)) from None
    port = args.listen_port if args.listen_port is not None else free_port()
    text = desk_config_text(
        name=name,
        comment="created by `channels init`; its key is encrypted in "
        f"{keystore.name} (mode 0600): back it up with its password, never share it",
        key_line="# the channel key: [keys.channel] below (docs/SIGNERS.md)",
        listen_port=port,
        rpc_url=rpc_url,
        adjudicator=to_checksum(adjudicator),
        asset=to_checksum(asset),
        asset_note="the channel asset (ERC-20)",
        oracle=to_checksum(oracle),
        oracle_note="the price oracle both desks trust",
        challenge_period=challenge_period,
        peers=[],
        extra_tables=(
            f'\n[keys.channel]\nkeystore = "{keystore.name}"   # encrypted (scrypt), mode 0600\n'
            f"{password_line}\n"
        ),
    )
    write_public(target, text)
    try:
        load_config(target)  # what we wrote must load
    except ConfigError:
        target.unlink()
        keystore.unlink()
        raise
    address = to_checksum(LocalSigner(secret).address)
    out(f"desk config  {target}")
    out(f"keystore     {keystore} (encrypted, mode 0600)")
    out(f"address      {address}")
    note(
        "fund this address with the asset and with gas, add the peers you trade with as "
        f"[peers.NAME] tables (with what each may ask of you: approve = [...]), then: "
        f"channels node --config {target}"
    )
    return 0
