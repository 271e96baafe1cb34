"""docs/THREATS.md section 2 rows not covered elsewhere: C12 (double withdraw / conclude in one
block), C15 (unfunded channel), C16 (no caller-supplied history). The other rows of the section
have their own files: test_threats_signatures.py (C3/C4), test_threats_reentry.py (C9),
test_threats_amounts.py (C11, C13).

ERC-20 deposits with ETH and the separate-block double conclude are in test_reverts.py.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from adjudicator import errors, tokens
from adjudicator.client import (
    both_signatures,
    params_tuple,
    signature_tuple,
    state_tuple,
    withdrawal_terms_tuple,
)
from adjudicator.transactions import TransactionReverted, TransactionSender, revert_data_of

from .kit import PERIOD, Kit, artifact_abi

ADJ = artifact_abi("Adjudicator")

# ---- C12: twice in one block --------------------------------------------------------------------


async def _same_block(kit: Kit, sender: TransactionSender, calls: list[bytes]) -> list[Any]:
    """Send ``calls`` to the adjudicator from one account with automine off, mine one block;
    return the receipts (status 1) or the typed errors of the reverted ones."""
    await kit.rpc.dev.set_automine(False)
    try:
        sent = [await sender.send(kit.a.checksum_address, data, gas=1_000_000) for data in calls]
        await kit.rpc.dev.mine(1)
    finally:
        await kit.rpc.dev.set_automine(True)
    out: list[Any] = []
    blocks = set()
    for s in sent:
        receipt = await sender.wait_receipt(s, timeout=30, check_status=False)
        blocks.add(receipt.block_number)
        if receipt.status == 1:
            out.append(receipt)
        else:
            data = await revert_data_of(kit.rpc, receipt)
            assert data is not None
            out.append(errors.decode_revert(data))
    assert len(blocks) == 1, "expected one block"
    return out


async def test_double_pull_withdraw_in_one_block(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1000, 1000))
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    await tokens.set_blocked(kit.rpc, sender, kit.env.token, kit.bob.address, True)
    await kit.a.conclude(ch.params, ch.signed(1, balances=(300, 1700), deposited=(1000, 1000),
                                                  final=True))
    await tokens.set_blocked(kit.rpc, sender, kit.env.token, kit.bob.address, False)
    assert await kit.a.credits(kit.env.token, kit.bob.address) == 1700
    b0 = await kit.token_balance(kit.bob.address)
    pull = ADJ.encode_call("withdraw", kit.env.token, kit.bob.address)
    first, second = await _same_block(kit, kit.b.sender, [pull, pull])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.NothingToWithdraw)
    assert await kit.token_balance(kit.bob.address) - b0 == 1700
    assert await kit.a.credits(kit.env.token, kit.bob.address) == 0


async def test_double_partial_withdrawal_in_one_block(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1000, 1000))
    w, sigs = ch.withdrawal(1, 0, 400, kit.carol.address)
    data = ADJ.encode_call("withdrawPartial", params_tuple(ch.params), withdrawal_terms_tuple(w),
                           *map(signature_tuple, sigs))
    c0 = await kit.token_balance(kit.carol.address)
    first, second = await _same_block(kit, kit.a.sender, [data, data])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.WithdrawalNotNewer)
    assert await kit.token_balance(kit.carol.address) - c0 == 400
    assert (await kit.a.channel(ch.id)).withdrawn == (400, 0)


async def test_double_conclude_in_one_block(kit: Kit) -> None:
    """Twice the same final state, then a timeout conclusion racing a cooperative one: the
    second always reverts ChannelConcluded and only one outcome is paid."""
    ch = kit.channel(kit.env.token, period=60)
    await kit.fund(ch, (1000, 1000))
    final = ch.signed(2, balances=(600, 1400), deposited=(1000, 1000), final=True)
    s0, s1 = both_signatures(final)
    conclude = ADJ.encode_call("conclude", params_tuple(ch.params), state_tuple(final.state),
                               s0, s1)
    snap = await kit.rpc.dev.snapshot()
    a0, b0 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    first, second = await _same_block(kit, kit.c.sender, [conclude, conclude])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.ChannelConcluded)
    assert await kit.token_balance(kit.alice.address) - a0 == 600
    assert await kit.token_balance(kit.bob.address) - b0 == 1400
    assert len([e for e in kit.a.decode_receipt_events(first) if e.name == "Concluded"]) == 1
    assert await kit.rpc.dev.revert(snap)
    await kit.c.sender.sync_nonce()  # type: ignore[union-attr]  # the revert rewound its nonce

    v1 = ch.signed(1, balances=(1000, 1000))
    await kit.b.register(ch.params, v1)
    await kit.warp(61)
    timeout = ADJ.encode_call("concludeAfterTimeout", params_tuple(ch.params),
                              state_tuple(v1.state))
    first, second = await _same_block(kit, kit.c.sender, [timeout, conclude])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.ChannelConcluded)
    assert await kit.token_balance(kit.alice.address) - a0 == 1000
    assert await kit.token_balance(kit.bob.address) - b0 == 1000
    assert (await kit.a.channel(ch.id)).version == 1


# ---- C15 / C16 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bob_deposit", [0, 499])
async def test_unfunded_channel_refunds_deposits(kit: Kit, bob_deposit: int) -> None:
    """C15: v0 credits nothing. Alice deposits 500, Bob never funds (or funds 1 short, so v1 is
    never signed); Alice registers v0, waits the period, concludes: each side gets back exactly
    what it deposited, and the adjudicator keeps nothing of the channel."""
    ch = kit.channel(kit.env.token, period=120)
    v0 = ch.signed(0)
    assert v0.state.balances == (0, 0) and v0.state.deposited == (0, 0)
    held = await kit.token_balance(kit.env.adjudicator)
    a0, b0 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    await kit.fund(ch, (500, bob_deposit))
    await kit.a.register(ch.params, v0)
    with pytest.raises(errors.ChallengeNotExpired):
        await kit.a.conclude_after_timeout(ch.params, v0.state)
    await kit.warp(121)
    r = await kit.a.conclude_after_timeout(ch.params, v0.state)
    (ev,) = [e for e in kit.a.decode_receipt_events(r) if e.name == "Concluded"]
    assert ev.args["payout0"] == 500 and ev.args["payout1"] == bob_deposit
    assert await kit.token_balance(kit.alice.address) == a0
    assert await kit.token_balance(kit.bob.address) == b0
    assert await kit.token_balance(kit.env.adjudicator) == held


async def test_register_ignores_calldata_garbage(kit: Kit) -> None:
    """C16: the adjudicator trusts no caller-supplied history: ``register`` takes only the
    params, the state and its two signatures, and checks just those (signatures, version,
    conservation). There is no proof list to omit or forge, and every argument is static (the
    signatures are compact): the only "unrelated" bytes a caller controls are trailing data.
    Filling those with garbage gives exactly the normal call's outcome (same record, event)."""
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    results = []
    for variant in ("canonical", "trailing"):
        snap = await kit.rpc.dev.snapshot()
        outcome = []
        first_ts = 0
        for version, balances in ((3, (60, 140)), (5, (20, 180))):
            signed = ch.signed(version, balances=balances)
            s0, s1 = both_signatures(signed)
            data = ADJ.encode_call("register", params_tuple(ch.params),
                                   state_tuple(signed.state), s0, s1)
            junk = os.urandom(200)
            if variant == "trailing":
                data += junk
            r = await sender.transact(kit.a.checksum_address, data, timeout=30)
            first_ts = first_ts or await kit.a.block_timestamp(r.block_number)
            view = await kit.a.channel(ch.id)
            (ev,) = kit.a.decode_receipt_events(r)
            # deadline relative to the first registration: PERIOD both times (never extended)
            outcome.append((view.status, view.version, view.state_hash, view.deposits,
                            view.deadline - first_ts, ev.name, ev.args["version"],
                            ev.args["stateHash"], ev.args["deadline"] - first_ts))
        # a stale state with garbage is still refused like the canonical call
        old = ch.signed(4, balances=(100, 100))
        o0, o1 = both_signatures(old)
        bad = ADJ.encode_call("register", params_tuple(ch.params), state_tuple(old.state), o0, o1)
        with pytest.raises(TransactionReverted) as info:
            sent = await sender.send(kit.a.checksum_address, bad + os.urandom(7), gas=500_000)
            await sender.wait_receipt(sent, timeout=30)
        assert isinstance(errors.from_chain_error(info.value), errors.NotNewerVersion)
        results.append(outcome)
        assert await kit.rpc.dev.revert(snap)
        await sender.sync_nonce()  # the revert rewound carol's nonce
    assert results[0][0][4] == results[0][1][4] == PERIOD
    assert results[0] == results[1]
