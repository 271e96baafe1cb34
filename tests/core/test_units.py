"""Amounts in an asset's units both ways, exactly (channels/core/units.py), and the hostile values
a person's input, a desk's TOML or a quote table can carry: a huge exponent, more digits than
``Decimal``'s default 28, a value finer than the asset."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from channels.cli import ConfigError, load_config
from channels.cli.format import fmt_fixed
from channels.cli.units import UnitError, parse_units
from channels.core.units import MAX_DIGITS, fmt_units, scale_exact

TOKEN = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


@pytest.mark.parametrize(
    "value, decimals, shown",
    [
        (1_500_000, 6, "1.5"),
        (0, 6, "0"),
        (-1_500_000, 6, "-1.5"),
        (7, 0, "7"),
        (1, 18, "0.000000000000000001"),
        (2**200 + 1, 6, f"{(2**200 + 1) // 10**6}.{(2**200 + 1) % 10**6:06d}".rstrip("0")),
        (2**256 - 1, 0, str(2**256 - 1)),
    ],
)
def test_amounts_are_shown_exactly_at_any_size(value: int, decimals: int, shown: str) -> None:
    assert fmt_units(value, decimals) == shown == fmt_fixed(value, decimals)


@pytest.mark.parametrize(
    "text, decimals, scaled",
    [
        ("1.5", 6, 1_500_000),
        ("1.50000000", 6, 1_500_000),
        ("1.0000005", 6, None),  # finer than the asset
        ("1.0000000000000000000000000001", 6, None),  # 29 digits: was rounded to 1_000_000
        (str(2**128 - 1), 0, 2**128 - 1),  # 39 digits: was rounded to 28 significant ones
        ("1e999999", 6, 10**MAX_DIGITS),  # was decimal.Overflow
        ("-1e999999", 6, -(10**MAX_DIGITS)),
        ("1e-999999", 6, None),
        ("0e-999999", 6, 0),
        ("NaN", 6, None),
        ("Infinity", 6, None),
    ],
)
def test_scaling_is_exact_or_refused(text: str, decimals: int, scaled: int | None) -> None:
    assert scale_exact(Decimal(text), decimals) == scaled


def test_a_typed_amount_is_read_exactly_and_a_huge_one_does_not_crash() -> None:
    assert parse_units(str(2**128 - 1), 0) == 2**128 - 1
    assert parse_units("1e999999", 6) == 10**MAX_DIGITS  # refused by the amount's own bound
    with pytest.raises(UnitError, match="more than the asset's 6 decimals"):
        parse_units("1.0000000000000000000000000001", 6)


def test_a_huge_amount_in_a_desks_config_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(
        f'[node]\nstore = "desk.sqlite"\n\n[chain]\nasset = "{TOKEN}"\n'
        'oracle = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"\n\n'
        '[peers.desk-b]\naddress = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"\n\n'
        f'[peers.desk-b.assets.usdc]\naddress = "{TOKEN}"\nmax_deposit = "1e999999"\n'
    )
    with pytest.raises(ConfigError, match=r"usdc\] max_deposit: too large or too fine"):
        load_config(path)


@pytest.mark.parametrize("strike", ['"1e999999"', str(2**200)])
def test_a_huge_strike_in_a_quote_table_is_refused_by_name(tmp_path: Path, strike: str) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(
        '[node]\nstore = "desk.sqlite"\n\n[quotes]\n\n[[quotes.table]]\nunderlying = "ETH-USD"\n'
        f'kind = "call"\nstrike = {strike}\nside = "buy"\nprice_raw = 1\ncollateral_raw = 1\n'
    )
    with pytest.raises(ConfigError, match=r"row 1 strike: too large"):
        load_config(path)
