"""A fee-on-transfer token between two real desk processes on anvil (docs/RELIABILITY.md,
"Tokens"): ``FeeOnTransferToken`` keeps 1% of every transfer, into the adjudicator and out of it.

Each desk credits its deposit by what the chain measured arrived, both agree on it, trades and a
top-up work on it, and the close pays out exactly what the adjudicator holds for the channel, so
no desk is credited a unit that never arrived. A desk that accepts a smaller fee than the one the
PEER's deposit lost refuses the channel at once (``PeerDepositFeeRefused``, an alarm naming the
peer, the asset, the fee and the setting), not after ``open_timeout``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of, load_artifact, mint
from adjudicator.transactions import TransactionSender
from channels import control
from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture

from .desk_processes import Desk, DeskSpec, channels, desk_pair

DEPOSIT = 1_000_000
TOP_UP = 100_000
#: ``FeeOnTransferToken`` keeps 1% (100 bps) of every transfer.
FEE_BPS = 100


def after_fee(amount: int) -> int:
    """What arrives of ``amount`` sent in the token (its fee rounds down)."""
    return amount - amount // 100


@pytest.fixture
def workdir() -> Iterator[Path]:
    # A short path: the control socket lives next to the store (Unix socket paths are short).
    with tempfile.TemporaryDirectory(prefix="ocfee-", dir="/tmp") as d:
        yield Path(d)


async def deploy_fee_token(desks: Desks) -> bytes:  # noqa: F811
    """A fresh FeeOnTransferToken, 10 deposits minted to each desk."""
    async with open_rpc(desks.url) as rpc:
        sender = TransactionSender(rpc, desks.oracle.secret)  # neither desk's nonce
        _abi, code = load_artifact("FeeOnTransferToken")
        token = bytes.fromhex((await sender.deploy(code, b"", timeout=60))[2:])
        for who in (desks.alice, desks.bob):
            await mint(rpc, sender, token, who.address, 10 * DEPOSIT)
    return token


async def balances(desks: Desks, token: bytes) -> tuple[int, int, int]:  # noqa: F811
    """The token balances of desk A, desk B and the adjudicator."""
    async with open_rpc(desks.url) as rpc:
        return (
            await balance_of(rpc, token, desks.alice.address),
            await balance_of(rpc, token, desks.bob.address),
            await balance_of(rpc, token, desks.adjudicator),
        )


async def logged_deposits(desk: Desk, count: int) -> list[tuple[int, int, int]]:
    """The first ``count`` deposits the desk logged it measured (sent, credited, fee)."""
    while len(desk.deposits_logged()) < count:
        assert desk.process.alive, desk.process.stderr()
        await trio.sleep(0.05)
    return desk.deposits_logged()


async def test_fee_on_transfer_token_between_two_desk_processes(
    desks: Desks,  # noqa: F811
    workdir: Path,
) -> None:
    token = await deploy_fee_token(desks)
    net, top_net = after_fee(DEPOSIT), after_fee(TOP_UP)
    wallet_a, wallet_b, held = await balances(desks, token)
    assert held == 0
    with trio.fail_after(300):
        async with desk_pair(
            workdir,
            # Both consent to losing up to 1% of a deposit; A writes what B buys, as in the CLI
            # end-to-end test, and each lets the other unwind.
            DeskSpec("a", desks.alice, max_deposit_fee_bps=FEE_BPS, approve=("write", "unwind")),
            DeskSpec(
                "b", desks.bob, listen=True, max_deposit_fee_bps=FEE_BPS, approve=("buy", "unwind")
            ),
            rpc_url=desks.url,
            adjudicator=desks.adjudicator,
            asset=token,
            oracle=desks.oracle.address,
        ) as (a, b, peer):
            # open: each side is credited what arrived, not what it sent ------------------------
            result = await a.run("--raw", "open", peer, "--deposit", str(DEPOSIT))
            assert result.code == 0, result
            opened = re.fullmatch(
                rf"channel (0x[0-9a-f]{{64}}) with other open v\d+: ours {net}, theirs {net}\n",
                result.out,
            )
            assert opened is not None, result.out
            cid = opened.group(1)
            assert await logged_deposits(a, 1) == [(DEPOSIT, net, DEPOSIT - net)]
            assert await logged_deposits(b, 1) == [(DEPOSIT, net, DEPOSIT - net)]
            view = await control.call(a.process.control, "chain_view", channel=cid)
            assert view["deposits"] == [net, net]
            assert (await balances(desks, token))[2] == 2 * net  # what the adjudicator holds
            await agree(a, b)

            # trades on the measured amounts ------------------------------------------------
            result = await a.run("--raw", "pay", cid, "1000")
            assert result.code == 0, result
            written = await a.json(
                "--raw", "write", cid, "--kind", "call", "--underlying", "ETH-USD",
                "--strike", "3000", "--expiry", "+7d", "--quantity", "1",
                "--premium", "25000", "--collateral", "500000",
            )  # fmt: skip
            position = written["position"]
            assert position["side"] == "written"
            # B cannot spend a unit more than arrived for it, less the premium, plus the pay.
            refused = await b.run("--raw", "pay", cid, str(net - 25000 + 1000 + 1))
            assert refused.code == 3 and "InsufficientFunds" in refused.err, refused
            result = await a.run("--raw", "unwind", cid, str(position["id"]), "100000")
            assert result.code == 0, result

            # a top-up returns once the measured credit is in a signed state -----------------
            before = (await a.channel())["our_balance"]
            result = await a.run("--raw", "top-up", cid, str(TOP_UP))
            assert result.code == 0, result
            assert (await a.channel())["our_balance"] - before == top_net
            deposits_a = await logged_deposits(a, 2)
            assert deposits_a[1] == (TOP_UP, top_net, TOP_UP - top_net)
            view = await control.call(a.process.control, "chain_view", channel=cid)
            assert view["deposits"] == [net + top_net, net]
            credited = 2 * net + top_net
            assert (await balances(desks, token))[2] == credited
            row_a, _ = await agree(a, b)
            # Nothing credited beyond what arrived: balances and collateral add up to it.
            assert row_a["our_balance"] + row_a["their_balance"] + row_a["locked"] == credited
            assert row_a["locked"] == 0

            # the audit trail cites our deposit and the top-up, each found on chain -----------
            trail = workdir / "audit.jsonl"
            result = await a.run("export", "-o", str(trail))
            assert result.code == 0, result
            result = await channels("--json", "verify", str(trail), "--rpc", desks.url)
            assert result.code == 0, result
            report = json.loads(result.out)
            assert report["txs"] == 2 and report["on_chain"]["confirmed"] == 2, report

            # close: the adjudicator pays out exactly what it holds for the channel ------------
            final_a, final_b = row_a["our_balance"], row_a["their_balance"]
            result = await b.run("close", cid)
            assert result.code == 0, result
            for desk in (a, b):
                await desk.wait_phase("closed")
            after_a, after_b, held = await balances(desks, token)
            assert held == 0  # all of it paid out, none left over, none owed
            for desk in (a, b):  # no payout was left credited for a later pull
                assert (await desk.json("withdraw", "--credits"))["withdrawn"] == "0"
            # Each desk got its final balance (less the token's fee on the way out).
            assert after_a - wallet_a == -DEPOSIT - TOP_UP + after_fee(final_a)
            assert after_b - wallet_b == -DEPOSIT + after_fee(final_b)
            assert a.process.alive and b.process.alive


async def agree(a: Desk, b: Desk) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both desks' channel rows once they hold the same version: mirror images."""
    row_a = await a.channel()
    while (row_b := await b.channel())["version"] != row_a["version"]:
        await trio.sleep(0.05)
        row_a = await a.channel()
    assert (row_a["our_balance"], row_a["their_balance"]) == (
        row_b["their_balance"],
        row_b["our_balance"],
    )
    assert row_a["locked"] == row_b["locked"]
    assert row_a["phase"] == row_b["phase"] == "open"
    return row_a, row_b


async def test_a_fee_above_what_the_desk_accepts_on_the_peers_deposit(
    desks: Desks,  # noqa: F811
    workdir: Path,
) -> None:
    """A accepts 50 bps; B's deposit loses 100: A's open fails with PeerDepositFeeRefused as soon
    as the credit shows it (A's open_timeout is ten minutes: the test would time out first), and
    A raises an alarm that names the peer, the asset, the fee and the setting."""
    token = await deploy_fee_token(desks)
    with trio.fail_after(300):
        async with desk_pair(
            workdir,
            DeskSpec("a", desks.alice, max_deposit_fee_bps=50, open_timeout=600),
            DeskSpec("b", desks.bob, listen=True, max_deposit_fee_bps=FEE_BPS),
            rpc_url=desks.url,
            adjudicator=desks.adjudicator,
            asset=token,
            oracle=desks.oracle.address,
        ) as (a, b, peer):
            wallet_a, wallet_b, _ = await balances(desks, token)
            result = await a.run(
                "--raw", "open", peer, "--deposit", "0", "--peer-deposit", str(DEPOSIT)
            )
            # One line naming the rule, the peer, the asset, the fee and the setting to change;
            # exit 3 (a rule of ours refused it), not "is the peer's node running?".
            assert result.code == 3 and result.out == "", result
            error = result.err.splitlines()[-1]
            assert error.startswith("error: refused (PeerDepositFeeRefused): "), error
            net = after_fee(DEPOSIT)
            for part in (
                f"the peer 0x{desks.bob.address.hex()}'s deposit",
                f"in asset 0x{token.hex()}",
                f"credited {net} of the {DEPOSIT} agreed",
                f"the asset kept {DEPOSIT - net} (about {FEE_BPS} bps)",
                "accepts at most 50 bps (max_deposit_fee_bps)",
                "close the channel",
            ):
                assert part in error, (part, error)
            assert "dispute" not in error and "reachable" not in error, error
            # The alarm: the same words, for the channel, open until acknowledged.
            row = await a.status_row()
            cid = row["id"]
            alarms = (await a.json("alarms"))["alarms"]
            (alarm,) = [x for x in alarms if x["kind"] == "PeerDepositFeeRefused"]
            assert alarm["channel"] == cid and alarm["state"] == "open"
            assert error.endswith(alarm["detail"]), (error, alarm)
            # Never counted as funded by A, though the chain credits B what arrived; B, which
            # consented to the fee, measured the same.
            assert row["phase"] == "funding"
            assert await logged_deposits(b, 1) == [(DEPOSIT, net, DEPOSIT - net)]
            assert a.deposits_logged() == []  # A sent nothing
            view = await control.call(a.process.control, "chain_view", channel=cid)
            assert view["deposits"] == [0, net]

            # Closing refunds what was credited: B's deposit, less the fee on each way.
            result = await a.run("close", cid)
            assert result.code == 0, result
            for desk in (a, b):
                await desk.wait_phase("closed")
            after_a, after_b, held = await balances(desks, token)
            assert (after_a, held) == (wallet_a, 0)
            assert after_b - wallet_b == -DEPOSIT + after_fee(net)
