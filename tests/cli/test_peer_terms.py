"""A peer's terms in a desk config: amounts per asset in the asset's units (``KEY_raw`` for smallest
units), per-underlying notional, durations; an old config's bare smallest-unit integers refused
with the way to migrate, each error naming its table and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.cli import ConfigError, load_config
from channels.cli.desk_trust import asset_decimals, trust_with
from channels.core.model import Address, address, symbol

TOKEN = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
ASSET = address(TOKEN)
ETH = Address(bytes(20))
PEER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

BASE = f"""
[node]
store = "desk.sqlite"

[chain]
asset = "{TOKEN}"
oracle = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"

[peers.desk-b]
address = "{PEER}"
"""
ASSET_TABLE = f'\n[peers.desk-b.assets.usdc]\naddress = "{TOKEN}"\n'


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "desk.toml"
    path.write_text(BASE + text)
    return load_config(path)


def test_amounts_are_in_each_assets_units_and_raw_when_asked(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        'max_open_positions = 7\nmin_time_to_expiry = "1h"\nmax_expiry_horizon = "PT48H"\n'
        "min_challenge_period = 600\n"
        + ASSET_TABLE
        + 'max_deposit = "1_000.5"\nmax_total_deposit_raw = 5000000000\n'
        'max_collateral_locked = "40"\nmax_premium_per_day_raw = 7\nmax_loss = "0.000001"\n'
        'max_notional = "50000"\nmax_notional_by_underlying = { BTC-USD = "20000" }\n'
        "max_notional_by_underlying_raw = { SOL-USD = 3 }\n"
        '\n[peers.desk-b.assets.ether]\naddress = "ETH"\nmax_deposit = "0.5"\n',
    )
    terms, limits, by_asset = cfg.peers["desk-b"].terms.resolve({ASSET: 6, ETH: 18})
    assert terms.assets[ASSET].max_deposit == 1_000_500_000
    assert terms.assets[ASSET].max_total == 5_000_000_000
    assert terms.assets[ETH].max_deposit == terms.assets[ETH].max_total == 5 * 10**17
    assert terms.min_challenge_period == 600 and terms.max_challenge_period == 7 * 86400
    token = by_asset[ASSET]
    assert (token.max_collateral_locked, token.max_premium_per_day, token.max_loss) == (
        40_000_000,
        7,
        1,
    )
    assert token.notional_limit(symbol("ETH-USD")) == 50_000_000_000
    assert token.notional_limit(symbol("BTC-USD")) == 20_000_000_000
    assert token.notional_limit(symbol("SOL-USD")) == 3
    # The counts and times hold for every asset, the amounts only for their own.
    for lim in (limits, token, by_asset[ETH]):
        assert (lim.max_open_positions, lim.min_time_to_expiry, lim.max_expiry_horizon) == (
            7,
            3600,
            48 * 3600,
        )
    assert limits.max_loss is None and by_asset[ETH].max_loss is None
    peer = trust_with(cfg, {ASSET: 6, ETH: 18}).peers[0]
    assert peer.limits_for(ASSET) == token and peer.limits_for(Address(bytes([1]) * 20)) == limits


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # An old config: amounts in the peer's table, bare smallest units of any asset.
        (
            "max_deposit = 1_000_000\n",
            r"\[peers.desk-b\] max_deposit: amounts are per asset now.*"
            r"\[peers.desk-b.assets.LABEL\].*max_deposit_raw",
        ),
        ("max_loss = 10\n", r"\[peers.desk-b\] max_loss: amounts are per asset now"),
        ('max_notional = "5"\n', r"\[peers.desk-b\] max_notional: amounts are per asset now"),
        (
            f'assets = ["{TOKEN}"]\n',
            r"\[peers.desk-b\] assets: is a table per asset now: \[peers.desk-b.assets.LABEL\]",
        ),
        # In an asset's table a bare number is refused too: it used to mean smallest units.
        (
            ASSET_TABLE + "max_deposit = 1000000\n",
            r"\[peers.desk-b.assets.usdc\] max_deposit: write it in the asset's units as a "
            r"string.*max_deposit_raw",
        ),
        (
            ASSET_TABLE + "max_notional_by_underlying = { ETH-USD = 5 }\n",
            r"max_notional_by_underlying.ETH-USD: write it in the asset's units",
        ),
        (
            ASSET_TABLE + 'max_deposit = "1"\nmax_deposit_raw = 1\n',
            r"\[peers.desk-b.assets.usdc\] max_deposit: given twice",
        ),
        (ASSET_TABLE + 'max_loss = "-1"\n', r"assets.usdc\] max_loss: must be a non-negative"),
        (ASSET_TABLE + 'max_loss = "lots"\n', r"assets.usdc\] max_loss: not a number"),
        (ASSET_TABLE + "max_loss_raw = 1.5\n", r"assets.usdc\] max_loss_raw: must be an integer"),
        (ASSET_TABLE + 'max_lose = "1"\n', r"assets.usdc\]: unknown key\(s\): max_lose"),
        ('\n[peers.desk-b.assets.usdc]\nmax_deposit = "1"\n', r"usdc\] address: .*missing"),
        (
            ASSET_TABLE + f'\n[peers.desk-b.assets.again]\naddress = "{TOKEN}"\n',
            r"assets.again\] address: the asset has another table",
        ),
        (
            ASSET_TABLE + 'max_notional_by_underlying = { "" = "1" }\n',
            r"max_notional_by_underlying: '' is not an underlying",
        ),
        ('min_time_to_expiry = "soon"\n', r"\[peers.desk-b\] min_time_to_expiry: not a duration"),
        ("max_open_positions = -1\n", r"\[peers.desk-b\] max_open_positions: must be"),
        ('min_challenge_period = "8d"\n', r"min_challenge_period: is above max_challenge"),
    ],
)
def test_refusals_name_the_table_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_an_amount_finer_than_its_asset_is_refused_when_the_desk_starts(tmp_path: Path) -> None:
    cfg = load(tmp_path, ASSET_TABLE + 'max_deposit = "0.0000001"\n')
    assert trust_with(cfg, {ASSET: 18}).peers[0].terms.assets[ASSET].max_deposit == 10**11
    with pytest.raises(
        ConfigError,
        match=r"assets.usdc\] max_deposit: 0.0000001 has more than the asset's 6 decimals",
    ):
        trust_with(cfg, {ASSET: 6})


def test_decimals_come_from_the_chain_only_when_an_amount_needs_them(tmp_path: Path) -> None:
    """ETH's are known (18); raw amounts need none; a token's are read from the chain (the
    TCP tests, tests/node/test_consent_terms_limits.py, read them from anvil)."""
    raw_only = load(tmp_path, ASSET_TABLE + "max_deposit_raw = 5\n")
    ether = load(tmp_path, '\n[peers.desk-b.assets.eth]\naddress = "ETH"\nmax_deposit = "1"\n')
    assert raw_only.rpc_url is None  # no chain to ask: and none is asked
    assert trio.run(asset_decimals, raw_only) == {}
    assert trio.run(asset_decimals, ether) == {ETH: 18}
    needs_chain = load(tmp_path, ASSET_TABLE + 'max_deposit = "1"\n')
    with pytest.raises(ConfigError, match="rpc_url is not set"):
        trio.run(asset_decimals, needs_chain)
