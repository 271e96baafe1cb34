"""The payoff arithmetic of options: exact, rounded down, capped by the collateral, and
settlement conserving at any price (docs/PROTOCOL.md section 1; docs/THREATS.md C11, C13)."""

from __future__ import annotations

from fractions import Fraction
from math import floor

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from channels.core import model, options
from channels.core.options import OpenOption, apply_trades, full_put_collateral, payoff

from ._options_kit import EXPIRY, FUNDS, PARAMS, ctx, funded, position, settle

decimals = st.integers(0, 36)
prices = st.one_of(st.integers(0, 10**14), st.integers(0, 2**256 - 1))
quantities = st.one_of(st.integers(1, 10**24), st.integers(1, 2**256 - 1))


def exact_payoff(kind: int, strike: int, price: int, qty: int, coll: int, dec: int) -> int:
    diff = price - strike if kind == 0 else strike - price
    if diff <= 0:
        return 0
    exact = Fraction(diff) * Fraction(qty) * Fraction(10**dec, 10**26)
    return min(coll, floor(exact))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([0, 1]),
    st.integers(1, 2**256 - 1) | st.integers(1, 10**14),
    prices,
    quantities,
    st.integers(1, 2**128 - 1),
    decimals,
)
def test_payoff_matches_fraction_and_is_capped(
    kind: int, strike: int, price: int, qty: int, coll: int, dec: int
) -> None:
    pos = position(kind=model.OptionKind(kind), strike=strike, quantity=qty, collateral=coll)
    got = payoff(pos, price, dec)
    assert got == exact_payoff(kind, strike, price, qty, coll, dec)
    assert 0 <= got <= coll
    # Rounding is down: the holder never gets more than the exact value.
    diff = price - strike if kind == 0 else strike - price
    if diff > 0:
        assert got <= Fraction(diff * qty * 10**dec, 10**26)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**14), st.integers(1, 10**24), decimals, st.integers(0, 10**14))
def test_full_put_collateral_rounds_up_and_covers(
    strike: int, qty: int, dec: int, price: int
) -> None:
    full = full_put_collateral(strike, qty, dec)
    exact = Fraction(strike * qty * 10**dec, 10**26)
    assert full >= exact and full - exact < 1  # ceil
    assert full == options.value(strike, qty, dec) + (0 if exact.denominator == 1 else 1)
    assume(full < 2**128)
    if full == 0:
        return
    pos = position(kind=model.OptionKind.PUT, strike=strike, quantity=qty, collateral=full)
    # Covered at every price, including 0: the cap never bites below the exact floor value.
    assert payoff(pos, 0, dec) == options.value(strike, qty, dec)
    assert payoff(pos, price, dec) == exact_payoff(1, strike, price, qty, 2**256, dec)


def test_rounding_is_down_documented_example() -> None:
    # 1 unit of quantity (1e-18) at a 1e-8 price difference with 6 decimals is 1e-20 units: 0.
    assert options.value(1, 1, 6) == 0
    # 0.5 USD with 0 decimals rounds down to 0, 1.999... to 1.
    assert options.value(50_000_000, 10**18, 0) == 0
    assert options.value(199_999_999, 10**18, 0) == 1
    assert full_put_collateral(50_000_000, 10**18, 0) == 1
    assert full_put_collateral(100_000_000, 10**18, 0) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([0, 1]),
    st.integers(1, 10**12),
    st.integers(1, 10**20),
    st.integers(1, FUNDS),
    st.integers(1, 10**12),
)
def test_settlement_conserves_for_any_price(
    kind: int, strike: int, qty: int, coll: int, price: int
) -> None:
    state, book = funded()
    pos = position(kind=model.OptionKind(kind), strike=strike, quantity=qty, collateral=coll)
    state = apply_trades(state, book, [OpenOption(pos, 0)], ctx(), 2)
    after = apply_trades(state, book, [settle(1, price)], ctx(now=EXPIRY), 3)
    owed = payoff(pos, price, PARAMS.asset_decimals)
    assert after.conserves()
    assert after.balances[pos.holder] == state.balances[pos.holder] + owed
    assert after.balances[pos.writer] == state.balances[pos.writer] + coll - owed
