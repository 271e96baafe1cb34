"""Who decides an update (pure): the trade classes and the consent rule of docs/PROTOCOL.md.

A signature is a commitment of money, so a desk countersigns on its own only what cannot cost it
value beyond what it already agreed to. :func:`classify` puts each trade into a
:class:`TradeClass`; the classes in :data:`AUTOMATIC` need nobody's decision (a payment to us,
crediting a confirmed deposit, the peer withdrawing its own funds, settling an expired position at
the channel oracle's attested price, finalizing). Every other class moves value away from us and
is accepted only when (see :func:`decide`):

1. we initiated exactly these trades (our own call, or our request the leader turned into a
   proposal), or
2. each such trade fills a live firm quote of ours (a :class:`QuoteAuthority` approves it), or
3. our decision hook (the bot's or operator's) approves the update.

With none of those the update is refused with the rule ``ConsentRequired`` naming the trade.

A trade type this module does not know (a new instrument, a quote fill) counts as moving value:
an unknown kind of update is never signed on its own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from channels.core.errors import LocalError, RuleViolation
from channels.core.model import Address, ChannelId, Params, State
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Trade,
    Unwind,
)


class TradeClass(enum.Enum):
    """What one trade does to us, the countersigning desk (see the table in docs/PROTOCOL.md)."""

    # Automatic: cannot cost us value beyond what we already agreed to.
    PAID_TO_US = "the peer pays us"
    DEPOSIT_CREDIT = "a confirmed deposit is credited"
    PEER_WITHDRAWS_OWN = "the peer withdraws its own funds"
    SETTLE_AT_ORACLE = "an expired position settles at the channel oracle's attested price"
    FINALIZE = "the state is marked final for a cooperative close"
    # Needs our consent: moves value away from us.
    WE_PAY = "we pay the peer"
    WE_WRITE = "we write an option (lock collateral, receive its premium)"
    WE_BUY = "we buy an option (pay its premium)"
    UNWIND = "a position is unwound at a negotiated split"
    WE_WITHDRAW = "a partial withdrawal of our funds"
    UNKNOWN = "a trade type the consent rule does not know"


#: The classes a desk countersigns without anyone deciding.
AUTOMATIC: frozenset[TradeClass] = frozenset(
    {
        TradeClass.PAID_TO_US,
        TradeClass.DEPOSIT_CREDIT,
        TradeClass.PEER_WITHDRAWS_OWN,
        TradeClass.SETTLE_AT_ORACLE,
        TradeClass.FINALIZE,
    }
)


def classify(trade: Trade | object, our_index: int) -> TradeClass:
    """The class of ``trade`` seen from participant ``our_index`` (0 or 1).

    Only the shape of the trade is looked at; whether it is valid at all (funds, the oracle's
    signature on a settlement price, confirmed deposits) is the options rules' job, checked before.
    """
    if isinstance(trade, Pay):
        return TradeClass.PAID_TO_US if trade.payer != our_index else TradeClass.WE_PAY
    if isinstance(trade, OpenOption):
        return TradeClass.WE_WRITE if trade.position.writer == our_index else TradeClass.WE_BUY
    if isinstance(trade, Unwind):
        return TradeClass.UNWIND
    if isinstance(trade, Settle):
        # apply_trades has checked the price is the channel oracle's attestation for the
        # position's underlying and expiry, and that the position has expired.
        return TradeClass.SETTLE_AT_ORACLE
    if isinstance(trade, CreditDeposit):
        return TradeClass.DEPOSIT_CREDIT
    if isinstance(trade, DebitWithdrawal):
        if trade.participant != our_index:
            return TradeClass.PEER_WITHDRAWS_OWN
        return TradeClass.WE_WITHDRAW
    if isinstance(trade, Finalize):
        return TradeClass.FINALIZE
    return TradeClass.UNKNOWN


def needs_consent(trade_class: TradeClass) -> bool:
    return trade_class not in AUTOMATIC


# Verdicts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Approved:
    """Consent given; ``by`` says who gave it (kept in the log and the audit trail)."""

    by: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """No consent: ``rule`` names the rule, ``reason`` says what to change. The peer gets both."""

    rule: str
    reason: str


Verdict = Approved | Refusal


class ConsentRefused(RuleViolation, LocalError):
    """An update was refused by the consent rule, our terms or our risk limits; ``rule`` names
    which (``ConsentRequired``, ``LimitExceeded``, a quote rule, ...)."""

    rule = "ConsentRequired"

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.rule = refusal.rule
        self.reason = refusal.reason


@dataclass(frozen=True, slots=True)
class UpdateView:
    """What a decision hook (and a risk check) sees of one update before we sign it."""

    channel_id: ChannelId
    params: Params
    peer: Address
    our_index: int
    base: State
    new: State
    trades: tuple[Trade, ...]
    #: True when we initiated exactly these trades (our call, or our request echoed by the leader).
    initiated_by_us: bool
    #: Chain time (unix seconds) the update is checked at.
    now: int

    @property
    def classes(self) -> tuple[TradeClass, ...]:
        return tuple(classify(t, self.our_index) for t in self.trades)


class QuoteAuthority(Protocol):
    """Our book of live firm quotes: says whether a trade the peer initiated fills one of them.

    Implemented by the firm-quote (RFQ) layer. :func:`decide` calls :meth:`check_fill` once per
    value-moving trade of an update the peer initiated, in order, as the last check before we
    sign; ``Approved`` means the fill is taken (the quote's remaining size shrinks).
    """

    def check_fill(
        self, channel_id: ChannelId, peer: Address, trade: Trade, now: int
    ) -> Verdict | None:
        """``None``: the trade names no quote of ours (another rule must decide).
        ``Approved``: it fills a live quote of ours with exactly its terms.
        ``Refusal``: it names a quote of ours but does not match it (expired, over the size,
        another price or peer): refused outright, the decision hook is not asked."""
        ...

    def decided(self, channel_id: ChannelId, version: int, approved: bool) -> None:
        """Called once :func:`decide` has decided the update of ``version`` (after every
        :meth:`check_fill` for it): refused (``approved`` False), what the fills took is given
        back; approved, it stays taken while that version is on its way to being signed."""
        ...


class NoQuotes:
    """The default quote book: no live quotes, so no trade is a fill."""

    def check_fill(
        self, channel_id: ChannelId, peer: Address, trade: Trade, now: int
    ) -> Verdict | None:
        return None

    def decided(self, channel_id: ChannelId, version: int, approved: bool) -> None:
        return None


#: The bot's or operator's decision on an update that moves value away from us.
DecisionHook = Callable[[UpdateView], Verdict]


def decide(view: UpdateView, quotes: QuoteAuthority | None, hook: DecisionHook | None) -> Verdict:
    """The consent rule: who decides ``view``'s update, and what they decided.

    A hook that raises, or returns anything but a verdict, refuses (an unsafe default is a bug).
    The quote authority is told the outcome (:meth:`QuoteAuthority.decided`), so that a fill it
    approved in an update refused for another trade does not consume its quote.
    """
    book = quotes if quotes is not None else NoQuotes()
    verdict: Verdict = Refusal("ConsentRequired", "the consent rule failed")
    try:
        verdict = _decide(view, book, hook)
    finally:
        book.decided(view.channel_id, view.new.version, isinstance(verdict, Approved))
    return verdict


def _decide(view: UpdateView, book: QuoteAuthority, hook: DecisionHook | None) -> Verdict:
    if view.initiated_by_us:
        return Approved("our own call")
    moving: list[tuple[int, Trade, TradeClass]] = [
        (i, t, c)
        for i, (t, c) in enumerate(zip(view.trades, view.classes, strict=True))
        if needs_consent(c)
    ]
    if not moving:
        return Approved("automatic")
    undecided: list[tuple[int, TradeClass]] = []
    for index, trade, trade_class in moving:
        verdict = book.check_fill(view.channel_id, view.peer, trade, view.now)
        if isinstance(verdict, Refusal):
            return verdict
        if verdict is None:
            undecided.append((index, trade_class))
    if not undecided:
        return Approved("a fill of our live firm quote")
    if hook is None:
        return Refusal("ConsentRequired", _unconsented(undecided))
    try:
        verdict = hook(view)
    except Exception as exc:  # the hook is the bot's code: its failure is a refusal, not a crash
        return Refusal("ConsentRequired", f"the decision hook failed ({type(exc).__name__}: {exc})")
    if isinstance(verdict, Approved | Refusal):
        return verdict
    return Refusal("ConsentRequired", "the decision hook returned neither Approved nor Refusal")


def strict_gate(view: UpdateView) -> Verdict:
    """The consent rule with no quotes and no hook: only what cannot cost us value, and our own
    calls, pass. A channel machine uses it until the node installs its gatekeeper."""
    return decide(view, None, None)


def _unconsented(undecided: Sequence[tuple[int, TradeClass]]) -> str:
    index, trade_class = undecided[0]
    more = f" (and {len(undecided) - 1} more)" if len(undecided) > 1 else ""
    return (
        f"trade {index}: {trade_class.value}{more}: it moves value away from us and we did not "
        "initiate it, it fills no live quote of ours, and no decision hook approves it"
    )


__all__ = [
    "AUTOMATIC",
    "Approved",
    "ConsentRefused",
    "DecisionHook",
    "NoQuotes",
    "QuoteAuthority",
    "Refusal",
    "TradeClass",
    "UpdateView",
    "Verdict",
    "classify",
    "decide",
    "needs_consent",
    "strict_gate",
]
