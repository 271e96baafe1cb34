"""Positions left open at conclusion: settle with an attestation, release after the grace period,
proofs against the current root (settled leaves zeroed)."""

import pytest

from adjudicator import errors
from adjudicator.client import (
    ChannelStatus,
    params_tuple,
    position_tuple,
    settlement_proof,
)
from channels.core.errors import UnknownPosition
from channels.core.model import (
    Amount,
    OptionKind,
    Position,
    PositionId,
    Price,
    Quantity,
    Timestamp,
    symbol,
)
from channels.core.options import SETTLEMENT_GRACE, payoff
from channels.core.positions import PositionBook, verify_proof

from .kit import Channel, Kit

UNIT = 10**6  # TUSD, 6 decimals
ETH_USD = symbol("ETH-USD")


def pos(pid: int, kind: OptionKind, strike: int, qty: float, writer: int, collateral: int,
        expiry: int) -> Position:
    return Position(PositionId(pid), ETH_USD, kind, Price(strike * 10**8), Timestamp(expiry),
                    Quantity(int(qty * 10**18)), writer, Amount(collateral))


async def concluded_with_positions(kit: Kit) -> tuple[Channel, PositionBook, list[Position]]:
    ch = kit.channel(kit.env.token, period=600)
    await kit.fund(ch, (1000 * UNIT, 1000 * UNIT))
    now = await kit.now()
    positions = [
        pos(1, OptionKind.CALL, 2000, 1, 0, 200 * UNIT, now + 2000),
        pos(2, OptionKind.PUT, 2000, 0.5, 1, 100 * UNIT, now + 2000),
        pos(3, OptionKind.CALL, 2100, 1, 1, 50 * UNIT, now + 3000),
    ]
    book = PositionBook()
    for p in positions:
        book.add(p)
    state = ch.state(7, balances=(800 * UNIT, 850 * UNIT), deposited=(1000 * UNIT, 1000 * UNIT),
                     locked=book.locked, root=book.root, count=len(book))
    with pytest.raises(errors.ChannelNotConcluded):
        await kit.a.release_unsettled(ch.params, positions[0], book.proof(PositionId(1)))
    await kit.a.register(ch.params, ch.sign(state))
    await kit.warp(601)
    r = await kit.c.conclude_after_timeout(ch.params, state)
    names = [e.name for e in kit.a.decode_receipt_events(r)]
    assert names == ["Concluded", "PositionsLocked"]  # token Transfer logs are not ours
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.CONCLUDED and view.version == 7
    assert view.positions_root == book.root and view.locked_remaining == 350 * UNIT
    return ch, book, positions


async def test_settle_and_release(kit: Kit) -> None:
    ch, book, (p1, p2, p3) = await concluded_with_positions(kit)
    start = await kit.a.head()
    snap = book.snapshot()
    att, sig = ch.attest(kit.oracle, ETH_USD, p1.expiry, 2100 * 10**8)
    with pytest.raises(errors.NotExpired):
        await kit.a.settle_position(ch.params, p1, book.proof(p1.id), att, sig)
    await kit.warp(2000)

    _, bob_sig = ch.attest(kit.bob, ETH_USD, p1.expiry, 2100 * 10**8)
    with pytest.raises(errors.WrongOracle) as info:
        await kit.a.settle_position(ch.params, p1, book.proof(p1.id), att, bob_sig)
    assert info.value.args_dict["recovered"] == kit.bob.address
    late, late_sig = ch.attest(kit.oracle, ETH_USD, p1.expiry + 1, 2100 * 10**8)
    with pytest.raises(errors.WrongAttestation):
        await kit.a.settle_position(ch.params, p1, book.proof(p1.id), late, late_sig)
    forged = pos(1, OptionKind.CALL, 2000, 1, 0, 300 * UNIT, p1.expiry)  # more collateral
    with pytest.raises(errors.InvalidProof):
        await kit.a.settle_position(ch.params, forged, book.proof(p1.id), att, sig)

    a0, b0 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    r = await kit.c.settle_position(ch.params, p1, book.proof(p1.id), att, sig)
    holder_gets = payoff(p1, 2100 * 10**8, 6)
    assert holder_gets == 100 * UNIT
    assert await kit.token_balance(kit.bob.address) - b0 == holder_gets  # bob holds p1
    assert await kit.token_balance(kit.alice.address) - a0 == p1.collateral - holder_gets
    (settled,) = [e for e in kit.a.decode_receipt_events(r) if e.name == "PositionSettled"]
    assert settled.args["positionId"] == 1 and settled.args["price"] == 2100 * 10**8
    assert settled.args["holderPayout"] == holder_gets
    view = await kit.a.channel(ch.id)
    assert view.positions_root == settled.args["newRoot"]
    assert view.locked_remaining == 150 * UNIT

    with pytest.raises(errors.AlreadySettled):
        await kit.a.settle_position(ch.params, p1, book.proof(p1.id), att, sig)
    with pytest.raises(UnknownPosition):
        settlement_proof(snap, {1}, 1)

    # p2's proof from the concluded tree is stale now; the one with slot 1 emptied is right
    att2, sig2 = ch.attest(kit.oracle, ETH_USD, p2.expiry, 2100 * 10**8)
    with pytest.raises(errors.InvalidProof):
        await kit.a.settle_position(ch.params, p2, book.proof(p2.id), att2, sig2)
    events = await kit.a.events(start, await kit.a.head(), [ch.id])
    settled_ids = {e.args["positionId"] for e in events
                   if e.name in ("PositionSettled", "PositionReleased")}
    assert settled_ids == {1}
    proof2 = settlement_proof(snap, settled_ids, 2)
    assert verify_proof(p2.leaf(), proof2, view.positions_root)
    b1 = await kit.token_balance(kit.bob.address)
    await kit.a.settle_position(ch.params, p2, proof2, att2, sig2)
    assert await kit.token_balance(kit.bob.address) - b1 == p2.collateral  # put out of the money

    proof3 = settlement_proof(snap, {1, 2}, 3)
    assert verify_proof(p3.leaf(), proof3, (await kit.a.channel(ch.id)).positions_root)
    with pytest.raises(errors.SettlementGraceNotOver):
        await kit.a.release_unsettled(ch.params, p3, proof3)
    await kit.warp(SETTLEMENT_GRACE + 1000)
    with pytest.raises(errors.InvalidWriter):
        raw = list(position_tuple(p3))
        raw[6] = 2
        await kit.a.transact("releaseUnsettled", params_tuple(ch.params), tuple(raw), proof3)
    b2 = await kit.token_balance(kit.bob.address)
    r3 = await kit.a.release_unsettled(ch.params, p3, proof3)
    assert await kit.token_balance(kit.bob.address) - b2 == p3.collateral  # bob wrote p3
    (released,) = [e for e in kit.a.decode_receipt_events(r3) if e.name == "PositionReleased"]
    assert released.args["positionId"] == 3 and released.args["collateral"] == p3.collateral
    view = await kit.a.channel(ch.id)
    assert view.locked_remaining == 0 and view.positions_root == released.args["newRoot"]
    with pytest.raises(errors.AlreadySettled):
        await kit.a.release_unsettled(ch.params, p3, proof3)
