"""``channels deploy`` and ``channels tower`` take their key the way a desk does (docs/SIGNERS.md):
an encrypted keystore with its password from a variable, a file or a prompt; never a raw key on
the command line. Real anvil; each wrong key option is one usage error (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from adjudicator import devchain
from adjudicator.rpc import open_rpc
from channels import cli
from channels.cli.tower_cmd import load_tower_config, tower_key
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner
from channels.signers.keystore import write_keystore

PASSWORD = "deployer passphrase"


@pytest.fixture(scope="module")
def anvil() -> Iterator[devchain.DevChain]:
    with devchain.anvil(devchain.AnvilConfig()) as dev:
        yield dev


def keystore_of(path: Path, private_key: str) -> Path:
    write_keystore(path, LocalSigner.from_hex(private_key).secret, PASSWORD, iterations=1024)
    return path


def test_deploy_from_a_keystore(
    anvil: devchain.DevChain,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keystore = keystore_of(tmp_path / "deployer.json", anvil.private_keys[5])
    monkeypatch.setenv("OC_DEPLOYER_PASSWORD", PASSWORD)
    deploy = ["deploy", "--rpc-url", anvil.url, "--keystore", str(keystore)]
    capsys.readouterr()
    assert cli.main(["--json", *deploy, "--password-env", "OC_DEPLOYER_PASSWORD"]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert deployed["adjudicator"] == to_checksum(bytes.fromhex(deployed["adjudicator"][2:]))

    async def code_at(address: str) -> bytes:
        async with open_rpc(anvil.url) as rpc:
            return await rpc.get_code(address)

    assert len(trio.run(code_at, deployed["adjudicator"])) > 100

    # the password from a file of mode 0600 works too; one open to others is refused
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o644)
    assert cli.main([*deploy, "--password-file", str(password_file)]) == 2
    assert "chmod 600" in capsys.readouterr().err
    password_file.chmod(0o600)
    assert cli.main([*deploy, "--password-file", str(password_file)]) == 0
    assert capsys.readouterr().out.startswith("0x")

    # wrong password, two key options, no key: one usage error each, nothing deployed
    monkeypatch.setenv("OC_DEPLOYER_PASSWORD", "not it")
    assert cli.main([*deploy, "--password-env", "OC_DEPLOYER_PASSWORD"]) == 2
    assert "wrong password" in capsys.readouterr().err
    monkeypatch.setenv("OC_DEPLOYER_KEY", anvil.private_keys[5])
    assert cli.main([*deploy, "--key-env", "OC_DEPLOYER_KEY"]) == 2
    assert "give one key option" in capsys.readouterr().err
    assert cli.main(["deploy", "--rpc-url", anvil.url]) == 2
    assert "--keystore FILE" in capsys.readouterr().err
    assert cli.main(["deploy", "--rpc-url", anvil.url, "--private-key", "0x" + "11" * 32]) == 2


def test_tower_key_from_a_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = LocalSigner.generate()
    write_keystore(tmp_path / "tower.json", secret.secret, PASSWORD, iterations=1024)
    (tmp_path / "pw").write_text(PASSWORD)
    (tmp_path / "pw").chmod(0o600)
    common = (
        'store = "tower.sqlite"\nclients = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]\n'
        '[chain]\nrpc_url = "http://127.0.0.1:8545"\n'
        'adjudicator = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\n'
    )

    def tower(keys: str) -> Path:
        path = tmp_path / "tower.toml"
        path.write_text(f"[tower]\n{keys}\n{common}")
        return path

    cfg = load_tower_config(str(tower('keystore = "tower.json"\npassword_file = "pw"')))
    assert tower_key(cfg).address == secret.address
    monkeypatch.setenv("OC_TOWER_PASSWORD", "not it")
    by_env = 'keystore = "tower.json"\npassword_env = "OC_TOWER_PASSWORD"'
    cfg = load_tower_config(str(tower(by_env)))
    with pytest.raises(cli.ConfigError, match="wrong password"):
        tower_key(cfg)
    with pytest.raises(cli.ConfigError, match=r"unknown key.*remote"):
        load_tower_config(str(tower('remote = "http://127.0.0.1:8550"')))
    with pytest.raises(cli.ConfigError, match="key_env, key_file or keystore"):
        load_tower_config(str(tower("")))
    with pytest.raises(cli.ConfigError, match="needs one of password_env"):
        load_tower_config(str(tower('keystore = "tower.json"')))
