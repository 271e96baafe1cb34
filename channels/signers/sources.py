"""Where a key lives, as a desk's config names it, and opening it into a signer.

One TOML table per key (``[keys.channel]``, ``[keys.gas]``) with exactly one of

* ``key_file = "desk.key"``: a raw hex key in a file of mode 0600;
* ``key_env = "VAR"``: a raw hex key in an environment variable;
* ``keystore = "desk.keystore.json"``: an encrypted keystore, with ``password_env``,
  ``password_file`` or ``password_prompt = true``;
* ``remote = "http://127.0.0.1:8550"``: a JSON-RPC signer, with an optional ``address`` (which of
  its accounts), ``timeout`` (seconds per call) and ``token_env`` (a bearer token's variable).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from channels.core.errors import ChannelError
from channels.core.model import Address, address
from channels.core.signing import LocalSigner, Signer
from channels.signers.errors import KeySourceError
from channels.signers.keystore import PasswordSource, load_keystore, read_key_file
from channels.signers.remote import DEFAULT_TIMEOUT, RemoteSigner

__all__ = ["KEY_SOURCE_KEYS", "KeySource", "open_key_source", "parse_key_source"]

_KINDS = ("key_file", "key_env", "keystore", "remote")
KEY_SOURCE_KEYS = frozenset(
    (*_KINDS, "password_env", "password_file", "password_prompt", "address", "timeout", "token_env")
)
_HEX_KEY = re.compile(r"(0[xX])?[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class KeySource:
    kind: str
    path: Path | None = None
    env: str | None = None
    url: str | None = None
    password: PasswordSource | None = None
    address: Address | None = None
    timeout: float = DEFAULT_TIMEOUT
    token_env: str | None = None

    def describe(self) -> str:
        where = self.path or self.env or self.url
        return f"{self.kind} {where}"


def _str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise KeySourceError(f"{where} {key}: must be a non-empty string")
    return value


def _env_name(table: Mapping[str, Any], key: str, where: str) -> str | None:
    name = _str(table, key, where)
    if name is not None and _HEX_KEY.fullmatch(name.strip()):
        raise KeySourceError(f"{where} {key}: takes the NAME of an environment variable")
    return name


def parse_key_source(table: object, base: Path, where: str) -> KeySource:
    """Check one key table; relative paths are relative to ``base`` (the config's folder)."""
    if not isinstance(table, dict):
        raise KeySourceError(f"{where} must be a table")
    unknown = sorted(set(table) - KEY_SOURCE_KEYS)
    if unknown:
        raise KeySourceError(f"{where} has unknown key(s): {', '.join(unknown)}")
    kinds = [k for k in _KINDS if k in table]
    if len(kinds) != 1:
        raise KeySourceError(f"{where} needs exactly one of {', '.join(_KINDS)}")
    kind = kinds[0]

    def path(key: str) -> Path | None:
        text = _str(table, key, where)
        return None if text is None else (base / Path(text).expanduser()).resolve()

    password_keys = [k for k in ("password_env", "password_file", "password_prompt") if k in table]
    if kind == "keystore":
        if len(password_keys) != 1:
            raise KeySourceError(
                f"{where} keystore needs one of password_env, password_file, password_prompt"
            )
        prompt = table.get("password_prompt", False)
        if type(prompt) is not bool:
            raise KeySourceError(f"{where} password_prompt must be true or false")
        password = PasswordSource(
            env=_env_name(table, "password_env", where),
            file=path("password_file"),
            prompt=prompt,
        )
    elif password_keys:
        raise KeySourceError(f"{where} {password_keys[0]}: only a keystore has a password")
    else:
        password = None
    remote_only = [k for k in ("address", "timeout", "token_env") if k in table]
    if remote_only and kind != "remote":
        raise KeySourceError(f"{where} {remote_only[0]}: only for a remote signer")
    url = _str(table, "remote", where)
    if url is not None and not url.startswith(("http://", "https://")):
        raise KeySourceError(f"{where} remote: must be an http:// or https:// URL")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if type(timeout) not in (int, float) or not 0 < timeout <= 600:
        raise KeySourceError(f"{where} timeout: must be a number of seconds in (0, 600]")
    addr_text = _str(table, "address", where)
    try:
        addr = None if addr_text is None else address(addr_text)
    except ChannelError as exc:
        raise KeySourceError(f"{where} address: {exc}") from None
    return KeySource(
        kind=kind,
        path=path("key_file") or path("keystore"),
        env=_env_name(table, "key_env", where),
        url=url,
        password=password,
        address=addr,
        timeout=float(timeout),
        token_env=_env_name(table, "token_env", where),
    )


def open_key_source(source: KeySource, env: Mapping[str, str] | None = None) -> Signer:
    """The signer behind ``source``: a :class:`LocalSigner` (key file or variable), an
    :class:`~channels.signers.account.AccountSigner` (keystore) or a
    :class:`~channels.signers.remote.RemoteSigner` (asked for its accounts now)."""
    env = os.environ if env is None else env
    if source.kind == "key_file":
        assert source.path is not None
        return read_key_file(source.path)
    if source.kind == "key_env":
        assert source.env is not None
        value = env.get(source.env)
        if not value:
            raise KeySourceError(f"environment variable {source.env} (the private key) is not set")
        try:
            return LocalSigner.from_hex(value.strip())
        except ChannelError as exc:
            raise KeySourceError(f"{source.env}: not a valid private key ({exc})") from None
    if source.kind == "keystore":
        assert source.path is not None and source.password is not None
        return load_keystore(source.path, source.password, env)
    assert source.url is not None
    headers = {}
    if source.token_env is not None:
        token = env.get(source.token_env)
        if not token:
            raise KeySourceError(f"environment variable {source.token_env} (the token) is not set")
        headers["Authorization"] = f"Bearer {token}"
    return RemoteSigner.connect(source.url, source.address, timeout=source.timeout, headers=headers)
