"""Key files on disk: raw hex key files and encrypted keystores (Web3 Secret Storage, the format
geth, Clef and MetaMask export), with their passwords from an environment variable, a file or a
prompt.

Every file here is hostile until checked: its size is bounded before it is parsed, a key or
password file that other users could read is refused (the error names the ``chmod`` to run), and a
keystore's key-derivation parameters are bounded (a crafted scrypt ``n`` would exhaust memory).
"""

from __future__ import annotations

import getpass
import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account

from channels.core import boundedjson
from channels.core.errors import ChannelError
from channels.core.signing import LocalSigner
from channels.signers.account import AccountSigner
from channels.signers.errors import KeySourceError

__all__ = [
    "PasswordSource",
    "check_private_file",
    "decrypt_keystore",
    "load_keystore",
    "load_keystore_key",
    "read_key_file",
    "read_keystore_document",
    "read_private_file",
    "write_keystore",
]

MAX_KEY_FILE = 4096
MAX_KEYSTORE_FILE = 64 * 1024
MAX_PASSWORD = 4096
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_RP = 16
_MAX_PBKDF2_ROUNDS = 10_000_000


def check_private_file(path: Path) -> None:
    """Refuse a secret file that is missing, not a regular file, or open to other users."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeySourceError(f"{path} not found") from None
    except OSError as exc:
        raise KeySourceError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeySourceError(f"{path} is not a regular file")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeySourceError(
            f"{path} is readable or writable by other users (mode "
            f"{stat.S_IMODE(info.st_mode):03o}); run: chmod 600 {path}"
        )


def read_private_file(path: Path, limit: int) -> bytes:
    """The bytes of a secret file of at most ``limit`` bytes, checked first."""
    check_private_file(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise KeySourceError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise KeySourceError(f"{path} is larger than {limit} bytes: not a key file")
    return data


def read_key_file(path: Path) -> LocalSigner:
    """A raw private key (64 hex digits, optional 0x) from a file of mode 0600."""
    text = read_private_file(path, MAX_KEY_FILE).decode("ascii", errors="replace").strip()
    try:
        return LocalSigner.from_hex(text)
    except ChannelError as exc:  # the message never contains the key
        raise KeySourceError(f"key file {path}: not a valid private key ({exc})") from None


@dataclass(frozen=True, slots=True)
class PasswordSource:
    """Where a keystore's password comes from: exactly one of an environment variable, a file
    (mode 0600; one trailing newline is dropped), or an interactive prompt."""

    env: str | None = None
    file: Path | None = None
    prompt: bool = False

    def __post_init__(self) -> None:
        if (self.env is not None) + (self.file is not None) + self.prompt != 1:
            raise KeySourceError("give exactly one password source: env, file or prompt")

    def read(self, what: str, env: Mapping[str, str] | None = None) -> str:
        if self.env is not None:
            value = (os.environ if env is None else env).get(self.env)
            if not value:
                raise KeySourceError(f"environment variable {self.env} (the password) is not set")
            return value
        if self.file is not None:
            raw = read_private_file(self.file, MAX_PASSWORD)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise KeySourceError(f"password file {self.file} is not UTF-8") from None
            return text[:-1] if text.endswith("\n") else text
        if not sys.stdin.isatty():
            raise KeySourceError(
                f"the password of {what} is to be typed, but there is no terminal; "
                "use password_env or password_file"
            )
        return getpass.getpass(f"password for {what}: ")


def _check_kdf(doc: dict[str, Any], path: Path) -> None:
    crypto = doc.get("crypto", doc.get("Crypto"))
    if not isinstance(crypto, dict) or not isinstance(crypto.get("kdfparams"), dict):
        raise KeySourceError(f"{path} is not an encrypted keystore (no crypto.kdfparams)")
    kdf, params = crypto.get("kdf"), crypto["kdfparams"]

    def bounded(name: str, high: int) -> None:
        value = params.get(name)
        if type(value) is not int or not 1 <= value <= high:
            raise KeySourceError(f"{path}: kdfparams.{name} must be an integer from 1 to {high}")

    if kdf == "scrypt":
        bounded("n", _MAX_SCRYPT_N)
        bounded("r", _MAX_SCRYPT_RP)
        bounded("p", _MAX_SCRYPT_RP)
    elif kdf == "pbkdf2":
        bounded("c", _MAX_PBKDF2_ROUNDS)
    else:
        raise KeySourceError(f"{path}: unsupported key derivation {kdf!r} (scrypt or pbkdf2)")
    bounded("dklen", 64)


def load_keystore(
    path: Path, password: PasswordSource, env: Mapping[str, str] | None = None
) -> AccountSigner:
    """Decrypt a keystore file (mode 0600) into an :class:`AccountSigner`."""
    return AccountSigner.from_key(decrypt_keystore(path, password, env))


def load_keystore_key(
    path: Path, password: PasswordSource, env: Mapping[str, str] | None = None
) -> LocalSigner:
    """Decrypt a keystore file into an in-process key, for a component that signs raw digests
    and its own transactions with it (the watchtower)."""
    return LocalSigner(decrypt_keystore(path, password, env))


def read_keystore_document(path: Path) -> dict[str, Any]:
    """The JSON object in a keystore file (mode 0600), read within bounds on size and nesting
    (no password needed)."""
    raw = read_private_file(path, MAX_KEYSTORE_FILE)
    try:
        doc = boundedjson.loads(raw, max_bytes=MAX_KEYSTORE_FILE, max_depth=8)
    except boundedjson.JsonTooDeep:
        raise KeySourceError(f"{path} nests too deeply: not an encrypted keystore") from None
    except boundedjson.JsonRejected:
        raise KeySourceError(f"{path} is not JSON: not an encrypted keystore") from None
    if not isinstance(doc, dict):
        raise KeySourceError(f"{path} is not an encrypted keystore (not a JSON object)")
    return doc


def decrypt_keystore(
    path: Path, password: PasswordSource, env: Mapping[str, str] | None = None
) -> bytes:
    """The private key in a keystore file (mode 0600), checked against its recorded address."""
    doc = read_keystore_document(path)
    _check_kdf(doc, path)
    secret_text = password.read(str(path), env)
    try:
        secret = Account.decrypt(doc, secret_text)
    except ValueError as exc:
        if "MAC" in str(exc):
            raise KeySourceError(f"wrong password for keystore {path}") from None
        raise KeySourceError(f"{path}: not a usable keystore ({exc})") from None
    except (KeyError, TypeError):
        raise KeySourceError(f"{path}: not a usable keystore (fields missing)") from None
    signer = AccountSigner.from_key(bytes(secret))
    claimed = doc.get("address")
    if isinstance(claimed, str) and claimed.lower().removeprefix("0x") != signer.address.hex():
        raise KeySourceError(f"{path}: the key does not match the keystore's address {claimed}")
    return bytes(secret)


def write_keystore(
    path: Path, secret: bytes, password: str, *, iterations: int | None = None
) -> None:
    """Encrypt ``secret`` (scrypt) into a new keystore file of mode 0600; never overwrites.
    ``iterations`` is scrypt's ``n`` (eth-account's default when None; lower only in tests)."""
    if not password:
        raise KeySourceError("refusing an empty keystore password")
    doc = Account.encrypt(secret, password, kdf="scrypt", iterations=iterations)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeySourceError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeySourceError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.write("\n")
