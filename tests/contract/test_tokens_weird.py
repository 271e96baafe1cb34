"""THREATS C10: one run per non-standard ERC-20 (after d-xo/weird-erc20) plus the plain
TestERC20 baseline. Deposit 100 each: the credited holdings equal the adjudicator's **measured**
balance change (99 for the 1% fee-on-transfer token); a partial withdrawal, a conclusion whose
payout to a blocklisted participant is credited, and the later pull of that credit all work; and
after every step the adjudicator's token balance covers the sum of what it still owes (for these
tokens exactly: the fee is charged to the receiver, the sender is debited the full amount).

An ERC-20 deposit with msg.value > 0 (UnexpectedEther) is covered in test_reverts.py. There is no
rebasing mock among the test contracts.
"""

from __future__ import annotations

import pytest

from adjudicator import errors, tokens
from adjudicator.transactions import TransactionSender
from channels.core.model import to_checksum

from .kit import Channel, Kit, T, artifact_abi, deploy_artifact, outstanding_holdings

WEIRD = ["NoReturnToken", "ReturnsFalseToken", "FeeOnTransferToken", "RevertOnZeroToken",
         "TestERC20"]


def received(name: str, amount: int) -> int:
    """What a receiver gets when ``amount`` is sent."""
    return amount - amount // 100 if name == "FeeOnTransferToken" else amount


async def _token(kit: Kit, name: str) -> bytes:
    args = ("Test", "TST", 18) if name == "TestERC20" else ()
    token = await deploy_artifact(kit, name, *args)
    for who in (kit.alice.address, kit.bob.address):
        await tokens.mint(kit.rpc, kit.c.sender, token, who, 1000)  # type: ignore[arg-type]
    return token


async def _bal(kit: Kit, token: bytes, who: bytes) -> int:
    return await tokens.balance_of(kit.rpc, token, who)


@pytest.mark.parametrize("name", WEIRD)
async def test_weird_token_lifecycle(kit: Kit, name: str) -> None:
    token = await _token(kit, name)
    adj = kit.env.adjudicator
    ch: Channel = kit.channel(token, decimals=18)
    parties = (kit.alice.address, kit.bob.address, kit.carol.address)

    async def covered() -> int:
        owed = await outstanding_holdings(kit, token, [ch], parties)
        held = await _bal(kit, token, adj)
        assert held >= owed
        assert held == owed  # no fee is charged to the sender for these tokens
        return owed

    # no allowance: the pull fails (revert, `false` or nothing) -> TransferFailed
    with pytest.raises(errors.TransferFailed):
        await kit.b.transact("depositToken", ch.params.params_hash, ch.params.asset, 1, 100)
    credit = received(name, 100)
    for client, who in ((kit.a, 0), (kit.b, 1)):
        before = await _bal(kit, token, adj)
        r = await client.deposit(ch.params, who, 100)
        delta = await _bal(kit, token, adj) - before
        assert delta == credit
        (ev,) = [e for e in kit.a.decode_receipt_events(r) if e.name == "Deposited"]
        assert ev.args["amount"] == delta
        assert await covered() == delta * (who + 1)
    assert (await kit.a.channel(ch.id)).deposits == (credit, credit)

    # partial withdrawal pushed to carol
    w, sigs = ch.withdrawal(1, 0, 50, kit.carol.address)
    c0 = await _bal(kit, token, kit.carol.address)
    await kit.c.withdraw_partial(ch.params, w, sigs)
    assert await _bal(kit, token, kit.carol.address) - c0 == received(name, 50)
    assert await covered() == 2 * credit - 50

    # conclusion: bob is blocklisted, so his push fails and is credited
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    await tokens.set_blocked(kit.rpc, sender, token, kit.bob.address, True)
    pay0, pay1 = 2 * credit - 50 - 70, 70
    final = ch.signed(2, balances=(pay0, pay1), deposited=(credit, credit), withdrawn=(50, 0),
                      final=True)
    a0, b0 = await _bal(kit, token, kit.alice.address), await _bal(kit, token, kit.bob.address)
    r = await kit.c.conclude(ch.params, final)
    assert [e.name for e in kit.a.decode_receipt_events(r)] == ["Concluded", "PayoutCredited"]
    assert await _bal(kit, token, kit.alice.address) - a0 == received(name, pay0)
    assert await _bal(kit, token, kit.bob.address) == b0
    assert await kit.a.credits(token, kit.bob.address) == pay1
    assert await covered() == pay1

    with pytest.raises(errors.TransferFailed):  # still blocked: the pull reverts, credit kept
        await kit.b.withdraw(token, kit.bob.address)
    assert await covered() == pay1
    await tokens.set_blocked(kit.rpc, sender, token, kit.bob.address, False)
    await kit.b.withdraw(token, kit.bob.address)
    assert await _bal(kit, token, kit.bob.address) - b0 == received(name, pay1)
    assert await covered() == 0
    assert await _bal(kit, token, adj) == 0


async def test_revert_on_zero_token_skips_zero_payouts(kit: Kit) -> None:
    """A token that reverts on zero-value transfers: a zero payout is never sent (no credit,
    no revert), and a zero deposit is refused before the token is called."""
    token = await _token(kit, "RevertOnZeroToken")
    ch = kit.channel(token, decimals=18)
    with pytest.raises(errors.ZeroAmount):
        await kit.a.deposit(ch.params, 0, 0)
    await kit.a.deposit(ch.params, 0, 100)
    a0 = await _bal(kit, token, kit.alice.address)
    r = await kit.b.conclude(ch.params, ch.signed(1, balances=(100, 0), final=True))
    names = [e.name for e in kit.a.decode_receipt_events(r)]
    assert names == ["Concluded"]
    assert await _bal(kit, token, kit.alice.address) - a0 == 100
    assert await kit.a.credits(token, kit.bob.address) == 0
    assert await _bal(kit, token, kit.env.adjudicator) == 0


async def test_token_that_moves_funds_but_returns_false_is_paid_not_credited(kit: Kit) -> None:
    """Issue 13.3: a token whose ``transfer`` moves the funds and still returns ``false``. A push
    counted only by its reported result would be paid AND credited, leaving the adjudicator owing
    more than it holds (the other channels of that token pay for it). The push is settled by the
    adjudicator's measured balance change instead: paid, no credit, holdings cover what is owed;
    and the pull (``withdraw``) of an honest credit, whose transfer reports failure, reverts with
    the funds back in place."""
    token = await deploy_artifact(kit, "MovesButReturnsFalseToken")
    abi = artifact_abi("MovesButReturnsFalseToken")
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]

    async def reports_false(value: bool) -> None:
        data = abi.encode_call("setReportsFalse", value)
        await sender.transact(to_checksum(token), data, timeout=T)

    adj = kit.env.adjudicator
    parties = (kit.alice.address, kit.bob.address, kit.carol.address)
    for who in parties[:2]:
        await tokens.mint(kit.rpc, sender, token, who, 1000)
    ch: Channel = kit.channel(token, decimals=18)
    await kit.a.deposit(ch.params, 0, 100)
    await kit.b.deposit(ch.params, 1, 100)
    await reports_false(True)

    async def owed_and_held() -> tuple[int, int]:
        owed = await outstanding_holdings(kit, token, [ch], parties)
        return owed, await _bal(kit, token, adj)

    # a partial withdrawal whose transfer lies: carol is paid, alice is not credited
    w, sigs = ch.withdrawal(1, 0, 30, kit.carol.address)
    r = await kit.c.withdraw_partial(ch.params, w, sigs)
    assert "PayoutCredited" not in [e.name for e in kit.a.decode_receipt_events(r)]
    assert await _bal(kit, token, kit.carol.address) == 30
    assert await kit.a.credits(token, kit.alice.address) == 0
    assert await owed_and_held() == (170, 170)

    # conclusion: both pushes lie, both are paid, nothing is credited
    a0, b0 = await _bal(kit, token, kit.alice.address), await _bal(kit, token, kit.bob.address)
    final = ch.signed(2, balances=(60, 110), deposited=(100, 100), withdrawn=(30, 0), final=True)
    r = await kit.c.conclude(ch.params, final)
    assert [e.name for e in kit.a.decode_receipt_events(r)] == ["Concluded"]
    assert await _bal(kit, token, kit.alice.address) - a0 == 60
    assert await _bal(kit, token, kit.bob.address) - b0 == 110
    for who in parties:
        assert await kit.a.credits(token, who) == 0
    assert await owed_and_held() == (0, 0)

    # an honest failure (blocked receiver) is credited; pulling it while transfers lie reverts
    # (the pull needs a reported success) and leaves funds and credit in place
    ch2: Channel = kit.channel(token, decimals=18)
    await reports_false(False)
    await kit.a.deposit(ch2.params, 0, 50)
    await tokens.set_blocked(kit.rpc, sender, token, kit.bob.address, True)
    final2 = ch2.signed(1, balances=(10, 40), deposited=(50, 0), final=True)
    await kit.c.conclude(ch2.params, final2)
    assert await kit.a.credits(token, kit.bob.address) == 40
    await tokens.set_blocked(kit.rpc, sender, token, kit.bob.address, False)
    await reports_false(True)
    with pytest.raises(errors.TransferFailed):
        await kit.b.withdraw(token, kit.bob.address)
    assert await kit.a.credits(token, kit.bob.address) == 40
    assert await _bal(kit, token, adj) == 40
