"""The CLI's quote commands against two real desk nodes on a real anvil (as
tests/cli/test_end_to_end.py runs them: real ``main()``, real control socket): ``offer --replaces``
retires the old quote as the new one is booked, on both desks; ``withdraw-quote`` stops fills of a
quote; each refusal names its rule and exits 2 (usage) or 3 (refused by a rule)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from channels import cli
from channels.core.model import to_checksum
from channels.core.signing import LocalSigner

from .test_end_to_end import Chain, Runner, chain, desk_config, workdir

__all__ = ["chain", "workdir"]  # the fixtures, shared with the end-to-end test

TERMS = ("--kind", "call", "--underlying", "ETH-USD", "--strike", "3000", "--expiry", "+7d")


async def test_offer_replaces_and_withdraw_quote(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OC_TEST_KEY_A", chain.keys[1])
    monkeypatch.setenv("OC_TEST_KEY_B", chain.keys[2])
    key_a, key_b = (LocalSigner.from_hex(chain.keys[i]).address for i in (1, 2))
    a = str(desk_config(workdir, "a", chain, "OC_TEST_KEY_A", False, key_b, "[]"))
    b = str(desk_config(workdir, "b", chain, "OC_TEST_KEY_B", True, key_a, "[]"))
    run = Runner(capsys)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            conf_a, conf_b = cli.load_config(Path(a)), cli.load_config(Path(b))
            node_b = await nursery.start(cli.serve_desk, conf_b, cli.load_signer(conf_b))
            await nursery.start(cli.serve_desk, conf_a, cli.load_signer(conf_a))
            peer = f"{to_checksum(node_b.address)}@127.0.0.1:{node_b.listen_port}"
            code, out, err = await run("-c", a, "--raw", "open", peer, "--deposit", "1_000_000")
            assert code == 0, err
            opened = re.match(r"channel (0x[0-9a-f]{10})", out)
            assert opened is not None, out
            short = opened.group(1)

            async def offer(*extra: str) -> str:
                quote = await run.json(
                    "-c", b, "--raw", "offer", short, *TERMS, "--side", "buy",
                    "--collateral", "400000", "--max-quantity", "2", "--valid-for", "600", *extra,
                )  # fmt: skip
                return str(quote["quote_id"])

            async def status_on_a(quote_id: str) -> str:
                listed = await run.json("-c", a, "quotes", short)
                return next(q["status"] for q in listed["quotes"] if q["quote_id"] == quote_id)

            first = await offer("--price", "25000")
            second = await offer("--price", "30000", "--replaces", first[:12])
            listed = await run.json("-c", b, "quotes")
            by_id = {q["quote_id"]: q for q in listed["quotes"]}
            assert by_id[first]["status"] == "replaced" and by_id[second]["status"] == "live"
            assert by_id[second]["replaces"] == first
            while await status_on_a(first) != "replaced":  # the new quote reached Alice's book
                await trio.sleep(0.05)
            code, _, err = await run("-c", a, "fill", short, first, "--quantity", "1")
            assert code == 3 and "QuoteReplaced" in err, err
            filled = await run.json("-c", a, "fill", short, second, "--quantity", "1")
            assert filled["quote"]["remaining"] == "1"  # one whole option of two is left

            code, out, err = await run("-c", b, "withdraw-quote", second[:14])
            assert code == 0, err
            assert out == f"quote {second[:18]} withdrawn: fills of it are refused from now on\n"
            code, _, err = await run("-c", a, "fill", short, second, "--quantity", "1")
            assert code != 0 and "QuoteWithdrawn" in err, err  # refused by Bob's node
            # Only a live quote of ours can be withdrawn or replaced.
            for argv in (("withdraw-quote", second), ("withdraw-quote", first)):
                code, _, err = await run("-c", b, *argv)
                assert code == 2 and "not live" in err, err
            code, _, err = await run("-c", a, "withdraw-quote", second)
            assert code == 2 and "the peer's, not ours" in err, err
            code, _, err = await run(
                "-c", b, "--raw", "offer", short, *TERMS, "--side", "buy", "--price", "1",
                "--collateral", "1", "--max-quantity", "1", "--replaces", "0xzz",
            )  # fmt: skip
            assert code == 2 and "hex id" in err, err
            nursery.cancel_scope.cancel()
