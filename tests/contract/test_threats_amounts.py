"""docs/THREATS.md section 2, C11 and C13: amounts near the 2**96 channel cap and 2**256
(deposits, wrapping sums, withdrawals and payouts at the boundaries), and conserving states far
above the holdings that can never be paid out.
"""

from __future__ import annotations

from typing import Any

import pytest

from adjudicator import errors, tokens
from adjudicator.client import ChannelStatus, params_tuple, signature_tuple
from channels.core import eip712
from channels.core.errors import InvalidAmount, InvalidField
from channels.core.hashing import keccak256
from channels.core.model import State

from .kit import UINT256_MAX, Kit, sign_raw_state

CAP = 2**96 - 1  # MAX_CHANNEL_DEPOSITS: a channel's deposits, both participants together

# ---- C11: amounts near the 2**96 cap / 2**256 ----------------------------------------------


async def _mint(kit: Kit, who: bytes, amount: int) -> None:
    await tokens.mint(kit.rpc, kit.c.sender, kit.env.token, who, amount)  # type: ignore[arg-type]


async def test_deposit_totals_above_the_channel_cap_revert(kit: Kit) -> None:
    """A channel's deposits, both participants together, stop at MAX_CHANNEL_DEPOSITS = 2**96 - 1
    (docs/PROTOCOL.md section 8): exactly the cap is accepted, one unit more from either side
    reverts AmountTooLarge, and so does any single amount above it (up to 2**255)."""
    ch = kit.channel(kit.env.token)
    await _mint(kit, kit.alice.address, 2**255)
    await _mint(kit, kit.bob.address, 2**129)
    assert (await kit.a.call("MAX_CHANNEL_DEPOSITS"))[0] == CAP
    held = await kit.token_balance(kit.env.adjudicator)
    for amount in (CAP + 1, 2**128, 2**255):
        with pytest.raises(errors.AmountTooLarge):
            await kit.a.deposit(ch.params, 0, amount)
    await kit.a.deposit(ch.params, 0, CAP - 10)
    with pytest.raises(errors.AmountTooLarge):  # the cap counts both participants together
        await kit.b.deposit(ch.params, 1, 11)
    await kit.b.deposit(ch.params, 1, 10)
    for client, who in ((kit.a, 0), (kit.b, 1)):
        with pytest.raises(errors.AmountTooLarge):
            await client.deposit(ch.params, who, 1)
    assert (await kit.a.channel(ch.id)).deposits == (CAP - 10, 10)
    assert await kit.token_balance(kit.env.adjudicator) - held == CAP


async def test_wrapping_states_violate_conservation(kit: Kit) -> None:
    """Field sums that would wrap modulo 2**256 (so a wrapped identity would hold) are refused
    by register, checkpoint and conclude; the core cannot even represent them."""
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    top = UINT256_MAX
    cases = [
        # balances                locked   deposited        withdrawn
        ((top, 1), 0, (0, 0), (0, 0)),  # balance0 + balance1 wraps to 0 == 0 - 0
        ((2**255, 0), 2**255, (0, 0), (0, 0)),  # + locked wraps
        ((0, 0), 0, (top, 1), (top, 1)),  # deposited and withdrawn both wrap to 0
        ((top, 0), 0, (0, 0), (1, 0)),  # 0 - 1 wraps to balance0
        ((100, 100 + 2**128), 0, (100, 100), (0, 0)),  # only off by 2**128 (uint128 wrap)
        ((400, 0), 2**256 - 200, (100, 100), (0, 0)),  # held + locked wraps to 200 == 200
    ]
    for balances, locked, deposited, withdrawn in cases:
        for final in (False, True):
            fields = (ch.id, 1, balances[0], balances[1], deposited[0], deposited[1],
                      withdrawn[0], withdrawn[1], locked, bytes(32), 0, final)
            sigs = sign_raw_state(ch, fields)
            fn = "conclude" if final and locked == 0 else "register"
            for name in {fn, "checkpoint"}:
                with pytest.raises(errors.ConservationViolated):
                    await kit.a.transact(name, params_tuple(ch.params), fields, *sigs)
            with pytest.raises((InvalidAmount, InvalidField)):
                State(ch.id, 1, balances, deposited, withdrawn, locked,  # type: ignore[arg-type]
                      bytes(32), 0, final)
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.OPEN and view.version == 0


async def test_huge_conserving_states_never_pay_more_than_held(kit: Kit) -> None:
    """A conserving state with amounts far above any deposit registers (register checks only
    signatures, version and conservation) but can never be paid out: UnderfundedState."""
    ch = kit.channel(kit.env.token, period=60)
    await kit.fund(ch, (100, 100))
    big = 2**200
    fields = (ch.id, 1, big, 0, big, 0, 0, 0, 0, bytes(32), 0, True)
    sigs = sign_raw_state(ch, fields)
    with pytest.raises(errors.UnderfundedState):
        await kit.a.transact("conclude", params_tuple(ch.params), fields, *sigs)
    await kit.a.transact("register", params_tuple(ch.params), fields, *sigs)
    await kit.warp(61)
    with pytest.raises(errors.UnderfundedState):
        await kit.c.transact("concludeAfterTimeout", params_tuple(ch.params), fields)
    assert (await kit.a.channel(ch.id)).status is ChannelStatus.DISPUTED
    assert await kit.token_balance(kit.env.adjudicator) >= 200


async def test_cap_boundaries_of_locked_payouts_and_withdrawals(kit: Kit) -> None:
    """The channel holds exactly the cap (2**96 - 1): withdrawals beyond the holdings or near
    2**256 revert (InsufficientHoldings / overflow panic), never wrap; a dispute that locks
    everything left concludes with the whole of it locked; a payout of everything is paid in
    full."""
    ch = kit.channel(kit.env.token, period=60)
    for account in (kit.alice.address, kit.bob.address):
        await _mint(kit, account, 2**129)
    half = CAP // 2
    await kit.fund(ch, (CAP - half, half))
    p = params_tuple(ch.params)
    total = CAP

    def w_call(version: int, who: int, amount: int) -> tuple[Any, ...]:
        w = (ch.id, version, who, amount, kit.carol.address)
        d = eip712.digest(ch.domain, keccak256(
            eip712.WITHDRAWAL_TYPEHASH
            + b"".join(x.rjust(32, b"\0") if isinstance(x, bytes) else x.to_bytes(32, "big")
                       for x in w)))
        return (p, w[1:], signature_tuple(ch.signers[0].sign_digest(d)),
                signature_tuple(ch.signers[1].sign_digest(d)))

    for amount in (total + 1, 2**128 + 5, UINT256_MAX):
        with pytest.raises(errors.InsufficientHoldings):
            await kit.a.transact("withdrawPartial", *w_call(1, 0, amount))
    await kit.a.transact("withdrawPartial", *w_call(1, 1, 1))
    for who in (0, 1):  # w0 + w1 (or w1 + amount) would exceed 2**256
        with pytest.raises((errors.PanicError, errors.InsufficientHoldings)) as info:
            await kit.a.transact("withdrawPartial", *w_call(2, who, UINT256_MAX))
        if isinstance(info.value, errors.PanicError):
            assert info.value.args_dict == {"code": 0x11}
    assert (await kit.a.channel(ch.id)).withdrawn == (0, 1)

    snap = await kit.rpc.dev.snapshot()
    locked = (ch.id, 2, 0, 0, CAP - half, half, 0, 1, total - 1, b"\x11" * 32, 1, False)
    await kit.a.transact("register", p, locked, *sign_raw_state(ch, locked))
    await kit.warp(61)
    await kit.c.transact("concludeAfterTimeout", p, locked)
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.CONCLUDED
    assert (view.locked_remaining, view.positions_root) == (total - 1, b"\x11" * 32)
    assert await kit.rpc.dev.revert(snap)
    # a cooperative final state paying everything left to one side
    final = (ch.id, 3, total - 1, 0, CAP - half, half, 0, 1, 0, bytes(32), 0, True)
    a0 = await kit.token_balance(kit.alice.address)
    await kit.b.transact("conclude", p, final, *sign_raw_state(ch, final))
    assert await kit.token_balance(kit.alice.address) - a0 == total - 1
    assert await kit.token_balance(kit.env.adjudicator) == 0
