"""The consent rule (channels.core.consent; docs/PROTOCOL.md "Who decides an update")."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.core import model
from channels.core.consent import (
    AUTOMATIC,
    Approved,
    NoQuotes,
    Refusal,
    TradeClass,
    UpdateView,
    classify,
    decide,
)
from channels.core.model import Address, Amount, ChannelId, OptionKind, Position, PositionId
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Trade,
    Unwind,
    opening_state,
)

from ._strategies import ADJUDICATOR, ALICE, BOB, ORACLE

PARAMS = model.Params(
    chain_id=31337,
    adjudicator=ADJUDICATOR,
    asset=model.address("0x" + "11" * 20),
    asset_decimals=6,
    participants=(ALICE.address, BOB.address),
    challenge_period=3600,
    oracle=ORACLE.address,
    nonce=1,
)
STATE = opening_state(PARAMS)
RECIPIENT = Address(b"\x22" * 20)


def option(writer: int) -> Position:
    return Position(
        id=PositionId(1),
        underlying=b"ETH-USD".ljust(32, b"\0"),
        kind=OptionKind.CALL,
        strike=3000 * 10**8,
        expiry=10**9,
        quantity=10**18,
        writer=writer,
        collateral=Amount(500),
    )


who = st.sampled_from([0, 1])
amounts = st.integers(1, 10**30).map(Amount)
trades: st.SearchStrategy[Trade] = st.one_of(
    st.builds(Pay, payer=who, amount=amounts),
    st.builds(OpenOption, position=who.map(option), premium=amounts),
    st.builds(Unwind, position_id=st.just(PositionId(1)), holder_share=amounts),
    st.builds(CreditDeposit, participant=who, amount=amounts),
    st.builds(DebitWithdrawal, participant=who, amount=amounts, recipient=st.just(RECIPIENT)),
    st.just(Finalize()),
)


def view(trades: tuple[Trade, ...], our_index: int, ours: bool = False) -> UpdateView:
    return UpdateView(
        channel_id=ChannelId(PARAMS.channel_id),
        params=PARAMS,
        peer=PARAMS.participants[1 - our_index],
        our_index=our_index,
        base=STATE,
        new=STATE,
        trades=trades,
        initiated_by_us=ours,
        now=1000,
    )


class Quotes:
    """A quote book approving, refusing or ignoring every trade (the real one is the RFQ layer)."""

    def __init__(self, verdict: Approved | Refusal | None) -> None:
        self.verdict = verdict
        self.calls: list[Trade] = []
        self.outcomes: list[bool] = []

    def check_fill(
        self, channel_id: ChannelId, peer: Address, trade: Trade, now: int
    ) -> Approved | Refusal | None:
        self.calls.append(trade)
        return self.verdict

    def decided(self, channel_id: ChannelId, version: int, approved: bool) -> None:
        self.outcomes.append(approved)


def test_the_table() -> None:
    """Each row of the table in docs/PROTOCOL.md, seen from participant 1."""
    assert classify(Pay(0, Amount(5)), 1) is TradeClass.PAID_TO_US
    assert classify(Pay(1, Amount(5)), 1) is TradeClass.WE_PAY
    assert classify(OpenOption(option(writer=1), Amount(1)), 1) is TradeClass.WE_WRITE
    assert classify(OpenOption(option(writer=0), Amount(1)), 1) is TradeClass.WE_BUY
    assert classify(Unwind(PositionId(1), Amount(0)), 1) is TradeClass.UNWIND
    assert classify(CreditDeposit(1, Amount(5)), 1) is TradeClass.DEPOSIT_CREDIT
    assert classify(DebitWithdrawal(0, Amount(5), RECIPIENT), 1) is TradeClass.PEER_WITHDRAWS_OWN
    assert classify(DebitWithdrawal(1, Amount(5), RECIPIENT), 1) is TradeClass.WE_WITHDRAW
    assert classify(Finalize(), 1) is TradeClass.FINALIZE
    assert classify(object(), 1) is TradeClass.UNKNOWN
    assert TradeClass.UNKNOWN not in AUTOMATIC


@given(trade=trades, our_index=who)
def test_a_trade_is_automatic_for_at_most_one_side_unless_it_moves_nothing(
    trade: Trade, our_index: int
) -> None:
    """What pays one side cannot be automatic for the payer: a Pay, an option or a withdrawal of
    our funds always needs the paying side's consent."""
    mine, theirs = classify(trade, our_index), classify(trade, 1 - our_index)
    if isinstance(trade, Pay | OpenOption | Unwind):
        assert mine not in AUTOMATIC or theirs not in AUTOMATIC
    if isinstance(trade, OpenOption | Unwind):
        assert mine not in AUTOMATIC and theirs not in AUTOMATIC


@given(batch=st.lists(trades, min_size=1, max_size=6).map(tuple), our_index=who)
def test_without_quotes_or_hook_only_automatic_updates_pass(
    batch: tuple[Trade, ...], our_index: int
) -> None:
    verdict = decide(view(batch, our_index), NoQuotes(), None)
    automatic = all(classify(t, our_index) in AUTOMATIC for t in batch)
    assert isinstance(verdict, Approved) == automatic
    if not automatic:
        assert isinstance(verdict, Refusal)
        assert verdict.rule == "ConsentRequired"


@given(batch=st.lists(trades, min_size=1, max_size=6).map(tuple), our_index=who)
def test_our_own_call_needs_nobody(batch: tuple[Trade, ...], our_index: int) -> None:
    quotes = Quotes(Refusal("QuoteExpired", "never asked"))
    verdict = decide(view(batch, our_index, ours=True), quotes, None)
    assert verdict == Approved("our own call")
    assert quotes.calls == []


def test_a_fill_of_our_live_quote_passes_without_a_hook() -> None:
    batch = (OpenOption(option(writer=1), Amount(10)), Pay(0, Amount(1)))
    quotes = Quotes(Approved("quote 7"))
    assert isinstance(decide(view(batch, 1), quotes, None), Approved)
    assert quotes.calls == [batch[0]]  # automatic trades are not shown to the quote book
    assert quotes.outcomes == [True]


def test_the_quote_book_learns_when_an_update_with_its_fill_is_refused() -> None:
    """A fill approved next to a trade nobody consents to: the book is told the update was
    refused, so it gives the fill's quantity back (a refused fill must not consume the quote)."""
    batch = (OpenOption(option(writer=1), Amount(10)), Pay(1, Amount(1)))

    class FillsOnly(Quotes):
        def check_fill(
            self, channel_id: ChannelId, peer: Address, trade: Trade, now: int
        ) -> Approved | Refusal | None:
            self.calls.append(trade)
            return Approved("quote 7") if isinstance(trade, OpenOption) else None

    quotes = FillsOnly(None)
    verdict = decide(view(batch, 1), quotes, None)
    assert isinstance(verdict, Refusal) and verdict.rule == "ConsentRequired"
    assert quotes.calls == list(batch) and quotes.outcomes == [False]

    def boom(_v: UpdateView) -> Approved | Refusal:
        raise ValueError("boom")

    broken = FillsOnly(None)
    assert isinstance(decide(view(batch, 1), broken, boom), Refusal)
    assert broken.outcomes == [False]


def test_a_bad_fill_is_refused_even_if_the_hook_would_approve() -> None:
    batch = (OpenOption(option(writer=1), Amount(10)),)
    refusal = Refusal("QuoteOverfilled", "quote 7 has 1 left, the fill asks 2")
    verdict = decide(view(batch, 1), Quotes(refusal), lambda _v: Approved("bot"))
    assert verdict == refusal


def test_the_hook_decides_what_no_quote_covers() -> None:
    batch = (Pay(1, Amount(10)),)
    seen: list[UpdateView] = []

    def hook(v: UpdateView) -> Approved | Refusal:
        seen.append(v)
        return Refusal("TooMuch", "we pay at most 5") if v.trades[0].amount > 5 else Approved("bot")

    assert decide(view(batch, 1), None, hook) == Refusal("TooMuch", "we pay at most 5")
    assert seen[0].classes == (TradeClass.WE_PAY,)
    assert decide(view((Pay(1, Amount(5)),), 1), None, hook) == Approved("bot")


def test_a_failing_or_sloppy_hook_refuses() -> None:
    batch = (Pay(1, Amount(10)),)

    def broken(_v: UpdateView) -> Approved | Refusal:
        raise ValueError("boom")

    verdict = decide(view(batch, 1), None, broken)
    assert isinstance(verdict, Refusal) and "boom" in verdict.reason
    verdict = decide(view(batch, 1), None, lambda _v: True)  # type: ignore[arg-type,return-value]
    assert isinstance(verdict, Refusal) and verdict.rule == "ConsentRequired"
