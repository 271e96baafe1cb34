"""Built-in risk limits (channels.core.risk): what counts, what is refused, and what never is."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from channels.core.model import Amount, OptionKind, Position, PositionId, symbol
from channels.core.options import OpenOption, Pay, Trade, Unwind
from channels.core.risk import NO_LIMITS, Exposure, Held, RiskLimits, check, exposure

ETH, BTC = symbol("ETH-USD"), symbol("BTC-USD")
NOW = 1_700_000_000
DAY = 86_400


def position(
    pid: int, writer: int, collateral: int = 1_000, strike: int = 3000 * 10**8
) -> Position:
    return Position(
        id=PositionId(pid),
        underlying=ETH,
        kind=OptionKind.CALL,
        strike=strike,
        expiry=NOW + 7 * DAY,
        quantity=10**18,
        writer=writer,
        collateral=Amount(collateral),
    )


def held(*positions: Position, us: int = 1) -> list[Held]:
    return [Held(p, us, 6) for p in positions]


def test_exposure_counts_what_we_write_and_nets_what_we_hold() -> None:
    written, bought = position(1, writer=1, collateral=700), position(2, writer=0, collateral=400)
    figures = exposure(held(written, bought), {})
    assert figures.locked == 700 and figures.positions == 2
    assert figures.notional[ETH] == 2 * 3000 * 10**6
    assert figures.loss == 700  # no price known: the whole written collateral
    at_3500 = exposure(held(written, bought), {ETH: 3500 * 10**8})
    # 500 USD in the money: we owe our whole 700 of collateral, and are owed 400 (capped): net 300.
    assert at_3500.loss == 300
    assert exposure(held(written), {ETH: 3500 * 10**8}).loss == 700
    assert exposure(held(written), {ETH: 2900 * 10**8}).loss == 0  # out of the money


def test_each_limit_names_itself_and_the_figures() -> None:
    write = OpenOption(position(9, writer=1, collateral=5_000), Amount(10))
    after = exposure(held(write.position), {})
    cases = {
        "max_collateral_locked": RiskLimits(max_collateral_locked=4_999),
        "max_open_positions": RiskLimits(max_open_positions=0),
        "max_notional": RiskLimits(max_notional=1),
        "max_loss": RiskLimits(max_loss=100),
        "min_time_to_expiry": RiskLimits(min_time_to_expiry=8 * DAY),
        "max_expiry_horizon": RiskLimits(max_expiry_horizon=DAY),
    }
    for name, limits in cases.items():
        refusal = check(limits, (write,), 1, after, premium_paid_today=0, now=NOW)
        assert refusal is not None and refusal.rule == "LimitExceeded", name
        assert refusal.reason.startswith(name), refusal.reason
    notional = RiskLimits(max_notional=10**30, notional_by_underlying={ETH: 1})
    assert check(notional, (write,), 1, after, premium_paid_today=0, now=NOW) is not None


def test_the_premium_we_pay_per_day() -> None:
    buy = OpenOption(position(3, writer=0), Amount(600))
    after = exposure(held(buy.position), {})
    limits = RiskLimits(max_premium_per_day=1_000)
    assert check(limits, (buy,), 1, after, premium_paid_today=400, now=NOW) is None
    refusal = check(limits, (buy,), 1, after, premium_paid_today=401, now=NOW)
    assert refusal is not None and "1001" in refusal.reason
    # The premium we receive (we write) is not limited by it.
    assert check(limits, (OpenOption(position(4, 1), Amount(10**9)),), 1, after,
                 premium_paid_today=10**9, now=NOW) is None  # fmt: skip


amounts = st.integers(0, 10**12)
limit_sets = st.builds(
    RiskLimits,
    max_collateral_locked=st.none() | amounts,
    max_open_positions=st.none() | st.integers(0, 5),
    max_notional=st.none() | amounts,
    max_premium_per_day=st.none() | amounts,
    max_loss=st.none() | amounts,
)
exposures = st.builds(
    Exposure,
    locked=amounts,
    positions=st.integers(0, 10),
    notional=st.dictionaries(st.sampled_from([ETH, BTC]), amounts),
    loss=amounts,
)
reducing = st.lists(
    st.one_of(
        st.builds(Pay, payer=st.sampled_from([0, 1]), amount=st.integers(1, 10**9)),
        st.builds(Unwind, position_id=st.integers(0, 9), holder_share=amounts),
    ),
    min_size=1,
    max_size=4,
)


@given(limits=limit_sets, after=exposures, trades=reducing, paid=amounts)
def test_an_update_that_adds_no_exposure_is_never_refused(
    limits: RiskLimits, after: Exposure, trades: list[Trade], paid: int
) -> None:
    assert check(limits, trades, 1, after, premium_paid_today=paid, now=NOW) is None


@given(
    limits=limit_sets,
    after=exposures,
    paid=amounts,
    premium=amounts,
    writer=st.sampled_from([0, 1]),
)
def test_wider_limits_never_refuse_what_narrower_ones_allow(
    limits: RiskLimits, after: Exposure, paid: int, premium: int, writer: int
) -> None:
    trade = OpenOption(position(5, writer=writer), Amount(premium))
    if check(limits, (trade,), 1, after, premium_paid_today=paid, now=NOW) is None:
        wider = dataclasses.replace(
            limits,
            **{
                f.name: getattr(limits, f.name) * 2 + 1
                for f in dataclasses.fields(limits)
                if isinstance(getattr(limits, f.name), int)
            },
        )
        assert check(wider, (trade,), 1, after, premium_paid_today=paid, now=NOW) is None
    assert check(NO_LIMITS, (trade,), 1, after, premium_paid_today=paid, now=NOW) is None
