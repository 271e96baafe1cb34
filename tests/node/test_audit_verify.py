"""``channels verify`` checks the quotes a fill cites and, given ``--rpc``, each chain
transaction the export cites, on anvil.

Before: the verifier did not look at quotes at all (a fill's premium could be rewritten in an
export and it still verified), and it checked transaction hashes only for their shape (any 32
bytes passed, as did a transaction said confirmed that never happened)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from adjudicator.audit_chain import verify_txs_on_chain
from channels import cli
from channels.control import serve_control
from channels.core.audit import AuditInvalid, AuditReport, verify_export
from channels.core.model import QUANTITY_SCALE
from channels.runtime.node import Node

from ._helpers import WEEK, open_channel
from .conftest import Desks
from .test_quotes import STRIKE, flat_pricer, quoting_desk

Records = list[dict[str, Any]]


async def export_to(node: Node, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ocav-", dir="/tmp") as short:
        sock = str(Path(short) / "n.sock")
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, node, sock)
            argv = ["--socket", sock, "export", "-o", str(out)]
            assert await trio.to_thread.run_sync(cli.main, argv) == 0
            nursery.cancel_scope.cancel()


def lines_of(records: Records) -> list[str]:
    return [json.dumps(r) for r in records]


def edited(records: Records, change: Callable[[Records], None]) -> list[str]:
    copy: Records = json.loads(json.dumps(records))
    change(copy)
    return lines_of(copy)


def first(records: Records, key: str) -> dict[str, Any]:
    return next(r[key] for r in records if key in r)


def checkpoint_tx(records: Records) -> dict[str, Any]:
    return next(r["tx"] for r in records if r.get("tx", {}).get("kind") == "checkpoint")


def fill_trade(records: Records) -> dict[str, Any]:
    for r in records:
        for trade in r.get("state", {}).get("trades", []):
            if trade.get("quote_id"):
                return dict(trade)
    raise AssertionError("no fill in the export")


async def test_verify_checks_quotes_and_the_chain(
    desks: Desks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "audit.jsonl"
    with trio.fail_after(120):
        async with quoting_desk(
            desks, desks.bob, tmp_path / "b.sqlite", listen=True, pricer=flat_pricer
        ) as bob:
            async with quoting_desk(
                desks, desks.alice, tmp_path / "a.sqlite", listen=False
            ) as alice:
                ch, bch = await open_channel(alice, bob, desks)
                signed = await ch.request_quote(
                    "ETH", "call", STRIKE, alice.now() + WEEK, 10 * QUANTITY_SCALE, "buy"
                )
                await ch.fill_quote(signed, 4 * QUANTITY_SCALE)
                await ch.pay(5)
                await alice.checkpoint(ch.id)  # one chain transaction in the trail
                await bch.wait_version(ch.version)
                await export_to(alice, out)

    capsys.readouterr()
    argv = ["verify", str(out), "--rpc", desks.url]
    assert await trio.to_thread.run_sync(cli.main, argv) == 0
    said = capsys.readouterr().out
    assert "1 quote(s) and 1 fill(s)" in said
    # Alice's deposit (journalled before it was sent) and her checkpoint.
    assert "on chain: 2 confirmed transaction(s)" in said

    records: Records = [json.loads(line) for line in out.read_text().splitlines()]
    report = verify_export(lines_of(records))
    assert (report.quotes, report.fills, report.txs) == (1, 1, 2)
    assert sorted(tx.kind for tx in report.chain_txs) == ["checkpoint", "deposit"]

    # A fill's premium rewritten: the states' hashes do not cover trades, the quote does.
    def cheaper(rs: Records) -> None:
        for r in rs:
            for trade in r.get("state", {}).get("trades", []):
                if trade.get("quote_id"):
                    trade["premium"] = str(int(trade["premium"]) - 1)

    with pytest.raises(AuditInvalid, match="not on the quote's terms"):
        verify_export(edited(records, cheaper))
    # The quote's own terms rewritten: its signature no longer recovers to the quoter.
    with pytest.raises(AuditInvalid, match="quote"):
        verify_export(edited(records, lambda rs: first(rs, "quote").update(price="1")))

    # A negative number where the format holds a non-negative one: refused as in a quote record.
    with pytest.raises(AuditInvalid, match="locked must be a non-negative integer"):
        verify_export(edited(records, lambda rs: first(rs, "state").update(locked=-1)))

    # The quote left out (the counts adjusted): the fill cites a quote the export lacks.
    def without_quote(rs: Records) -> None:
        rs[:] = [r for r in rs if "quote" not in r]
        rs[-1]["quotes"] = 0

    with pytest.raises(AuditInvalid, match=f"fills quote {fill_trade(records)['quote_id']}"):
        verify_export(edited(records, without_quote))

    # On chain: a hash that was never mined, another kind's event, a success called a failure.
    async def chain_check(change: Callable[[Records], None]) -> AuditReport:
        changed = verify_export(edited(records, change))
        await verify_txs_on_chain(desks.url, changed)
        return changed

    with pytest.raises(AuditInvalid, match="is not on chain"):
        await chain_check(lambda rs: checkpoint_tx(rs).update(tx_hash="0x" + "ab" * 32))
    with pytest.raises(AuditInvalid, match="no Concluded event"):
        await chain_check(lambda rs: checkpoint_tx(rs).update(kind="conclude"))
    with pytest.raises(AuditInvalid, match="failed but succeeded"):
        await chain_check(lambda rs: checkpoint_tx(rs).update(status="failed"))
    unchanged = await verify_txs_on_chain(desks.url, report)
    assert (unchanged.confirmed, unchanged.failed, unchanged.unsettled) == (2, 0, 0)
