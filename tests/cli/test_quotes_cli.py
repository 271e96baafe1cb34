"""The firm-quote commands from the command line, against two real desks on anvil: ``rfq`` waits
while desk B's operator finds the request in ``quotes`` and ``answer``s it; ``fill`` by id prefix;
``rfq --fill-limit`` trades only within the limit. Text and JSON show the same fields in human
units (``--raw``: smallest units)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from channels import cli

from .test_end_to_end import Chain, Runner, chain, workdir
from .test_operator import named_desk

__all__ = ["chain", "workdir"]  # fixtures

RFQ = ["rfq", "desk-b", "--kind", "call", "--underlying", "ETH-USD", "--strike", "3000"]
RFQ += ["--expiry", "+7d", "--side", "buy", "--quantity", "0.5", "--timeout", "60"]


async def test_quote_commands(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.cli.desks import free_port

    monkeypatch.setenv("OC_QC_KEY_A", chain.keys[1])
    monkeypatch.setenv("OC_QC_KEY_B", chain.keys[2])
    port_a, port_b = free_port(), free_port()
    cfg_a = named_desk(workdir, "a", "desk-b", chain, "OC_QC_KEY_A", port_a)
    cfg_b = named_desk(workdir, "b", "desk-a", chain, "OC_QC_KEY_B", port_b)
    cfg_a.write_text(cfg_a.read_text().replace("{PEER_PORT}", str(port_b)))
    cfg_b.write_text(cfg_b.read_text().replace("{PEER_PORT}", str(port_a)))
    a, b = str(cfg_a), str(cfg_b)
    run = Runner(capsys)

    async def rfq_answered(
        *extra: str, answer: tuple[str, ...] = ("--price", "4", "--collateral", "100")
    ) -> subprocess.CompletedProcess[bytes]:
        """``rfq`` in its own process (it waits), answered by desk B's operator meanwhile."""
        done: list[subprocess.CompletedProcess[bytes]] = []

        async def ask() -> None:
            argv = [sys.executable, "-m", "channels.cli", "-c", a, *RFQ, *extra]
            done.append(await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                               check=False))  # fmt: skip

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            while True:  # until B sees the request (bounded by the test's fail_after)
                waiting = (await run.json("-c", b, "quotes"))["requests"]
                if waiting:
                    break
                await trio.sleep(0.1)
            (request,) = waiting
            assert (request["strike"], request["quantity"], request["side"]) == (
                "3000",
                "0.5",
                "buy",
            )
            assert request["expiry"].endswith("Z")
            code, out, err = await run(
                "-c", b, "answer", "desk-a", str(request["request_id"]), *answer
            )
            assert code == 0, err
            if "--decline" in answer:
                assert f"request {request['request_id']} declined" in out
            else:
                assert "at 4/unit, collateral 100/unit, max 0.5" in out
        return done[0]

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for cfg in (cfg_b, cfg_a):
                conf = cli.load_config(cfg)
                await nursery.start(cli.serve_desk, conf, cli.load_signer(conf))
            code, out, err = await run("-c", a, "open", "desk-b", "--deposit", "100")
            assert code == 0, err

            # rfq -> quotes / answer on B -> the quote, in human units -------------------------
            proc = await rfq_answered("--json")
            assert proc.returncode == 0, proc.stderr
            quote: dict[str, Any] = json.loads(proc.stdout)
            assert (quote["price"], quote["collateral"], quote["strike"]) == ("4", "100", "3000")
            assert quote["max_quantity"] == "0.5" and quote["quoter_side"] == "sell"
            assert quote["expiry"].endswith("Z") and quote["valid_until"].endswith("Z")
            book = await run.json("-c", a, "quotes")
            (booked,) = book["quotes"]
            assert booked["quote_id"] == quote["quote_id"] and booked["remaining"] == "0.5"
            assert booked["price"] == "4" and booked["ours"] is False
            raw = await run.json("-c", a, "--raw", "quotes")
            assert (raw["quotes"][0]["price"], raw["quotes"][0]["collateral"]) == (
                4_000_000,
                100_000_000,
            )
            code, out, err = await run("-c", a, "quotes")
            assert code == 0 and "at 4/unit, collateral 100/unit, max 0.5 left 0.5" in out

            # fill by id prefix, twice: text and JSON, ours first ----------------------------
            prefix = quote["quote_id"][:10]
            code, out, err = await run("-c", a, "fill", "desk-b", prefix, "--quantity", "0.25")
            assert code == 0, err
            assert "filled: position 1 (held) qty 0.25" in out
            assert "ours 99, theirs 76" in out and "left 0.25" in out  # premium 1, collateral 25
            fill = await run.json("-c", a, "fill", "desk-b", prefix)
            assert fill["position"]["quantity"] == "0.25" and fill["position"]["strike"] == "3000"
            assert fill["position"]["collateral"] == "25" and fill["peer"] == "desk-b"
            assert (fill["ours"], fill["theirs"], fill["quote"]["remaining"]) == ("98", "52", "0")

            # --fill-limit: outside it nothing is traded (exit 3), within it one fill ---------
            before = (await run.json("-c", a, "status"))["channels"][0]["version"]
            proc = await rfq_answered("--fill-limit", "3")
            assert proc.returncode == 3, proc.stderr
            err_text = proc.stderr.decode()
            assert "QuoteOutsideLimit" in err_text and "above --fill-limit 3" in err_text
            assert "Traceback" not in err_text
            assert (await run.json("-c", a, "status"))["channels"][0]["version"] == before
            proc = await rfq_answered("--fill-limit", "5", "--json")
            assert proc.returncode == 0, proc.stderr
            filled = json.loads(proc.stdout)
            assert filled["position"]["quantity"] == "0.5" and filled["position"]["side"] == "held"
            assert (filled["ours"], filled["theirs"]) == ("96", "4")

            # a declined request: the peer answered, so no hint at its node or a dispute ------
            proc = await rfq_answered(answer=("--decline", "no appetite today"))
            err_text = proc.stderr.decode()
            assert proc.returncode == 4, err_text
            assert "peer desk-b refused (QuoteDeclined)" in err_text
            assert "no appetite today" in err_text and "dispute" not in err_text

            # an unsolicited offer from B, in A's book in human units --------------------------
            code, out, err = await run(
                "-c", b, "offer", "desk-a", "--kind", "put", "--underlying", "ETH-USD",
                "--strike", "2800.5", "--expiry", "+3d", "--side", "buy", "--price", "1.25",
                "--collateral", "20", "--max-quantity", "0.1",
            )  # fmt: skip
            assert code == 0, err
            assert "strike 2800.5" in out and "at 1.25/unit, collateral 20/unit, max 0.1" in out
            book = await run.json("-c", a, "quotes")
            offered = [q for q in book["quotes"] if q["kind"] == "put"]
            assert [(q["price"], q["strike"], q["remaining"]) for q in offered] == [
                ("1.25", "2800.5", "0.1")
            ]
            nursery.cancel_scope.cancel()
