"""The desk config picks the channel key and the gas key independently (key file, keystore,
remote signer); ``channels keygen`` and ``channels address``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.cli import main
from channels.cli.config import ConfigError, load_config, load_gas_key, load_signer
from channels.core.hashing import keccak256
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner
from channels.signers.account import AccountSigner
from channels.signers.keystore import write_keystore
from channels.signers.remote import RemoteSigner

from .conftest import SECRET as REMOTE_SECRET

CHANNEL_SECRET = keccak256(b"channel key")
CHANNEL = to_checksum(LocalSigner(CHANNEL_SECRET).address)
REMOTE = to_checksum(LocalSigner(REMOTE_SECRET).address)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "desk.toml"
    path.write_text('[node]\nstore = "desk.sqlite"\n' + text)
    return path


def _keystore(tmp_path: Path) -> Path:
    path = tmp_path / "channel.json"
    write_keystore(path, CHANNEL_SECRET, "pw", iterations=16)
    return path


def test_keystore_channel_key_and_remote_gas_key(tmp_path: Path, honest_url: str) -> None:
    _keystore(tmp_path)
    cfg = load_config(
        _write(
            tmp_path,
            '[keys.channel]\nkeystore = "channel.json"\npassword_env = "PW"\n'
            f'[keys.gas]\nremote = "{honest_url}"\ntimeout = 5\n',
        )
    )
    signer = load_signer(cfg, {"PW": "pw"})
    assert isinstance(signer, AccountSigner) and to_checksum(signer.address) == CHANNEL
    gas = load_gas_key(cfg)
    assert isinstance(gas, RemoteSigner) and to_checksum(gas.address) == REMOTE
    gas.close()


def test_remote_channel_key_and_key_file_gas_key(tmp_path: Path, honest_url: str) -> None:
    key = tmp_path / "gas.key"
    key.write_text(CHANNEL_SECRET.hex())
    key.chmod(0o600)
    cfg = load_config(
        _write(
            tmp_path, f'[keys.channel]\nremote = "{honest_url}"\n[keys.gas]\nkey_file = "gas.key"\n'
        )
    )
    signer = load_signer(cfg)
    assert isinstance(signer, RemoteSigner) and to_checksum(signer.address) == REMOTE
    signer.close()
    assert load_gas_key(cfg) == CHANNEL_SECRET


def test_no_gas_table_means_the_channel_key_pays(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[keys.channel]\nkey_env = "K"\n'))
    assert load_gas_key(cfg) is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[keys.channel]\nkey_env = "K"\nkeystore = "x"\n', "exactly one of"),
        ("[keys.channel]\n", "exactly one of"),
        ('[keys.channel]\nkey_env = "K"\npassword_env = "P"\n', "only a keystore has a password"),
        ('[keys.channel]\nkeystore = "x.json"\n', "needs one of password_env"),
        ('[keys.channel]\nkey_env = "K"\naddress = "0x' + "11" * 20 + '"\n', "only for a remote"),
        ('[keys.channel]\nremote = "ftp://x"\n', "http:// or https://"),
        ('[keys.channel]\nkey_env = "K"\nsecret = "s"\n', "unknown key"),
        ('[keys.other]\nkey_env = "K"\n', "unknown table"),
        ('[keys.gas]\nkey_env = "0x' + "ab" * 32 + '"\n', "NAME of an environment variable"),
    ],
)
def test_bad_key_tables_are_refused(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, text))


def test_the_channel_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_text('[node]\nstore = "s"\nkey_env = "A"\n[keys.channel]\nkey_env = "B"\n')
    with pytest.raises(ConfigError, match="given twice"):
        load_config(path)


def test_a_key_file_others_can_read_is_refused_with_the_chmod_to_run(tmp_path: Path) -> None:
    key = tmp_path / "desk.key"
    key.write_text(CHANNEL_SECRET.hex())
    key.chmod(0o644)
    legacy = tmp_path / "legacy.toml"
    legacy.write_text('[node]\nstore = "s"\nkey_file = "desk.key"\n')
    with pytest.raises(ConfigError, match=f"run: chmod 600 {key}"):
        load_signer(load_config(legacy))
    cfg = load_config(_write(tmp_path, '[keys.gas]\nkey_file = "desk.key"\n'))
    with pytest.raises(ConfigError, match="chmod 600"):
        load_gas_key(cfg)


def test_a_wrong_keystore_password_names_the_file(tmp_path: Path) -> None:
    _keystore(tmp_path)
    cfg = load_config(
        _write(tmp_path, '[keys.channel]\nkeystore = "channel.json"\npassword_env = "PW"\n')
    )
    with pytest.raises(ConfigError, match="wrong password for keystore"):
        load_signer(cfg, {"PW": "nope"})


def test_keygen_then_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEW_PW", "s3cret")
    store = tmp_path / "k.json"
    argv = ["keygen", "-o", str(store), "--password-env", "NEW_PW", "--scrypt-n", "16", "--json"]
    assert main(argv) == 0
    made = json.loads(capsys.readouterr().out)
    assert store.stat().st_mode & 0o777 == 0o600
    assert main(["address", "--keystore", str(store)]) == 0
    assert capsys.readouterr().out.strip() == made["address"]
    assert main(argv) == 2  # never overwrites
    refused = capsys.readouterr()
    assert "already exists" in refused.out + refused.err  # with --json the error is JSON
    cfg = tmp_path / "d.toml"
    cfg.write_text(
        '[node]\nstore = "s"\n[keys.channel]\nkeystore = "k.json"\npassword_env = "NEW_PW"\n'
    )
    assert main(["address", "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "channel": made["address"],
        "gas": made["address"],
    }


def test_keygen_without_a_terminal_or_password_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "-o", str(tmp_path / "k.json")]) == 2
    assert "--password-env" in capsys.readouterr().err
    assert not (tmp_path / "k.json").exists()


def test_address_of_a_remote_signer(honest_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["address", "--remote", honest_url]) == 0
    assert capsys.readouterr().out.strip() == REMOTE
