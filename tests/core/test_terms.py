"""Our terms for channel proposals (channels.core.terms): what is accepted, countered, refused."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from channels.core.errors import InvalidField, LocalError
from channels.core.model import Address, Params
from channels.core.terms import (
    NO_TERMS,
    AcceptTerms,
    AssetTerms,
    BadCounterOffer,
    CounterOffer,
    PeerTerms,
    PeerUsage,
    ProposedChannel,
    RefuseTerms,
    WrongAssetDecimals,
    check_counter,
    check_decimals,
    evaluate,
)

from ._strategies import ADJUDICATOR, ALICE, BOB, ORACLE

TOKEN = Address(b"\x11" * 20)
OTHER = Address(b"\x22" * 20)


def params(asset: Address = TOKEN, oracle: bytes = ORACLE.address, period: int = 3600) -> Params:
    return Params(
        chain_id=31337,
        adjudicator=ADJUDICATOR,
        asset=asset,
        asset_decimals=6,
        participants=(ALICE.address, BOB.address),
        challenge_period=period,
        oracle=Address(oracle),
        nonce=7,
    )


TERMS = PeerTerms(
    assets={TOKEN: AssetTerms(max_deposit=1_000, max_total=2_500)},
    oracles=frozenset({ORACLE.address}),
    min_challenge_period=600,
    max_challenge_period=86_400,
    max_channels=3,
)


def test_a_stranger_gets_nothing() -> None:
    decision = evaluate(NO_TERMS, params(), (0, 1), 1, PeerUsage(), 0)
    assert isinstance(decision, RefuseTerms)
    assert isinstance(evaluate(NO_TERMS, params(), (5, 0), 1, PeerUsage(), 0), RefuseTerms)


def test_each_term_names_its_rule() -> None:
    cases = [
        (params(asset=OTHER), (0, 1), PeerUsage(), 0, "AssetNotAccepted"),
        (params(oracle=ALICE.address), (0, 1), PeerUsage(), 0, "OracleNotTrusted"),
        (params(period=60), (0, 1), PeerUsage(), 0, "ChallengePeriodOutOfBounds"),
        (params(period=700), (0, 1), PeerUsage(), 900, "ChallengePeriodOutOfBounds"),  # floor
        (params(period=10**6), (0, 1), PeerUsage(), 0, "ChallengePeriodOutOfBounds"),
        (params(), (0, 1), PeerUsage(channels=3), 0, "TooManyChannels"),
        (params(), (0, 1_001), PeerUsage(), 0, "DepositAboveTerms"),
        (params(), (0, 600), PeerUsage(1, {TOKEN: 2_000}), 0, "DepositAboveTerms"),
    ]
    for p, deposits, usage, floor, rule in cases:
        decision = evaluate(TERMS, p, deposits, 1, usage, floor)
        assert isinstance(decision, RefuseTerms) and decision.rule == rule, (rule, decision)
    assert not dataclasses.replace(TERMS, accept_proposals=False).accept_proposals


@given(
    asked=st.integers(0, 5_000),
    theirs=st.integers(0, 5_000),
    channels=st.integers(0, 5),
    used=st.integers(0, 3_000),
    period=st.integers(60, 200_000),
    floor=st.integers(0, 2_000),
)
@example(asked=0, theirs=0, channels=0, used=2_501, period=600, floor=0)  # total already over
def test_what_is_accepted_is_within_every_term_and_a_counter_is_accepted(
    asked: int, theirs: int, channels: int, used: int, period: int, floor: int
) -> None:
    usage = PeerUsage(channels, {TOKEN: used})
    decision = evaluate(TERMS, params(period=period), (theirs, asked), 1, usage, floor)
    if isinstance(decision, AcceptTerms):
        assert decision.our_deposit == asked  # exactly what both sides signed up to
        # Accepting never takes our total past its cap; a channel we put nothing into adds
        # nothing to the total, so it may be accepted even when the total is already at the cap.
        assert asked <= 1_000 and (asked == 0 or used + asked <= 2_500)
        assert max(600, floor) <= period <= 86_400 and channels < 3
    elif decision.counter is not None:
        counter = decision.counter
        assert decision.rule in ("DepositAboveTerms", "ChallengePeriodOutOfBounds")
        assert counter.deposit <= asked
        again = evaluate(
            TERMS,
            params(period=counter.challenge_period),
            (theirs, counter.deposit),
            1,
            usage,
            floor,
        )
        assert again == AcceptTerms(counter.deposit)  # the counter-offer is accepted as it is
    else:
        assert decision.rule == "TooManyChannels" or floor > 86_400


def proposed(asked: int = 1_000, period: int = 3600) -> ProposedChannel:
    return ProposedChannel(("127.0.0.1", 1), params(period=period), (0, asked))


def test_a_counter_offer_that_lowers_within_our_terms_is_taken() -> None:
    check_counter(proposed(), CounterOffer(500, 7200), TERMS, 0)
    check_counter(proposed(), CounterOffer(1_000, 600), TERMS, 0)


def test_a_hostile_counter_offer_is_refused() -> None:
    cases = [
        CounterOffer(1_001, 3600),  # asks more of the peer than we proposed: no counter at all
        CounterOffer(500, 60),  # a challenge period too short to defend the channel
        CounterOffer(500, 10**6),  # our funds locked far longer than our terms allow
    ]
    for counter in cases:
        with pytest.raises(BadCounterOffer):
            check_counter(proposed(), counter, TERMS, 0)
    with pytest.raises(BadCounterOffer):  # the chain's floor is above what the counter asks
        check_counter(proposed(), CounterOffer(500, 700), TERMS, 900)


def test_a_counter_offer_is_well_formed() -> None:
    for deposit, period in [(-1, 3600), (1 << 256, 3600), (1, 0), (1, 1 << 64), (True, 3600)]:
        with pytest.raises(InvalidField):
            CounterOffer(deposit, period)


@given(st.integers(0, 36), st.integers(0, 36))
@example(0, 6)
@example(18, 6)
@example(6, 6)
def test_a_proposal_must_carry_the_chains_decimals(claimed: int, true: int) -> None:
    proposed = dataclasses.replace(params(), asset_decimals=claimed)
    refusal = check_decimals(proposed, true)
    if claimed == true:
        assert refusal is None
        return
    assert refusal == RefuseTerms(
        "WrongAssetDecimals",
        f"asset 0x{TOKEN.hex()} has {true} decimals on chain, the channel claims {claimed}",
    )
    assert refusal.counter is None  # nothing we could accept instead: the figure is a fact
    error = WrongAssetDecimals(TOKEN, claimed, true)
    assert isinstance(error, LocalError) and error.rule == "WrongAssetDecimals"
    assert (error.asset, error.claimed, error.true) == (TOKEN, claimed, true)
    assert str(error) == refusal.reason
