"""The desk config: parsing, defaults, and the refusals that keep keys off the command line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from channels import cli
from channels.cli import ConfigError, load_config, load_signer
from channels.cli.views import channel_view
from channels.core.model import Address

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY_ADDRESS = "70997970c51812dc3a010c7d01b50e0d17dc79c8"
PEER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

FULL = f"""
[node]
key_file = "keys/desk.key"
store = "data/desk.sqlite"
listen_host = "127.0.0.1"
listen_port = 9401
log_level = "DEBUG"
update_timeout = 5
max_deposit_fee_bps = 20
max_tower_lag = 3

[chain]
rpc_url = "http://127.0.0.1:8545"
adjudicator = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
confirmations = 3
poll_interval = 0.25
asset = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
oracle = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
challenge_period = 7200

[peers.desk-b]
address = "{PEER}"
host = "10.0.0.2"
port = 9402
"""


def write(tmp_path: Path, text: str, name: str = "desk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL))
    assert cfg.store == tmp_path / "data" / "desk.sqlite"
    assert cfg.control == tmp_path / "data" / "desk.sqlite.sock"
    assert cfg.key_file == tmp_path / "keys" / "desk.key"
    assert cfg.listen_port == 9401
    assert cfg.log_level == "debug"
    assert cfg.confirmations == 3
    assert cfg.challenge_period == 7200
    assert cfg.adjudicator is not None and cfg.adjudicator.hex().startswith("5fbdb231")
    assert cfg.peers["desk-b"].port == 9402
    assert cfg.peer_name(PEER.lower()) == "desk-b"
    settings = cfg.node_settings()
    assert settings.confirmations == 3
    assert settings.chain_poll_interval == 0.25
    assert settings.update_timeout == 5
    assert settings.max_deposit_fee_bps == 20
    assert settings.max_tower_lag == 3


def test_minimal_config_and_missing_chain(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[node]\nkey_env = "K"\nstore = "a.sqlite"\ncontrol = "c"\n'))
    assert cfg.control == tmp_path / "c"
    assert cfg.listen_port is None
    assert cfg.node_settings().max_deposit_fee_bps == 0  # consent: no transfer fee unless said
    # metrics and /healthz: on by default, loopback only, a port the system picks at start
    assert (cfg.metrics, cfg.metrics_host, cfg.metrics_port) == (True, "127.0.0.1", 0)
    off = load_config(write(tmp_path, '[node]\nkey_env = "K"\nstore = "a"\nmetrics = false\n'))
    assert off.metrics is False
    with pytest.raises(ConfigError, match=r"\[node\] metrics: must be true"):
        load_config(write(tmp_path, '[node]\nkey_env = "K"\nstore = "a"\nmetrics = "yes"\n'))
    with pytest.raises(ConfigError, match=r"rpc_url is not set.*channels chain"):
        cfg.require_chain()


def test_key_from_file_and_env(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    key_file = tmp_path / "keys" / "desk.key"
    key_file.write_text(KEY + "\n")
    os.chmod(key_file, 0o600)
    cfg = load_config(write(tmp_path, FULL))
    assert load_signer(cfg).address.hex() == KEY_ADDRESS
    env_cfg = load_config(write(tmp_path, '[node]\nkey_env = "DESK_KEY"\nstore = "s"\n', "e.toml"))
    assert load_signer(env_cfg, {"DESK_KEY": KEY[2:]}).address.hex() == KEY_ADDRESS


def test_missing_key_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL))
    with pytest.raises(ConfigError, match=r"key file .*desk\.key not found"):
        load_signer(cfg)


def test_unset_key_env(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[node]\nkey_env = "NOPE_KEY"\nstore = "s"\n'))
    with pytest.raises(ConfigError, match=r"NOPE_KEY .* is not set"):
        load_signer(cfg, {})


def test_bad_key_is_not_echoed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[node]\nkey_env = "K"\nstore = "s"\n'))
    with pytest.raises(ConfigError) as info:
        load_signer(cfg, {"K": "zz" + KEY[4:]})
    assert KEY[4:] not in str(info.value)
    assert "not a valid private key" in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f'[node]\nkey = "{KEY}"\nstore = "s"\n', "must not be written in the config"),
        (f'[node]\nprivate_key = "{KEY}"\nstore = "s"\n', "must not be written in the config"),
        (f'[node]\nkey_env = "{KEY}"\nstore = "s"\n', "NAME of an environment variable"),
        ('[node]\nkey_env = "A"\nkey_file = "f"\nstore = "s"\n', "not both"),
        ('[node]\nkey_env = "A"\n', "store is required"),
        ('[node]\nstore = "s"\nlisten_prot = 1\n', "unknown key.*listen_prot"),
        ('[nodes]\nstore = "s"\n', "unknown section"),
        ('[node]\nstore = "s"\nlisten_port = "9401"\n', "listen_port: must be an integer"),
        ('[node]\nstore = "s"\nlog_level = "loud"\n', "log_level"),
        ('[node]\nstore = "s"\n[chain]\nadjudicator = "0x12"\n', "adjudicator"),
        ('[node]\nstore = "s"\n[chain]\nrpc_url = "ftp://x"\n', "rpc_url"),
        (
            '[node]\nstore = "s"\n[peers.b]\naddress = "0x' + "11" * 20 + '"\nport = 1\n',
            "give both",
        ),
        ('[node]\nstore = "s"\n[peers.b]\nhost = "h"\nport = 1\n', "needs its address"),
        ("[node\nstore = 's'\n", "not valid TOML"),
        (
            '[node]\nstore = "s"\n[peers.b]\naddress = "0x'
            + "11" * 20
            + '"\nhost = "h"\nport = 1\nmax_deposit = -1\n',
            "max_deposit",
        ),
        (
            '[node]\nstore = "s"\n[peers.b]\naddress = "0x'
            + "11" * 20
            + '"\nhost = "h"\nport = 1\napprove = ["everything"]\n',
            "approve",
        ),
        (
            '[node]\nstore = "s"\n[peers.b]\naddress = "0x'
            + "11" * 20
            + '"\nhost = "h"\nport = 1\noracles = ["0x12"]\n',
            "oracles",
        ),
        (
            '[node]\nstore = "s"\n[peers.b]\naddress = "0x'
            + "11" * 20
            + '"\nhost = "h"\nport = 1\nmin_challenge_period = 9\nmax_challenge_period = 8\n',
            "above max_challenge_period",
        ),
    ],
)
def test_refusals(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(write(tmp_path, text))
    assert KEY[2:] not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_value_parsers() -> None:
    assert cli.parse_amount("1_000_000") == 1_000_000
    assert cli.parse_price("3000") == 3000 * 10**8
    assert cli.parse_price("2999.5") == 299_950_000_000
    assert cli.parse_quantity("0.5") == 5 * 10**17
    assert cli.parse_duration("1d12h") == 36 * 3600
    assert cli.parse_duration("90m") == 5400
    assert cli.parse_expiry("+7d") == cli.Expiry(relative=7 * 86400)
    assert cli.parse_expiry("1700000000") == cli.Expiry(absolute=1_700_000_000)
    assert cli.parse_expiry("2023-11-14T22:13:20Z") == cli.Expiry(absolute=1_700_000_000)
    assert cli.parse_endpoint("127.0.0.1:9402") == ("127.0.0.1", 9402)
    for bad, fn in (
        ("-1", cli.parse_amount),
        ("1.5", cli.parse_amount),
        ("0.000000001", cli.parse_price),
        ("7x", cli.parse_duration),
        ("tomorrow", cli.parse_expiry),
        ("host", cli.parse_endpoint),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(bad)  # type: ignore[operator]


def test_formatting() -> None:
    assert cli.fmt_amount(1234567) == "1_234_567"
    assert cli.fmt_fixed(300050000000, 8) == "3000.5"
    assert cli.fmt_fixed(10**18, 18) == "1"
    assert cli.fmt_duration(90061) == "1d1h"
    assert cli.fmt_duration(59) == "59s"
    view = channel_view(
        {
            "id": "0x" + "ab" * 32,
            "peer": PEER,
            "peer_connected": True,
            "our_index": 1,
            "phase": "open",
            "version": 7,
            "our_balance": 1_000_000,
            "their_balance": 5,
            "locked": 0,
            "positions": [],
            "finality": "off-chain final",
            "asset": PEER,
            "asset_decimals": 6,
            "challenge_period": 3600,
            "next_expiry": 1000 + 3600,
            "dispute_deadline": None,
        },
        None,
        raw=False,
    )
    assert (view["ours"], view["theirs"], view["challenge_period"]) == ("1", "0.000005", "PT1H")
    assert view["next_expiry"] == "1970-01-01T01:16:40Z"
    table = cli.status_table([view], now=1000)
    header, row = table.splitlines()
    assert header.split() == [
        "CHANNEL",
        "PEER",
        "ONLINE",
        "PHASE",
        "VER",
        "OURS",
        "THEIRS",
        "LOCKED",
        "POS",
        "FINALITY",
        "NEXT",
    ]
    assert "0xabababab" in row and " 1  0.000005 " in row and "expiry 1970-01-01T01:16:40Z" in row
    raw = channel_view({**json_row(view), "our_balance": 1_000_000, "their_balance": 5}, None, True)
    assert (raw["ours"], raw["theirs"]) == (1_000_000, 5)


def json_row(view: dict[str, object]) -> dict[str, object]:
    """The control row ``view`` was made from, enough of it for another view."""
    return {
        "id": view["id"],
        "peer": view["peer_address"],
        "phase": view["phase"],
        "version": view["version"],
        "locked": 0,
        "positions": [],
        "finality": view["finality"],
        "asset": view["asset"],
        "asset_decimals": view["asset_decimals"],
        "challenge_period": 3600,
    }


def test_peer_by_name_or_address(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL))
    by_name = argparse.Namespace(peer="desk-b")
    assert cli.peer_target(by_name, cfg) == (bytes.fromhex(PEER[2:]), "10.0.0.2", 9402)
    explicit = argparse.Namespace(peer=f"{PEER}@127.0.0.1:9500")
    assert cli.peer_target(explicit, None) == (bytes.fromhex(PEER[2:]), "127.0.0.1", 9500)
    for bad in ("desk-c", f"{PEER}@nohost", "0x12@127.0.0.1:1"):
        with pytest.raises(cli.UsageError):
            cli.peer_target(argparse.Namespace(peer=bad), cfg)


def test_peer_terms_default_to_nothing_and_read_what_is_declared(tmp_path: Path) -> None:
    from channels.cli.desk_trust import trust_with
    from channels.core.consent import TradeClass
    from channels.core.model import address

    asset = address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
    cfg = load_config(write(tmp_path, FULL))
    terms, _, _ = cfg.peers["desk-b"].terms.resolve({})
    assert terms.assets[asset].max_deposit == 0  # declared, but we fund nothing until we say so
    assert cfg.peers["desk-b"].terms.approve == frozenset()
    cfg = load_config(
        write(
            tmp_path,
            FULL + 'max_channels = 2\napprove = ["buy", "unwind"]\n'
            'oracles = ["0x' + "22" * 20 + '"]\nmax_open_positions = 3\n'
            "[peers.desk-b.assets.usdc]\n"
            'address = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"\n'
            'max_deposit = "0.5"\nmax_loss = "10"\n',
        )
    )
    peer = cfg.peers["desk-b"]
    terms, limits, by_asset = peer.terms.resolve({asset: 6})
    assert terms.assets[asset].max_deposit == 500_000 == terms.assets[asset].max_total
    assert terms.max_channels == 2
    assert terms.oracles == frozenset({address("0x" + "22" * 20)})
    assert peer.terms.approve == {TradeClass.WE_BUY, TradeClass.UNWIND}
    assert limits.max_open_positions == 3 and limits.max_loss is None
    assert by_asset[asset].max_open_positions == 3 and by_asset[asset].max_loss == 10_000_000
    trust = trust_with(cfg, {asset: 6})
    assert trust.peers[0].limits_for(asset).max_loss == 10_000_000
    assert [p.name for p in trust.peers] == ["desk-b"] and trust.decide is None
    assert trust.admit is None and trust.accept_channel is None


NODE = '[node]\nkey_env = "K"\nstore = "s"\n'


def test_gas_reserve_and_connection_caps_from_the_node_table(tmp_path: Path) -> None:
    from channels.cli.desk_trust import trust_with
    from channels.core.reserve import GasReserve
    from channels.core.trust import Trust

    # Unset: the library's defaults (reserve at 100 gwei, 50 % alarm margin; the driver bumps
    # without a cap; 2 links per identity, 32 for undeclared peers together).
    plain = load_config(write(tmp_path, NODE))
    assert plain.node_settings().gas_reserve == GasReserve()
    assert plain.node_settings().tx_policy is None
    trust = trust_with(plain, {})
    assert (trust.max_links_per_peer, trust.max_undeclared_links) == (
        Trust().max_links_per_peer,
        Trust().max_undeclared_links,
    )
    cfg = load_config(
        write(
            tmp_path,
            NODE + "max_fee_per_gas_gwei = 40\ngas_reserve_alarm_margin_percent = 200\n"
            "max_links_per_peer = 1\nmax_undeclared_links = 0\n",
        )
    )
    settings = cfg.node_settings()
    assert settings.gas_reserve == GasReserve(max_fee_per_gas=40 * 10**9, alarm_margin_percent=200)
    # One fee cap: the reserve is counted at the fee the dispute driver bumps up to.
    assert settings.tx_policy is not None and settings.tx_policy.max_fee_per_gas == 40 * 10**9
    trust = trust_with(cfg, {})
    assert (trust.max_links_per_peer, trust.max_undeclared_links) == (1, 0)
    fractional = load_config(write(tmp_path, NODE + "max_fee_per_gas_gwei = 0.05\n"))
    assert fractional.node_settings().gas_reserve.max_fee_per_gas == 50_000_000  # an L2's fee


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("max_fee_per_gas_gwei = 0", "max_fee_per_gas_gwei: must be more than 0"),
        ("max_fee_per_gas_gwei = -5", "max_fee_per_gas_gwei: must be more than 0"),
        ("max_fee_per_gas_gwei = 2_000_000", "max_fee_per_gas_gwei: must be more than 0"),
        ('max_fee_per_gas_gwei = "100"', "max_fee_per_gas_gwei: must be a number of gwei"),
        ("max_fee_per_gas_gwei = true", "max_fee_per_gas_gwei: must be a number of gwei"),
        ("max_fee_per_gas_gwei = nan", "max_fee_per_gas_gwei: must be more than 0"),
        ("max_fee_per_gas_gwei = 1e-10", "max_fee_per_gas_gwei: has more decimals than a wei"),
        ("gas_reserve_alarm_margin_percent = -1", "gas_reserve_alarm_margin_percent: must be"),
        ("gas_reserve_alarm_margin_percent = 12.5", "gas_reserve_alarm_margin_percent: must be"),
        ("max_links_per_peer = 0", "max_links_per_peer: must be an integer from 1"),
        ('max_links_per_peer = "2"', "max_links_per_peer: must be an integer from 1"),
        ("max_undeclared_links = -1", "max_undeclared_links: must be an integer from 0"),
        ("max_undeclared_links = 1.5", "max_undeclared_links: must be an integer from 0"),
        ("gas_reserve = 1", "unknown key.*gas_reserve"),
    ],
)
def test_bad_gas_reserve_and_cap_values_are_refused_naming_the_key(
    tmp_path: Path, line: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=r"\[node\] " + key if ":" in key else key):
        load_config(write(tmp_path, NODE + line + "\n"))


def test_sample_configs_parse_and_point_at_each_other() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    a = load_config(examples / "desk-a.toml")
    b = load_config(examples / "desk-b.toml")
    assert a.control == examples / "desk-a.sqlite.sock"
    assert a.peers["desk-b"].port == b.listen_port
    assert b.peers["desk-a"].port == a.listen_port
    assert a.adjudicator == b.adjudicator and a.asset == b.asset
    key_a = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil dev 1
    key_b = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # anvil dev 2
    assert load_signer(a, {"DESK_A_KEY": key_a}).address == b.peers["desk-a"].address
    assert load_signer(b, {"DESK_B_KEY": key_b}).address == a.peers["desk-b"].address
    # Shipped examples consent to nothing the peer asks: the operator lists what they accept.
    assert a.peers["desk-b"].terms.approve == frozenset() == b.peers["desk-a"].terms.approve
    assert "approve = []" in (examples / "desk-a.toml").read_text()
    assert a.asset is not None
    terms, _, by_asset = a.peers["desk-b"].terms.resolve({a.asset: 6})  # the test token's
    assert terms.assets[Address(a.asset)].max_deposit == 1000 * 10**6
    assert by_asset[Address(a.asset)].max_loss == 3000 * 10**6


def test_dev_desks_consent_only_to_the_walk_through_trades(tmp_path: Path) -> None:
    from adjudicator.devchain import DEV_PRIVATE_KEYS
    from channels.cli.desks import write_dev_desks
    from channels.core.consent import TradeClass

    token = Address(bytes.fromhex("e7f1725E7734CE288F8367e1Bb143E90bb3F0512"))
    desks = write_dev_desks(
        tmp_path / "desks",
        rpc_url="http://127.0.0.1:8545",
        adjudicator=bytes.fromhex("5FbDB2315678afecb367f032d93F642f64180aa3"),
        token=token,
        token_decimals=6,
        private_keys=DEV_PRIVATE_KEYS,
    )
    for desk in desks:
        cfg = load_config(desk.config)
        assert cfg.quotes is not None and len(cfg.quotes.rows) == 1  # the dev quote table
        for peer in cfg.peers.values():
            assert peer.terms.approve == {
                TradeClass.WE_BUY,
                TradeClass.WE_WRITE,
                TradeClass.UNWIND,
            }
            terms, _, _ = peer.terms.resolve({token: 6})
            assert terms.assets[token].max_deposit == 100_000 * 10**6  # "100000" tokens

