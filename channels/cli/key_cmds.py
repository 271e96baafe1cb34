"""``channels keygen`` (a new key in an encrypted keystore) and ``channels address`` (the address
of a key source, or of the channel and gas keys of a config)."""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
from pathlib import Path

import coincurve
import trio

from channels.cli.config import ConfigError, UsageError, load_config
from channels.cli.format import note, out, print_json
from channels.core.model import address, to_checksum
from channels.core.signing import LocalSigner
from channels.signers.errors import KeySourceError
from channels.signers.keystore import PasswordSource, read_keystore_document
from channels.signers.keystore import write_keystore as _write_keystore
from channels.signers.sources import KeySource, open_key_source

__all__ = ["new_password", "run_address", "run_keygen"]


def _password_source(args: argparse.Namespace) -> PasswordSource:
    env = getattr(args, "password_env", None)
    file = getattr(args, "password_file", None)
    if env is None and file is None:
        return PasswordSource(prompt=True)
    return PasswordSource(env=env, file=None if file is None else Path(file))


def new_password(args: argparse.Namespace) -> str:
    source = _password_source(args)
    if not source.prompt:
        try:
            return source.read("the new keystore")
        except KeySourceError as exc:  # not set, unreadable, open to others: fix the option
            raise UsageError(str(exc)) from None
    if not sys.stdin.isatty():
        raise UsageError("no terminal to type a password: give --password-env or --password-file")
    first = getpass.getpass("password for the new keystore: ")
    if first != getpass.getpass("the same password again: "):
        raise UsageError("the two passwords differ; nothing was written")
    return first


async def run_keygen(args: argparse.Namespace) -> int:
    path = Path(args.output).expanduser()
    password = new_password(args)
    secret = coincurve.PrivateKey().secret
    try:
        await trio.to_thread.run_sync(  # scrypt takes about a second
            functools.partial(_write_keystore, iterations=args.scrypt_n), path, secret, password
        )
    except KeySourceError as exc:
        raise UsageError(str(exc)) from None
    addr = to_checksum(LocalSigner(secret).address)
    if args.json:
        print_json({"address": addr, "keystore": str(path)})
    else:
        out(addr)
        note(f"wrote the encrypted key to {path} (mode 0600); keep the password safe")
    return 0


def _keystore_address(path: Path) -> str:
    """The address a keystore file records (no password needed to read it)."""
    text = read_keystore_document(path).get("address")
    if not isinstance(text, str):
        raise KeySourceError(f"{path} records no address")
    return to_checksum(address(text if text.startswith("0x") else "0x" + text))


def _source_from_args(args: argparse.Namespace) -> KeySource | None:
    if args.key_file:
        return KeySource("key_file", path=Path(args.key_file).expanduser())
    if args.key_env:
        return KeySource("key_env", env=args.key_env)
    if args.remote:
        return KeySource("remote", url=args.remote)
    return None


def _addresses(args: argparse.Namespace) -> dict[str, str]:
    if args.keystore:
        return {"channel": _keystore_address(Path(args.keystore).expanduser())}
    source = _source_from_args(args)
    if source is not None:
        return {"channel": to_checksum(open_key_source(source).address)}
    if not getattr(args, "config", None):
        raise UsageError("give --keystore, --key-file, --key-env or --remote (or --config)")
    cfg = load_config(args.config)
    channel = cfg.channel_key or (
        KeySource("key_file", path=cfg.key_file)
        if cfg.key_file
        else KeySource("key_env", env=cfg.key_env)
        if cfg.key_env
        else None
    )
    if channel is None:
        raise ConfigError(f"{cfg.path}: no channel key is configured")
    result = {"channel": _address_of(channel)}
    result["gas"] = result["channel"] if cfg.gas_key is None else _address_of(cfg.gas_key)
    return result


def _address_of(source: KeySource) -> str:
    if source.kind == "keystore" and source.path is not None:
        return _keystore_address(source.path)
    return to_checksum(open_key_source(source).address)


async def run_address(args: argparse.Namespace) -> int:
    try:
        found = await trio.to_thread.run_sync(_addresses, args)
    except KeySourceError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print_json(found)
    elif len(found) == 1:
        out(found["channel"])
    else:
        out(f"channel {found['channel']}")
        out(f"gas     {found['gas']}")
    return 0
