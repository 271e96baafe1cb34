"""``channels settle --attestation FILE`` end to end: two real desks on anvil, the dev oracle signs
an attestation file, the position settles from it. Each bad file (malformed, signed by another
key, signed for another adjudicator, for another position) is refused with one typed error and
its exit code, and leaves the channel exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from adjudicator.rpc import open_rpc
from channels import cli, control
from channels.core import eip712
from channels.core.model import Address, Attestation, Price, Timestamp, symbol
from channels.core.signing import LocalSigner

from .test_end_to_end import Chain, Runner, chain, workdir
from .test_operator import named_desk

__all__ = ["chain", "workdir"]  # fixtures


def attestation_file(
    path: Path,
    signer: LocalSigner,
    *,
    chain_id: int,
    adjudicator: bytes,
    underlying: str,
    expiry: int,
    price: str,
    fields: dict[str, Any] | None = None,
) -> str:
    """An attestation file as an oracle's tooling would write it."""
    domain = eip712.Domain(chain_id, Address(adjudicator))
    whole, _, frac = price.partition(".")
    raw_price = int(whole) * 10**8 + int((frac + "0" * 8)[:8])
    attestation = Attestation(symbol(underlying), Timestamp(expiry), Price(raw_price))
    signature = signer.sign_digest(eip712.attestation_digest(domain, attestation))
    doc = {"underlying": underlying, "expiry": expiry, "price": price}
    doc["signature"] = "0x" + signature.hex()
    doc.update(fields or {})
    path.write_text(json.dumps(doc))
    return str(path)


async def test_settle_from_an_attestation_file(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.cli.desks import free_port

    monkeypatch.setenv("OC_SF_KEY_A", chain.keys[1])
    monkeypatch.setenv("OC_SF_KEY_B", chain.keys[2])
    port_a, port_b = free_port(), free_port()
    cfg_a = named_desk(workdir, "a", "desk-b", chain, "OC_SF_KEY_A", port_a)
    cfg_b = named_desk(workdir, "b", "desk-a", chain, "OC_SF_KEY_B", port_b)
    cfg_a.write_text(cfg_a.read_text().replace("{PEER_PORT}", str(port_b)))
    cfg_b.write_text(cfg_b.read_text().replace("{PEER_PORT}", str(port_a)))
    a = str(cfg_a)
    # desk B turns its metrics off: getinfo says so, and no port is opened
    cfg_b.write_text(cfg_b.read_text().replace("[node]\n", "[node]\nmetrics = false\n", 1))
    run = Runner(capsys)
    oracle = LocalSigner.from_hex(chain.keys[9])  # the desks' configured oracle
    stranger = LocalSigner.from_hex(chain.keys[8])
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            conf_a, conf_b = cli.load_config(cfg_a), cli.load_config(cfg_b)
            await nursery.start(cli.serve_desk, conf_b, cli.load_signer(conf_b))
            await nursery.start(cli.serve_desk, conf_a, cli.load_signer(conf_a))
            code, out, err = await run("-c", a, "open", "desk-b", "--deposit", "100")
            assert code == 0, err
            code, out, err = await run(
                "-c", a, "write", "desk-b", "--kind", "call", "--underlying", "ETH-USD",
                "--strike", "3000", "--expiry", "+2h", "--quantity", "0.5",
                "--premium", "2", "--collateral", "50",
            )  # fmt: skip
            assert code == 0, err
            async with open_rpc(chain.url) as rpc:
                await rpc.dev.increase_time(3 * 3600)
                await rpc.dev.evm_mine()
            expiry = (await control.call(conf_a.control, "status"))[0]["positions"][0]["expiry"]
            for conf in (conf_a, conf_b):  # until both nodes have seen the new chain time
                while (await control.call(conf.control, "ping"))["now"] < expiry:
                    await trio.sleep(0.05)
            info = await run.json("-c", a, "getinfo")
            assert info["metrics_url"].startswith("http://127.0.0.1:")
            assert (await control.call(conf_b.control, "getinfo"))["metrics_url"] is None
            chain_id = int(info["chain_id"])
            assert conf_a.adjudicator is not None
            where = {"chain_id": chain_id, "underlying": "ETH-USD", "expiry": expiry}
            before = (await run.json("-c", a, "status"))["channels"][0]

            async def refused(path: str, exit_code: int, code_name: str, words: str) -> None:
                code, out, err = await run("-c", a, "settle", "desk-b", "1", "--attestation", path)
                assert code == exit_code, err
                errors = [line for line in err.splitlines() if line.startswith("error: ")]
                assert len(errors) == 1 and words in errors[0], err  # (after a progress line)
                assert "Traceback" not in err, err
                code, out, err = await run(
                    "-c", a, "--json", "settle", "desk-b", "1", "--attestation", path
                )
                failure = json.loads(out)["error"]
                assert (code, failure["code"], failure["exit_code"]) == (
                    exit_code,
                    code_name,
                    exit_code,
                )
                # Nothing changed: same version, balances and open position, on both sides.
                after = (await run.json("-c", a, "status"))["channels"][0]
                assert after == before
                peer_view = (await control.call(conf_b.control, "status"))[0]
                assert peer_view["version"] == before["version"] and peer_view["positions"]

            # malformed files: usage errors (exit 2), the node is not even asked
            bad = workdir / "bad.json"
            bad.write_text("{not json")
            await refused(str(bad), 2, "usage", "not an attestation (not JSON")
            bad.write_text(json.dumps({"price": "3100"}))
            await refused(str(bad), 2, "usage", "'signature' must be a string")
            bad.write_text(json.dumps({"price": "3100", "signature": "0x1234"}))
            await refused(str(bad), 2, "usage", "signature must be 65 bytes")
            bad.write_text(json.dumps([1, 2]))
            await refused(str(bad), 2, "usage", "must be a JSON object")
            bad.write_text("x" * 20_000)
            await refused(str(bad), 2, "usage", "larger than an attestation file")
            await refused(str(workdir / "missing.json"), 2, "usage", "cannot read attestation")

            # well-formed but wrong: refused by the attestation rule (exit 3)
            wrong_signer = attestation_file(
                workdir / "stranger.json", stranger, adjudicator=conf_a.adjudicator,
                price="3100", **where,
            )  # fmt: skip
            await refused(wrong_signer, 3, "BadAttestation", "not signed by the channel's oracle")
            other_adjudicator = attestation_file(
                workdir / "elsewhere.json", oracle, adjudicator=b"\x11" * 20,
                price="3100", **where,
            )  # fmt: skip
            await refused(other_adjudicator, 3, "BadAttestation", "not signed by the channel's")
            other_position = attestation_file(
                workdir / "btc.json", oracle, adjudicator=conf_a.adjudicator, price="3100",
                chain_id=chain_id, underlying="BTC-USD", expiry=expiry,
            )  # fmt: skip
            await refused(other_position, 3, "BadAttestation", "position 1 is on 'ETH-USD'")
            other_expiry = attestation_file(
                workdir / "later.json", oracle, adjudicator=conf_a.adjudicator, price="3100",
                chain_id=chain_id, underlying="ETH-USD", expiry=expiry + 86400,
            )  # fmt: skip
            await refused(other_expiry, 3, "BadAttestation", "position 1 expires")
            # the oracle's signature of 3000.5 under a price of 3100: it does not match
            cheap = attestation_file(
                workdir / "cheap.json", oracle, adjudicator=conf_a.adjudicator,
                price="3000.5", **where,
            )  # fmt: skip
            forged = json.loads(Path(cheap).read_text()) | {"price": "3100"}
            bad.write_text(json.dumps(forged))
            await refused(str(bad), 3, "BadAttestation", "not signed by the channel's oracle")

            # the oracle's file for this position settles it: (3100 - 3000) x 0.5 = 50 to B
            good = attestation_file(
                workdir / "good.json", oracle, adjudicator=conf_a.adjudicator,
                price="3100", **where,
            )  # fmt: skip
            code, out, err = await run("-c", a, "settle", "desk-b", "1", "--attestation", good)
            assert code == 0, err
            assert "position 1 settled" in out
            row = (await run.json("-c", a, "status"))["channels"][0]
            assert row["positions"] == [] and row["version"] == before["version"] + 1
            assert (row["ours"], row["theirs"]) == ("52", "148")
            nursery.cancel_scope.cancel()
