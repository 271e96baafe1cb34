"""Firm quotes through the control socket (what the CLI sends), with a desk whose pricer is the
quote table of its TOML config and a desk whose operator answers by hand."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from channels import open_node
from channels.cli.config import ConfigError, load_config
from channels.cli.quote_table import TableAmount
from channels.control import ControlError, connect_control, serve_control
from channels.core.model import QUANTITY_SCALE, to_checksum
from channels.core.trust import Trust
from tests.partners import partners

from ._helpers import FAST, open_channel
from .conftest import Desks

TABLE = """
[node]
store = "b.sqlite"

[quotes]
valid_for = 120

[[quotes.table]]
underlying = "ETH-USD"
kind = "call"
strike = "3000"
side = "buy"
price_raw = 25_000
collateral = "0.4"
max_quantity = "5"
"""


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are short: not under pytest's long tmp_path.
    with tempfile.TemporaryDirectory(prefix="q") as d:
        yield Path(d)


def test_quote_table_errors_name_the_key(tmp_path: Path) -> None:
    for bad, words in (
        ("[quotes]\nvalid_for = 0\n", "valid_for"),
        ("[quotes]\nspread = 1\n", "unknown key"),
        ('[[quotes.table]]\nunderlying = "ETH"\nkind = "call"\n', "missing key"),
        (
            '[[quotes.table]]\nunderlying = "ETH"\nkind = "swap"\nstrike = 1\nside = "buy"\n'
            'price = "1"\ncollateral = "1"\n',
            "kind call|put",
        ),
        (
            '[[quotes.table]]\nunderlying = "ETH"\nkind = "call"\nstrike = "1.000000001"\n'
            'side = "buy"\nprice = "1"\ncollateral = "1"\n',
            "strike",
        ),
        (
            '[[quotes.table]]\nunderlying = "ETH"\nkind = "call"\nstrike = 1\nside = "buy"\n'
            'price = "1"\ncollateral = "0"\n',
            "collateral",
        ),
        (
            '[[quotes.table]]\nunderlying = "ETH"\nkind = "call"\nstrike = 1\nside = "buy"\n'
            'price = 1500000\ncollateral = "1"\n',
            "price: write it in the asset's units as a string",
        ),
        (
            '[[quotes.table]]\nunderlying = "ETH"\nkind = "call"\nstrike = 1\nside = "buy"\n'
            'price = "1"\nprice_raw = 1\ncollateral = "1"\n',
            "exactly one of them",
        ),
        (
            '[[quotes.table]]\nunderlying = "ETH"\nkind = "call"\nstrike = 1\nside = "buy"\n'
            'price = "1"\n',
            "collateral",
        ),
    ):
        path = tmp_path / "desk.toml"
        path.write_text('[node]\nstore = "x.sqlite"\n' + bad)
        with pytest.raises(ConfigError, match=words):
            load_config(path)


def test_quote_table_amounts_scale_by_the_assets_decimals() -> None:
    # "1.5" is 1.5 of the channel's asset: 1,500,000 of a 6-decimal token, 1.5e18 of an
    # 18-decimal one; an amount finer than the asset's decimals has no price (the row declines).
    assert TableAmount(units=Decimal("1.5")).in_smallest_units(6) == 1_500_000
    assert TableAmount(units=Decimal("1.5")).in_smallest_units(18) == 15 * 10**17
    assert TableAmount(units=Decimal("0.0000001")).in_smallest_units(6) is None
    assert TableAmount(raw=7).in_smallest_units(18) == 7


def only_quotes(desks: Desks, partner: bytes) -> Trust:
    """The partner declared; value-moving trades only as fills of live quotes (no hook)."""
    return partners(partner, assets=[desks.token], oracles=[desks.oracle.address], decide=False)


async def test_rfq_answer_and_fill_through_the_control_socket(
    desks: Desks, tmp_path: Path, sock_dir: Path
) -> None:
    config = tmp_path / "b.toml"
    config.write_text(TABLE)
    table = load_config(config).quotes
    assert table is not None and len(table.rows) == 1
    with trio.fail_after(150):
        async with (
            open_node(
                signer=desks.bob,
                store=tmp_path / "b.sqlite",
                chain=desks.url,
                adjudicator=desks.adjudicator,
                listen=("127.0.0.1", 0),
                settings=FAST,
                pricer=table.price,
                quote_limits=table.limits(),
                trust=only_quotes(desks, desks.alice.address),
            ) as bob,
            open_node(
                signer=desks.alice,
                store=tmp_path / "a.sqlite",
                chain=desks.url,
                adjudicator=desks.adjudicator,
                settings=FAST,
                trust=only_quotes(desks, desks.bob.address),
            ) as alice,
            trio.open_nursery() as nursery,
        ):
            a_sock = await nursery.start(serve_control, alice, sock_dir / "a.sock")
            b_sock = await nursery.start(serve_control, bob, sock_dir / "b.sock")
            ch, _ = await open_channel(alice, bob, desks)
            cid = "0x" + ch.id.hex()[:10]
            async with connect_control(a_sock) as a, connect_control(b_sock) as b:
                terms = {
                    "channel": cid,
                    "kind": "call",
                    "underlying": "ETH-USD",
                    "strike": 3000 * 10**8,
                    "expiry_in": 7 * 86400,
                }
                quote = await a.call(
                    "request_quote", side="buy", quantity=8 * QUANTITY_SCALE, **terms
                )
                # The table caps the size at 5 and prices from the row.
                assert quote["quoter"] == to_checksum(desks.bob.address)
                assert (quote["price"], quote["max_quantity"]) == (25_000, 5 * QUANTITY_SCALE)
                assert quote["status"] == "live" and quote["ours"] is False
                # A put has no row: declined with the table's reason.
                with pytest.raises(ControlError, match="no quote for this option"):
                    await a.call(
                        "request_quote", side="buy", quantity=1, **{**terms, "kind": "put"}
                    )
                listed = await a.call("quotes", channel=cid)
                assert [q["quote_id"] for q in listed["quotes"]] == [quote["quote_id"]]
                filled = await a.call(
                    "fill", channel=cid, quote=quote["quote_id"][:14], quantity=2 * QUANTITY_SCALE
                )
                assert filled["quote"]["remaining"] == 3 * QUANTITY_SCALE
                assert filled["position"]["quantity"] == 2 * QUANTITY_SCALE
                with pytest.raises(ControlError, match="QuoteOverfilled"):
                    await a.call(
                        "fill", channel=cid, quote=quote["quote_id"], quantity=4 * QUANTITY_SCALE
                    )
                with pytest.raises(ControlError, match="BadRequest"):
                    await a.call("fill", channel=cid, quote="0xzz")

                # An operator desk: Alice answers Bob's request by hand.
                bob.quotes.pricer = None
                alice_quotes: list[dict[str, object]] = []

                async def bob_asks() -> None:
                    alice_quotes.append(
                        await b.call("request_quote", side="sell", quantity=QUANTITY_SCALE, **terms)
                    )

                async with connect_control(b_sock) as b2:
                    b = b2
                    nursery.start_soon(bob_asks)
                    while not (waiting := (await a.call("quotes"))["requests"]):
                        await trio.sleep(0.05)
                    assert waiting[0]["side"] == "sell"
                    answered = await a.call(
                        "answer",
                        channel=cid,
                        request_id=waiting[0]["request_id"],
                        price=30_000,
                        collateral=500_000,
                    )
                    while not alice_quotes:
                        await trio.sleep(0.05)
                assert alice_quotes[0]["quote_id"] == answered["quote_id"]
                assert answered["quoter_side"] == "buy"  # Bob sells: Alice buys
                with pytest.raises(ControlError, match="no request"):
                    await a.call("answer", channel=cid, request_id=12345, decline="no")
            nursery.cancel_scope.cancel()
