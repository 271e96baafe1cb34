"""Key files and encrypted keystores: round trip, every password source, and refusals (files
others can read, wrong password, oversize or crafted files, overwrites)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.core import eip712, model
from channels.core.hashing import keccak256
from channels.core.signing import LocalSigner, SignRequest, sign
from channels.signers.account import AccountSigner
from channels.signers.errors import KeySourceError
from channels.signers.keystore import (
    PasswordSource,
    load_keystore,
    read_key_file,
    write_keystore,
)

SECRET = keccak256(b"keystore key")
ADDRESS = LocalSigner(SECRET).address
FAST = 2**4  # scrypt n for tests only (keygen uses eth-account's default)
DOMAIN = eip712.Domain(1, model.Address(b"\x01" * 20))


def _keystore(tmp_path: Path, password: str = "correct horse") -> Path:
    path = tmp_path / "desk.keystore.json"
    write_keystore(path, SECRET, password, iterations=FAST)
    return path


def test_round_trip_with_a_password_from_the_environment(tmp_path: Path) -> None:
    path = _keystore(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    signer = load_keystore(path, PasswordSource(env="PW"), {"PW": "correct horse"})
    assert isinstance(signer, AccountSigner) and signer.address == ADDRESS
    request = SignRequest(DOMAIN, eip712.Login(1, b"\x02" * 32))
    assert sign(signer, request) == LocalSigner(SECRET).sign_digest(request.digest)


def test_password_from_a_file_drops_one_trailing_newline(tmp_path: Path) -> None:
    path = _keystore(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    pw.chmod(0o600)
    assert load_keystore(path, PasswordSource(file=pw)).address == ADDRESS


def test_prompt_without_a_terminal_says_what_to_use(tmp_path: Path) -> None:
    path = _keystore(tmp_path)
    with pytest.raises(KeySourceError, match="no terminal"):
        load_keystore(path, PasswordSource(prompt=True))


def test_wrong_password(tmp_path: Path) -> None:
    path = _keystore(tmp_path)
    with pytest.raises(KeySourceError, match="wrong password"):
        load_keystore(path, PasswordSource(env="PW"), {"PW": "wrong"})


def test_missing_password_variable(tmp_path: Path) -> None:
    path = _keystore(tmp_path)
    with pytest.raises(KeySourceError, match=r"PW .* not set"):
        load_keystore(path, PasswordSource(env="PW"), {})


def test_exactly_one_password_source() -> None:
    with pytest.raises(KeySourceError, match="exactly one"):
        PasswordSource(env="A", prompt=True)
    with pytest.raises(KeySourceError, match="exactly one"):
        PasswordSource()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_files_open_to_others_are_refused_with_the_chmod_to_run(tmp_path: Path, mode: int) -> None:
    path = _keystore(tmp_path)
    path.chmod(mode)
    with pytest.raises(KeySourceError, match=f"run: chmod 600 {path}"):
        load_keystore(path, PasswordSource(env="PW"), {"PW": "correct horse"})
    key_file = tmp_path / "key"
    key_file.write_text(SECRET.hex())
    key_file.chmod(mode)
    with pytest.raises(KeySourceError, match="chmod 600"):
        read_key_file(key_file)
    pw = tmp_path / "pw"
    pw.write_text("correct horse")
    pw.chmod(mode)
    path.chmod(0o600)
    with pytest.raises(KeySourceError, match="chmod 600"):
        load_keystore(path, PasswordSource(file=pw))


def test_key_file_round_trip_and_refusals(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("0x" + SECRET.hex() + "\n")
    key_file.chmod(0o600)
    assert read_key_file(key_file).address == ADDRESS
    key_file.write_text("not a key")
    with pytest.raises(KeySourceError, match="not a valid private key"):
        read_key_file(key_file)
    key_file.write_text("0" * 10_000)
    with pytest.raises(KeySourceError, match="larger than"):
        read_key_file(key_file)
    with pytest.raises(KeySourceError, match="not found"):
        read_key_file(tmp_path / "absent")


def test_never_overwrites_and_refuses_an_empty_password(tmp_path: Path) -> None:
    path = _keystore(tmp_path)
    before = path.read_bytes()
    with pytest.raises(KeySourceError, match="already exists"):
        write_keystore(path, b"\x01" * 32, "other", iterations=FAST)
    assert path.read_bytes() == before
    with pytest.raises(KeySourceError, match="empty"):
        write_keystore(tmp_path / "new.json", SECRET, "", iterations=FAST)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["crypto"]["kdfparams"].update(n=2**30), "kdfparams.n"),
        (lambda d: d["crypto"]["kdfparams"].update(r=10**6), "kdfparams.r"),
        (lambda d: d["crypto"].update(kdf="argon9"), "unsupported key derivation"),
        (lambda d: d.pop("crypto"), "not an encrypted keystore"),
        (lambda d: d.update(address="00" * 20), "does not match"),
    ],
)
def test_crafted_keystores_are_refused(tmp_path: Path, edit: object, match: str) -> None:
    path = _keystore(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeySourceError, match=match):
        load_keystore(path, PasswordSource(env="PW"), {"PW": "correct horse"})


@pytest.mark.parametrize(
    "content", [b"[" * 50_000 + b"]" * 50_000, b"\x00\xff", b"[1, 2]", b"x" * 70_000]
)
def test_garbage_keystore_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeySourceError):
        load_keystore(path, PasswordSource(env="PW"), {"PW": "x"})
