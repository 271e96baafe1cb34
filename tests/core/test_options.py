"""Every trading rule of options.apply_trades (docs/PROTOCOL.md section 1; docs/THREATS.md C11,
C13, 6.4 and 6.5); the payoff arithmetic is in test_payoff.py."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from channels.core import eip712, model
from channels.core.errors import (
    BadAttestation,
    ChannelFinal,
    DuplicatePosition,
    ExpiryTooLate,
    ExpiryTooSoon,
    InsufficientFunds,
    InvalidAmount,
    InvalidField,
    InvalidOptionTerms,
    NotExercisable,
    OpenPositionsAtFinal,
    RuleViolation,
    TooManyPositions,
    UnconfirmedDeposit,
    UnknownPosition,
)
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Unwind,
    apply_trades,
    full_put_collateral,
    opening_state,
    withdrawal_of,
)
from channels.core.positions import PositionBook

from ._options_kit import (
    BTC,
    CHALLENGE,
    EXPIRY,
    FUNDS,
    NOW,
    PARAMS,
    attest,
    ctx,
    funded,
    position,
    refused,
    settle,
)
from ._strategies import ALICE, BOB, DOMAIN, MALLORY, ORACLE

# Happy path ------------------------------------------------------------------------------------


def test_open_unwind_settle_round_trip() -> None:
    s, book = funded()
    assert s.version == 1 and s.balances == (FUNDS, FUNDS) and s.deposited == (FUNDS, FUNDS)
    pos = position(collateral=500)
    s2 = apply_trades(s, book, [OpenOption(pos, 40)], ctx(), 2)
    assert s2.balances == (FUNDS + 40 - 500, FUNDS - 40)
    assert s2.locked == 500 and s2.position_count == 1 and s2.positions_root == pos.leaf()
    assert s2.conserves()
    s3 = apply_trades(s2, book, [Unwind(1, 123)], ctx(), 3)
    assert s3.balances == (FUNDS + 40 - 123, FUNDS - 40 + 123)
    assert s3.locked == 0 and s3.positions_root == bytes(32) and s3.position_count == 0
    s4 = apply_trades(s3, book, [OpenOption(position(2, collateral=10**5), 0)], ctx(), 4)
    # Call at strike 2000, price 2000.5, quantity 1: 0.5 USD = 500_000 units of a 6-decimal asset.
    s5 = apply_trades(s4, book, [settle(2, 2_000_50000000)], ctx(now=EXPIRY), 5)
    assert s5.balances[1] - s4.balances[1] == 10**5  # capped by the collateral
    s6 = apply_trades(s5, book, [Finalize()], ctx(), 6)
    assert s6.is_final and s6.conserves()


def test_settle_put_pays_holder() -> None:
    s, book = funded()
    qty = 10**14  # 0.0001 ETH: full collateral 0.2 USD = 200_000 units
    full = full_put_collateral(2_000 * 10**8, qty, 6)
    assert full == 200_000
    pos = position(kind=model.OptionKind.PUT, quantity=qty, writer=1, collateral=full)
    s = apply_trades(s, book, [OpenOption(pos, 10)], ctx(), 2)
    assert s.balances == (FUNDS - 10, FUNDS + 10 - full)
    s = apply_trades(s, book, [settle(1, 1_000 * 10**8)], ctx(now=EXPIRY + 5), 3)
    # 1000 USD below the strike on 0.0001 ETH: 0.1 USD = 100_000 units to holder 0.
    assert s.balances == (FUNDS - 10 + 100_000, FUNDS + 10 - 100_000)
    assert s.conserves() and s.locked == 0


def test_withdrawal_debits_and_names_version() -> None:
    s, book = funded()
    trades = [DebitWithdrawal(1, 300, MALLORY.address)]
    s2 = apply_trades(s, book, trades, ctx(), 2)
    assert s2.withdrawn == (0, 300) and s2.balances == (FUNDS, FUNDS - 300) and s2.conserves()
    w = withdrawal_of(s2, trades)
    assert w == model.Withdrawal(s2.channel_id, 2, 1, 300, MALLORY.address)
    assert withdrawal_of(s2, [Pay(0, 1)]) is None


# Rule by rule ----------------------------------------------------------------------------------


def test_insufficient_funds() -> None:
    s, book = funded((100, 50))
    c = ctx(deposits=(100, 50))
    refused(s, book, [Pay(1, 51)], InsufficientFunds, c)
    refused(s, book, [Pay(0, 60), Pay(0, 41)], InsufficientFunds, c)
    refused(s, book, [OpenOption(position(collateral=101), 0)], InsufficientFunds, c)
    refused(s, book, [OpenOption(position(collateral=10), 51)], InsufficientFunds, c)  # premium
    refused(s, book, [DebitWithdrawal(0, 101, ALICE.address)], InsufficientFunds, c)
    # The premium received can fund the collateral in the same trade.
    s2 = apply_trades(s, book, [OpenOption(position(collateral=140), 40)], c, 2)
    assert s2.balances == (0, 10)


@pytest.mark.parametrize("amount", [0, -1, True, False, 1.0, 2**256, "5", None], ids=repr)
def test_invalid_amounts(amount: object) -> None:
    s, book = funded()
    for trade in (
        Pay(0, amount),  # type: ignore[arg-type]
        CreditDeposit(0, amount),  # type: ignore[arg-type]
        DebitWithdrawal(0, amount, ALICE.address),  # type: ignore[arg-type]
    ):
        refused(s, book, [trade], InvalidAmount)


@pytest.mark.parametrize("premium", [-1, True, 1.5, 2**256], ids=repr)
def test_invalid_premium(premium: object) -> None:
    s, book = funded()
    refused(s, book, [OpenOption(position(), premium)], InvalidAmount)  # type: ignore[arg-type]


def test_unwind_share_above_collateral() -> None:
    s, book = funded()
    s = apply_trades(s, book, [OpenOption(position(collateral=100), 0)], ctx(), 2)
    refused(s, book, [Unwind(1, 101)], InvalidAmount)
    refused(s, book, [Unwind(1, -1)], InvalidAmount)
    refused(s, book, [Unwind(1, True)], InvalidAmount)  # type: ignore[arg-type]


def test_position_fields_refused_at_construction() -> None:
    with pytest.raises(InvalidAmount):
        position(collateral=2**128)
    with pytest.raises(InvalidAmount):
        position(strike=-1)
    with pytest.raises(InvalidAmount):
        position(expiry=2**64)
    with pytest.raises(InvalidField):
        position(writer=2)
    with pytest.raises(InvalidField):
        position(kind=2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [{"strike": 0}, {"quantity": 0}, {"collateral": 0}],
    ids=["strike", "quantity", "collateral"],
)
def test_invalid_option_terms(kw: dict[str, int]) -> None:
    s, book = funded()
    refused(s, book, [OpenOption(position(**kw), 0)], InvalidOptionTerms)


def test_expiry_too_soon_boundary() -> None:
    s, book = funded()
    margin = 600
    c = ctx(settle_margin=margin)
    earliest = NOW + CHALLENGE + margin
    refused(s, book, [OpenOption(position(expiry=earliest - 1), 0)], ExpiryTooSoon, c)
    refused(s, book, [OpenOption(position(expiry=NOW), 0)], ExpiryTooSoon, c)
    refused(s, book, [OpenOption(position(expiry=0), 0)], ExpiryTooSoon, c)
    s2 = apply_trades(s, book, [OpenOption(position(expiry=earliest), 0)], c, 2)
    assert s2.position_count == 1


def test_expiry_too_late_boundary() -> None:
    s, book = funded()
    c = ctx(max_lifetime=10**6)
    refused(s, book, [OpenOption(position(expiry=NOW + 10**6 + 1), 0)], ExpiryTooLate, c)
    refused(s, book, [OpenOption(position(expiry=2**64 - 1), 0)], ExpiryTooLate, c)
    apply_trades(s, book, [OpenOption(position(expiry=NOW + 10**6), 0)], c, 2)


def test_too_many_positions() -> None:
    s, book = funded()
    c = ctx(max_positions=2)
    s = apply_trades(s, book, [OpenOption(position(1), 0), OpenOption(position(2), 0)], c, 2)
    refused(s, book, [OpenOption(position(3), 0)], TooManyPositions, c)


def test_duplicate_position() -> None:
    s, book = funded()
    s = apply_trades(s, book, [OpenOption(position(1), 0)], ctx(), 2)
    refused(s, book, [OpenOption(position(1, collateral=7), 0)], DuplicatePosition)
    refused(s, book, [OpenOption(position(2), 0), OpenOption(position(2), 0)], DuplicatePosition)


def test_unknown_position() -> None:
    s, book = funded()
    s = apply_trades(s, book, [OpenOption(position(1), 0)], ctx(), 2)
    refused(s, book, [Unwind(9, 0)], UnknownPosition)
    refused(s, book, [settle(9, 10**8)], UnknownPosition, ctx(now=EXPIRY))
    refused(s, book, [Unwind(1, 0), Unwind(1, 0)], UnknownPosition)  # already closed
    refused(s, book, [Unwind(1, 0), settle(1, 10**8)], UnknownPosition, ctx(now=EXPIRY))


def test_not_exercisable_before_expiry() -> None:
    s, book = funded()
    s = apply_trades(s, book, [OpenOption(position(1), 0)], ctx(), 2)
    refused(s, book, [settle(1, 3_000 * 10**8)], NotExercisable, ctx(now=EXPIRY - 1))
    apply_trades(s, book, [settle(1, 3_000 * 10**8)], ctx(now=EXPIRY), 3)


def test_bad_attestations() -> None:
    s, book = funded()
    s = apply_trades(s, book, [OpenOption(position(1), 0)], ctx(), 2)
    c = ctx(now=EXPIRY + 1)
    att, sig = attest(3_000 * 10**8)
    bad = [
        settle(1, 3_000 * 10**8, underlying=BTC),
        settle(1, 3_000 * 10**8, expiry=EXPIRY + 1),
        settle(1, 3_000 * 10**8, expiry=EXPIRY - 1),
        settle(1, 0),
        settle(1, 3_000 * 10**8, signer=MALLORY),
        settle(1, 3_000 * 10**8, signer=ALICE),  # a participant is not the oracle
        Settle(1, att, sig[:64]),
        Settle(1, att, sig + b"\x00"),
        Settle(1, att, sig[:64] + b"\x00"),
        Settle(1, att, bytes(65)),
        Settle(1, att, bytearray(sig)),  # type: ignore[arg-type]
        Settle(1, att, _malleate(sig)),
        Settle(1, dataclasses.replace(att, price=att.price + 1), sig),  # price changed
    ]
    for trade in bad:
        refused(s, book, [trade], BadAttestation, c)
    # An attestation signed over another domain (another chain) is refused too.
    other = eip712.Domain(1, DOMAIN.verifying_contract)
    sig_other = ORACLE.sign_digest(eip712.attestation_digest(other, att))
    refused(s, book, [Settle(1, att, sig_other)], BadAttestation, c)
    apply_trades(s, book, [Settle(1, att, sig)], c, 3)


def _malleate(sig: bytes) -> bytes:
    from channels.core.signing import malleate

    return malleate(sig)


def test_unconfirmed_deposit() -> None:
    book = PositionBook()
    s0 = opening_state(PARAMS)
    refused(s0, book, [CreditDeposit(0, 101)], UnconfirmedDeposit, ctx(deposits=(100, 0)))
    refused(s0, book, [CreditDeposit(1, 1)], UnconfirmedDeposit, ctx(deposits=(100, 0)))
    refused(
        s0,
        book,
        [CreditDeposit(0, 60), CreditDeposit(0, 41)],
        UnconfirmedDeposit,
        ctx(deposits=(100, 0)),
    )
    s1 = apply_trades(s0, book, [CreditDeposit(0, 100)], ctx(deposits=(100, 0)), 1)
    refused(s1, book, [CreditDeposit(0, 1)], UnconfirmedDeposit, ctx(deposits=(100, 0)))
    s2 = apply_trades(s1, book, [CreditDeposit(0, 1)], ctx(deposits=(101, 0)), 2)
    assert s2.deposited == (101, 0) and s2.balances == (101, 0)


def test_open_positions_at_final() -> None:
    s, book = funded()
    refused(s, book, [OpenOption(position(1), 0), Finalize()], OpenPositionsAtFinal)
    s = apply_trades(s, book, [OpenOption(position(1), 0)], ctx(), 2)
    refused(s, book, [Finalize()], OpenPositionsAtFinal)
    s_final = apply_trades(s, book, [Unwind(1, 0), Finalize()], ctx(), 3)
    assert s_final.is_final and s_final.position_count == 0


def test_channel_final() -> None:
    s, book = funded()
    s = apply_trades(s, book, [Finalize()], ctx(), 2)
    for trades in ([Pay(0, 1)], [Finalize()], [CreditDeposit(0, 1)]):
        refused(s, book, trades, ChannelFinal)  # type: ignore[arg-type]


def test_one_withdrawal_per_update() -> None:
    s, book = funded()
    refused(
        s,
        book,
        [DebitWithdrawal(0, 1, ALICE.address), DebitWithdrawal(1, 1, BOB.address)],
        InvalidField,
    )
    refused(
        s,
        book,
        [DebitWithdrawal(0, 1, ALICE.address), DebitWithdrawal(0, 1, ALICE.address)],
        InvalidField,
    )
    refused(s, book, [DebitWithdrawal(0, 1, model.ZERO_ADDRESS)], InvalidField)
    refused(s, book, [DebitWithdrawal(0, 1, ALICE.address[:19])], InvalidField)


def test_finalize_must_be_last() -> None:
    s, book = funded()
    refused(s, book, [Finalize(), Pay(0, 1)], InvalidField)
    refused(s, book, [Finalize(), Finalize()], InvalidField)


def test_batch_shape_rules() -> None:
    s, book = funded()
    refused(s, book, [], InvalidField)
    refused(s, book, [Pay(0, 1)] * 4, InvalidField, ctx(max_trades_per_update=3))
    refused(s, book, ["not a trade"], InvalidField)
    refused(s, book, [Pay(2, 1)], InvalidField)
    refused(s, book, [Pay(True, 1)], InvalidField)
    refused(s, book, [CreditDeposit(-1, 1)], InvalidField)
    refused(s, book, [OpenOption("position", 0)], InvalidField)  # type: ignore[arg-type]


def test_error_mid_batch_leaves_book_unchanged() -> None:
    s, book = funded()
    s = apply_trades(s, book, [OpenOption(position(1), 0), OpenOption(position(2), 0)], ctx(), 2)
    refused(
        s,
        book,
        [Unwind(1, 5), OpenOption(position(3), 0), OpenOption(position(4), 0), Pay(0, FUNDS * 5)],
        InsufficientFunds,
    )
    assert {p.id for p in book} == {1, 2}


def test_amounts_above_uint128_refused() -> None:
    top = model.UINT128_MAX
    s, book = funded((top, top))
    refused(s, book, [Pay(0, 1)], InvalidAmount, ctx(deposits=(top, top)))
    big_pos = position(collateral=top)
    s2 = apply_trades(s, book, [OpenOption(big_pos, 0)], ctx(deposits=(top, top)), 2)
    refused(
        s2,
        book,
        [OpenOption(position(2, writer=1, collateral=1), 0)],
        InvalidAmount,
        ctx(deposits=(top, top)),
    )
    refused(s, book, [CreditDeposit(0, 1)], InvalidAmount, ctx(deposits=(top + 1, top)))


def test_a_paid_side_may_withdraw_beyond_its_own_deposit() -> None:
    # Found by the conservation property: Bob, paid by Alice, withdraws his deposit and the
    # payment. The adjudicator bounds only the channel's total (executed withdrawals never exceed
    # its deposits: InsufficientHoldings), not each side's.
    s, book = funded()
    paid = apply_trades(s, book, [Pay(0, FUNDS // 2)], ctx(), 2)
    out = apply_trades(
        paid, book, [DebitWithdrawal(1, FUNDS + FUNDS // 2, MALLORY.address)], ctx(), 3
    )
    assert out.withdrawn == (0, FUNDS + FUNDS // 2) and out.deposited == (FUNDS, FUNDS)
    assert out.balances == (FUNDS // 2, 0) and out.conserves()
    refused(
        paid, book, [DebitWithdrawal(1, FUNDS + FUNDS // 2 + 1, MALLORY.address)], InsufficientFunds
    )


# Property tests -----------------------------------------------------------------------------------


trade_strategy = st.one_of(
    st.builds(Pay, payer=st.sampled_from([0, 1]), amount=st.integers(0, 3 * FUNDS)),
    st.builds(
        lambda pid, kind, writer, coll, prem, strike: OpenOption(
            position(pid, model.OptionKind(kind), strike=strike, writer=writer, collateral=coll),
            prem,
        ),
        pid=st.integers(0, 5),
        kind=st.sampled_from([0, 1]),
        writer=st.sampled_from([0, 1]),
        coll=st.integers(0, FUNDS),
        prem=st.integers(0, FUNDS // 2),
        strike=st.integers(0, 4_000 * 10**8),
    ),
    st.builds(Unwind, position_id=st.integers(0, 5), holder_share=st.integers(0, FUNDS)),
    st.builds(
        lambda pid, price: ("settle", pid, price),
        pid=st.integers(0, 5),
        price=st.integers(0, 5_000 * 10**8),
    ),
    st.builds(CreditDeposit, participant=st.sampled_from([0, 1]), amount=st.integers(0, FUNDS)),
    st.builds(
        lambda who, amount: DebitWithdrawal(who, amount, MALLORY.address),
        who=st.sampled_from([0, 1]),
        amount=st.integers(0, FUNDS),
    ),
    st.just(Finalize()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(trade_strategy, min_size=1, max_size=4), max_size=12))
def test_conservation_in_every_reachable_state(batches: list[list[object]]) -> None:
    state, book = funded()
    confirmed = (3 * FUNDS, 3 * FUNDS)
    for raw in batches:
        trades = []
        for t in raw:
            if isinstance(t, tuple):  # a settlement: sign the attestation for the position's expiry
                _, pid, price = t
                trades.append(settle(pid, price))
            else:
                trades.append(t)
        before = (state, book.snapshot(), book.root)
        book.begin()
        now = EXPIRY if any(isinstance(t, Settle) for t in trades) else NOW
        try:
            new = apply_trades(
                state, book, trades, ctx(now=now, deposits=confirmed), state.version + 1
            )
        except RuleViolation as exc:
            event(f"refused {exc.rule}")
            book.rollback_newest()
            assert (state, book.snapshot(), book.root) == before
            continue
        book.commit_oldest()
        event(f"accepted with {len(book)} open")
        assert new.conserves()
        assert new.version == state.version + 1
        assert new.locked == book.locked == sum(p.collateral for p in book)
        assert new.positions_root == book.root and new.position_count == len(book)
        assert all(x < 2**128 for x in (*new.balances, *new.deposited, *new.withdrawn, new.locked))
        # What was withdrawn never exceeds what was deposited, in total (the adjudicator's rule):
        # one side may withdraw beyond its own deposit what the other side paid it.
        assert sum(new.withdrawn) <= sum(new.deposited)
        state = new
        if state.is_final:
            assert len(book) == 0
            break


big = st.one_of(
    st.sampled_from([1, model.UINT128_MAX, model.UINT128_MAX - 1, 2**127]),
    st.integers(1, 2**129),
)


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(big, big),
    st.lists(
        st.one_of(
            st.builds(Pay, payer=st.sampled_from([0, 1]), amount=big),
            st.builds(CreditDeposit, participant=st.sampled_from([0, 1]), amount=big),
            st.builds(
                lambda pid, writer, coll, prem: OpenOption(
                    position(pid, writer=writer, collateral=min(coll, model.UINT128_MAX)), prem
                ),
                pid=st.integers(0, 3),
                writer=st.sampled_from([0, 1]),
                coll=big,
                prem=big,
            ),
            st.builds(
                lambda who, amount: DebitWithdrawal(who, amount, MALLORY.address),
                who=st.sampled_from([0, 1]),
                amount=big,
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_no_overflow_near_uint128(confirmed: tuple[int, int], trades: list[object]) -> None:
    """Near the uint128 limit a batch either stays in range or is refused; it never wraps."""
    c = ctx(deposits=confirmed)
    state, book = opening_state(PARAMS), PositionBook()
    credit = [CreditDeposit(i, min(a, model.UINT128_MAX)) for i, a in enumerate(confirmed)]
    state = apply_trades(state, book, credit, c, 1)
    for trade in trades:
        book.begin()
        try:
            new = apply_trades(state, book, [trade], c, state.version + 1)  # type: ignore[list-item]
        except RuleViolation as exc:
            book.rollback_newest()
            event(f"refused {exc.rule}")
            continue
        book.commit_oldest()
        event("accepted")
        assert new.conserves()
        assert all(
            0 <= x <= model.UINT128_MAX
            for x in (*new.balances, *new.deposited, *new.withdrawn, new.locked)
        )
        state = new
