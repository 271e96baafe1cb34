"""Payoff parity (THREATS C11, PROTOCOL.md section 1): the core's ``options.payoff`` /
``options.value`` equal the Solidity ``OptionPayoff`` (through ``Harness.payoff`` /
``Harness.cappedValue``) for a few hundred random inputs, batched into one JSON-RPC round trip
per Hypothesis example, including operands near 2**256 where the 512-bit ``mulDiv`` must not
overflow.

No wrap, by construction of the spec: the payoff is ``min(cap, value)`` and ``cap`` fits 256 bits,
so where the exact (Python) value is >= 2**256 the contract must return the cap, never a wrapped
residue; ``test_value_beyond_uint256_saturates_at_the_cap`` pins that. (It does not revert: the
capped result is representable; only an unknown kind reverts.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicator import errors
from channels.core import options
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

from .kit import UINT128_MAX, UINT256_MAX, Env, SyncChain, artifact_abi, deploy_artifact_sync

HARNESS = artifact_abi("Harness")
BATCH = 40
SETTINGS = settings(max_examples=8, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def harness(env: Env) -> bytes:
    return deploy_artifact_sync(env, "Harness")


@pytest.fixture(scope="module")
def chain(env: Env) -> Iterator[SyncChain]:
    c = SyncChain(env.url)
    yield c
    c.close()


def _near(top: int) -> st.SearchStrategy[int]:
    return st.integers(max(0, top - 2**70), top)


# realistic magnitudes, powers of two, and values right below 2**128 / 2**256
u256 = st.one_of(
    st.integers(0, 10**30),
    st.integers(0, UINT256_MAX),
    st.integers(0, 255).map(lambda e: 2**e),
    _near(UINT128_MAX),
    _near(UINT256_MAX),
)
u128 = st.one_of(st.integers(0, 10**24), st.integers(0, UINT128_MAX), _near(UINT128_MAX))
decimals = st.one_of(st.sampled_from([0, 6, 8, 18, 26, 27, 36]), st.integers(0, 36))

payoff_inputs = st.tuples(st.sampled_from([0, 1]), u256, u256, u128, u256, decimals)
value_inputs = st.tuples(u256, u256, decimals, u256)


def _call_all(chain: SyncChain, harness: bytes, fn: str, rows: Sequence[tuple[int, ...]]
              ) -> list[int]:
    outs = chain.call_many(harness, [HARNESS.encode_call(fn, *r) for r in rows])
    got = []
    for row, out in zip(rows, outs, strict=True):
        assert isinstance(out, bytes), f"{fn}{row} reverted: {out!r}"
        got.append(int(HARNESS.decode_output(fn, out)[0]))
    return got


@settings(SETTINGS)
@given(rows=st.lists(payoff_inputs, min_size=BATCH, max_size=BATCH))
def test_payoff_parity(chain: SyncChain, harness: bytes,
                       rows: list[tuple[int, int, int, int, int, int]]) -> None:
    got = _call_all(chain, harness, "payoff", rows)
    for (kind, strike, qty, coll, price, dec), onchain in zip(rows, got, strict=True):
        pos = Position(PositionId(0), symbol("X"), OptionKind(kind), Price(strike), Timestamp(0),
                       Quantity(qty), 0, Amount(coll))
        expected = options.payoff(pos, price, dec)
        assert onchain == expected, (kind, strike, qty, coll, price, dec)
        assert 0 <= onchain <= coll


@settings(SETTINGS)
@given(rows=st.lists(value_inputs, min_size=BATCH, max_size=BATCH))
def test_capped_value_parity(chain: SyncChain, harness: bytes,
                             rows: list[tuple[int, int, int, int]]) -> None:
    got = _call_all(chain, harness, "cappedValue", rows)
    for (diff, qty, dec, cap), onchain in zip(rows, got, strict=True):
        exact = options.value(diff, qty, dec)
        assert onchain == min(cap, exact), (diff, qty, dec, cap)
        if exact > UINT256_MAX:
            assert onchain == cap  # saturates, never wraps


@settings(SETTINGS)
@given(rows=st.lists(st.tuples(u256, u256, st.integers(37, 255), u256),
                     min_size=BATCH // 2, max_size=BATCH // 2))
def test_capped_value_beyond_core_decimals(chain: SyncChain, harness: bytes,
                                           rows: list[tuple[int, int, int, int]]) -> None:
    """The core refuses assetDecimals > 36 (Params); the contract accepts any uint8 and must
    still be exact (the multiply branch and the 10**e >= 2**256 shortcut)."""
    got = _call_all(chain, harness, "cappedValue", rows)
    for (diff, qty, dec, cap), onchain in zip(rows, got, strict=True):
        exact = diff * qty * 10**dec // 10**26
        assert onchain == min(cap, exact), (diff, qty, dec, cap)


def test_value_beyond_uint256_saturates_at_the_cap(chain: SyncChain, harness: bytes) -> None:
    big = UINT256_MAX
    rows = [
        (big, big, 36, big),  # product ~2**512 * 10**10: high word >= denominator
        (big, big, 0, big),
        (2**255, 2**255, 26, big),  # exactly 2**510, no scaling
        (2**128, 2**128, 26, big),  # 2**256: one past the top
        (2**128, 2**128 - 1, 26, big),  # 2**256 - 2**128: fits, exact
        (big, 10**26, 0, big),  # 512-bit intermediate, quotient exactly 2**256 - 1
        (big, 10**26 + 1, 0, big),  # quotient 2**256 - 1 + floor(big / 10**26): too big
        (big, 2, 27, big),  # decimals > 26: tryMul overflow path
        (2, 3, 255, big),  # 10**229: the e > 77 shortcut
        (big, big, 36, 7),  # a small cap still wins
    ]
    got = _call_all(chain, harness, "cappedValue", rows)
    for (diff, qty, dec, cap), onchain in zip(rows, got, strict=True):
        exact = diff * qty * 10**dec // 10**26
        assert onchain == min(cap, exact), (diff, qty, dec, cap)
    assert got[0] == UINT256_MAX and got[3] == UINT256_MAX
    assert got[4] == 2**256 - 2**128 and got[5] == UINT256_MAX


def test_payoff_huge_operands_and_unknown_kind(chain: SyncChain, harness: bytes) -> None:
    big = UINT256_MAX
    rows = [
        (0, 0, big, UINT128_MAX, big, 36),  # call, diff = 2**256 - 1
        (1, big, big, UINT128_MAX, 0, 36),  # put, diff = 2**256 - 1
        (0, big, big, UINT128_MAX, big, 36),  # at the money at the top: 0
        (1, 1, big, UINT128_MAX, big, 36),  # put far out of the money
        (0, big - 1, 10**7, big, big, 18),  # diff 1e-8 USD x 1e-11 units: 0.1 wei, rounds to 0
        (0, big - 1, 10**8, big, big, 18),  # x 1e-10 units: exactly 1 wei
    ]
    got = _call_all(chain, harness, "payoff", rows)
    assert got == [UINT128_MAX, UINT128_MAX, 0, 0, 0, 1]
    (out,) = chain.call_many(harness, [HARNESS.encode_call("payoff", 2, 1, 1, 1, 2, 6)])
    assert isinstance(out, errors.UnknownPositionKind)
