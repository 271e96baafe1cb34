"""The trading rules: how a batch of trades turns one state into the next (pure).

A trade is a frozen dataclass; :func:`apply_trades` checks every rule and returns the next state,
placing or removing positions in the :class:`PositionBook` it is given (the caller journals the
book so a refused batch leaves nothing behind). Each broken rule raises the
:class:`~channels.core.errors.RuleViolation` subclass that names it.

The instrument-specific part (what a position pays at a price) sits behind :class:`Instrument`, so
another instrument (a future, a swap) could be added without touching the update protocol or the
dispute logic; the European option is the only one today.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from channels.core import eip712
from channels.core.errors import (
    BadAttestation,
    BadSignature,
    ChannelFinal,
    ConservationViolation,
    ExpiryTooLate,
    ExpiryTooSoon,
    InsufficientFunds,
    InvalidAmount,
    InvalidField,
    InvalidOptionTerms,
    NotExercisable,
    OpenPositionsAtFinal,
    TooManyPositions,
    UnconfirmedDeposit,
)
from channels.core.model import (
    UINT128_MAX,
    ZERO_ADDRESS,
    ZERO_HASH,
    Address,
    Amount,
    Attestation,
    OptionKind,
    Params,
    Position,
    PositionId,
    State,
    Timestamp,
    Version,
    Withdrawal,
    check_bytes,
    check_uint,
)
from channels.core.positions import PositionBook
from channels.core.signing import recover

VALUE_DECIMALS = 26  # price (8) + quantity (18)
#: With no attestation this long after expiry, the contract returns the collateral to the writer.
SETTLEMENT_GRACE = 7 * 24 * 3600


_POW10: list[int] = [10**i for i in range(80)]
_VALUE_DIVISOR = _POW10[VALUE_DECIMALS]


def value(diff: int, quantity: int, asset_decimals: int) -> int:
    """Quote value of a price difference times a quantity, in the asset's smallest unit.

    Rounds down: ``floor(diff * quantity * 10**asset_decimals / 10**26)``.
    """
    return diff * quantity * _POW10[asset_decimals] // _VALUE_DIVISOR


def full_put_collateral(strike: int, quantity: int, asset_decimals: int) -> int:
    """Collateral that covers a put completely (its payoff at price 0), rounded up."""
    numerator = strike * quantity * _POW10[asset_decimals]
    return -(-numerator // _VALUE_DIVISOR)


class Instrument(Protocol):
    """What the dispute logic needs from an instrument: its payoff at a settlement price."""

    def check_terms(self, position: Position) -> None: ...

    def payoff(self, position: Position, price: int, asset_decimals: int) -> int:
        """Amount owed to the holder, never above ``position.collateral``."""
        ...


class EuropeanOption:
    """Cash-settled European call or put, payoff capped by its collateral."""

    def check_terms(self, position: Position) -> None:
        if position.strike == 0:
            raise InvalidOptionTerms("strike must be above zero")
        if position.quantity == 0:
            raise InvalidOptionTerms("quantity must be above zero")
        if position.collateral == 0:
            raise InvalidOptionTerms("collateral must be above zero")

    def payoff(self, position: Position, price: int, asset_decimals: int) -> int:
        if position.kind is OptionKind.CALL:
            diff = price - position.strike
        else:
            diff = position.strike - price
        if diff <= 0:
            return 0
        return min(position.collateral, value(diff, position.quantity, asset_decimals))


INSTRUMENTS: dict[OptionKind, Instrument] = {
    OptionKind.CALL: EuropeanOption(),
    OptionKind.PUT: EuropeanOption(),
}


def payoff(position: Position, price: int, asset_decimals: int) -> int:
    return INSTRUMENTS[position.kind].payoff(position, price, asset_decimals)


# Trades -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pay:
    """``payer`` pays ``amount`` to the other participant."""

    payer: int
    amount: Amount


@dataclass(frozen=True, slots=True)
class OpenOption:
    """Open ``position``: the holder pays ``premium`` to the writer, the writer locks collateral.

    ``quote_id`` names the firm quote this trade fills (channels.core.quotes), or None.
    """

    position: Position
    premium: Amount
    quote_id: bytes | None = field(default=None, repr=False)  # repr: golden wire vectors


@dataclass(frozen=True, slots=True)
class Unwind:
    """Close a position before expiry by agreement: the holder gets ``holder_share`` of the
    collateral and the writer the rest."""

    position_id: PositionId
    holder_share: Amount


@dataclass(frozen=True, slots=True)
class Settle:
    """Settle a position at or after expiry with the oracle's signed price."""

    position_id: PositionId
    attestation: Attestation
    signature: bytes


@dataclass(frozen=True, slots=True)
class CreditDeposit:
    """Credit a confirmed on-chain top-up of ``participant`` to its balance."""

    participant: int
    amount: Amount


@dataclass(frozen=True, slots=True)
class DebitWithdrawal:
    """Debit a partial withdrawal of ``participant`` to ``recipient``.

    Both sign a :class:`~channels.core.model.Withdrawal` naming the new version along with the
    state; either can then execute it on chain while the channel stays open.
    """

    participant: int
    amount: Amount
    recipient: Address


@dataclass(frozen=True, slots=True)
class Finalize:
    """Mark the state final, ready for a cooperative close (no open positions allowed)."""


Trade = Pay | OpenOption | Unwind | Settle | CreditDeposit | DebitWithdrawal | Finalize

#: The most trades one update may carry: the wire format refuses more, a node's :class:`Limits`
#: may set a lower figure.
MAX_TRADES = 10_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-node limits on what it will sign."""

    max_positions: int = 100_000
    max_trades_per_update: int = MAX_TRADES
    #: An option must expire at least this long after the challenge period from now.
    settle_margin: int = 0
    #: Latest allowed expiry, counted from now.
    max_lifetime: int = 5 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules need to know besides the state: the channel, the time, the chain's view."""

    params: Params
    domain: eip712.Domain
    now: Timestamp
    #: Cumulative deposits per participant confirmed on chain (at the confirmation depth).
    confirmed_deposits: tuple[int, int]
    limits: Limits = field(default_factory=Limits)
    #: Replaying trades both participants already signed (a state caught up from the peer): the
    #: rules that ask "would I sign this now" (the expiry window, settling only after expiry,
    #: deposits confirmed on chain) held when it was signed and are not asked again; the
    #: arithmetic, the book and the oracle's signature still are.
    replay: bool = False


def _participant(value: object) -> int:
    if type(value) is not int or value not in (0, 1):
        raise InvalidField("participant must be 0 or 1")
    return value


def _positive(amount: object, name: str) -> int:
    check_uint(amount, 256, name)
    assert isinstance(amount, int)
    if amount == 0:
        raise InvalidAmount(f"{name} must be above zero")
    return amount


def _check_openable(pos: Position, book: PositionBook, ctx: Context) -> None:
    earliest = ctx.now + ctx.params.challenge_period + ctx.limits.settle_margin
    if pos.expiry < earliest:
        raise ExpiryTooSoon(
            f"expiry {pos.expiry} is before {earliest}: the option could not be settled "
            "on chain after a full dispute"
        )
    if pos.expiry > ctx.now + ctx.limits.max_lifetime:
        raise ExpiryTooLate(f"expiry {pos.expiry} is beyond the channel's lifetime")
    if len(book) >= ctx.limits.max_positions:
        raise TooManyPositions(f"already {len(book)} open positions")


def check_attestation(
    domain: eip712.Domain, oracle: Address, attestation: Attestation, signature: bytes
) -> None:
    """Refuse (:class:`BadAttestation`) a price that is zero or not signed by ``oracle`` in this
    domain (an attestation for another chain or adjudicator recovers to another signer)."""
    if attestation.price == 0:
        raise BadAttestation("the attested price must be above zero")
    try:
        signer = recover(eip712.attestation_digest(domain, attestation), signature)
    except BadSignature as exc:
        raise BadAttestation(f"attestation signature: {exc}") from exc
    if signer != oracle:
        raise BadAttestation("the attestation is not signed by the channel's oracle")


def apply_trades(
    state: State, book: PositionBook, trades: Sequence[Trade], ctx: Context, version: Version
) -> State:
    """The state after ``trades``, at ``version``; ``book`` is changed in place.

    Raises the rule's error at the first broken rule (the caller rolls the book back).
    """
    if state.is_final:
        raise ChannelFinal("the channel already has a final state")
    if not trades:
        raise InvalidField("an update needs at least one trade")
    if len(trades) > ctx.limits.max_trades_per_update:
        raise InvalidField(f"more than {ctx.limits.max_trades_per_update} trades in one update")
    balances: list[int] = [state.balances[0], state.balances[1]]
    deposited: list[int] = [state.deposited[0], state.deposited[1]]
    withdrawn: list[int] = [state.withdrawn[0], state.withdrawn[1]]
    is_final = False
    withdrawal_seen = False
    decimals = ctx.params.asset_decimals

    def debit(who: int, amount: int, what: str) -> None:
        if balances[who] < amount:
            raise InsufficientFunds(
                f"participant {who} has {balances[who]}, cannot pay {amount} for {what}"
            )
        balances[who] -= amount

    for index, trade in enumerate(trades):
        if is_final:
            raise InvalidField("Finalize must be the last trade of an update")
        if isinstance(trade, Pay):
            payer = _participant(trade.payer)
            amount = _positive(trade.amount, "payment")
            debit(payer, amount, "a payment")
            balances[1 - payer] += amount
        elif isinstance(trade, OpenOption):
            pos = trade.position
            if not isinstance(pos, Position):
                raise InvalidField("OpenOption needs a Position")
            INSTRUMENTS[pos.kind].check_terms(pos)
            if trade.quote_id is not None:
                check_bytes(trade.quote_id, 32, "quote_id")
            premium = check_uint(trade.premium, 256, "premium")
            if not ctx.replay:
                _check_openable(pos, book, ctx)
            debit(pos.holder, premium, "a premium")
            balances[pos.writer] += premium
            debit(pos.writer, pos.collateral, "collateral")
            book.add(pos)
        elif isinstance(trade, Unwind):
            pos = book.get(trade.position_id)
            share = check_uint(trade.holder_share, 256, "holder_share")
            if share > pos.collateral:
                raise InvalidAmount("the holder's share cannot exceed the collateral")
            book.remove(pos.id)
            balances[pos.holder] += share
            balances[pos.writer] += pos.collateral - share
        elif isinstance(trade, Settle):
            pos = book.get(trade.position_id)
            if ctx.now < pos.expiry and not ctx.replay:
                raise NotExercisable(f"position {pos.id} expires at {pos.expiry}, now is {ctx.now}")
            att = trade.attestation
            if att.underlying != pos.underlying or att.expiry != pos.expiry:
                raise BadAttestation("the attestation is for another underlying or expiry")
            check_attestation(ctx.domain, ctx.params.oracle, att, trade.signature)
            owed = payoff(pos, att.price, decimals)
            book.remove(pos.id)
            balances[pos.holder] += owed
            balances[pos.writer] += pos.collateral - owed
        elif isinstance(trade, CreditDeposit):
            who = _participant(trade.participant)
            amount = _positive(trade.amount, "deposit credit")
            if deposited[who] + amount > ctx.confirmed_deposits[who] and not ctx.replay:
                raise UnconfirmedDeposit(
                    f"participant {who} has {ctx.confirmed_deposits[who]} confirmed on chain, "
                    f"cannot credit {deposited[who] + amount}"
                )
            deposited[who] += amount
            balances[who] += amount
        elif isinstance(trade, DebitWithdrawal):
            who = _participant(trade.participant)
            amount = _positive(trade.amount, "withdrawal")
            check_bytes(trade.recipient, 20, "recipient")
            if trade.recipient == ZERO_ADDRESS:
                raise InvalidField("a withdrawal needs a recipient")
            if withdrawal_seen:
                raise InvalidField("one withdrawal per update")
            withdrawal_seen = True
            debit(who, amount, "a withdrawal")
            withdrawn[who] += amount
        elif isinstance(trade, Finalize):
            if len(book):
                raise OpenPositionsAtFinal(f"{len(book)} positions are still open")
            is_final = True
        else:
            raise InvalidField(f"trade {index} has unknown type {type(trade).__name__}")

    for amount in (*balances, *deposited, *withdrawn, book.locked):
        if amount > UINT128_MAX:
            raise InvalidAmount("an amount would exceed uint128")
    new = State(
        channel_id=state.channel_id,
        version=version,
        balances=(Amount(balances[0]), Amount(balances[1])),
        deposited=(Amount(deposited[0]), Amount(deposited[1])),
        withdrawn=(Amount(withdrawn[0]), Amount(withdrawn[1])),
        locked=Amount(book.locked),
        positions_root=book.root,
        position_count=len(book),
        is_final=is_final,
    )
    if not new.conserves():  # pragma: no cover - every trade above conserves by construction
        raise ConservationViolation("balances plus locked collateral differ from the funding")
    return new


def opening_state(params: Params) -> State:
    """Version 0, signed by both before any deposit: it credits nothing.

    On chain a concluded state refunds every deposit it has not credited, so with version 0 alone
    either participant gets back exactly what it deposited if the other never funds. Once both
    deposits are confirmed, version 1 credits them (a :class:`CreditDeposit` per participant).
    """
    return State(
        channel_id=params.channel_id,
        version=Version(0),
        balances=(Amount(0), Amount(0)),
        deposited=(Amount(0), Amount(0)),
        withdrawn=(Amount(0), Amount(0)),
        locked=Amount(0),
        positions_root=ZERO_HASH,
        position_count=0,
        is_final=False,
    )


def withdrawal_of(state: State, trades: Sequence[Trade]) -> Withdrawal | None:
    """The withdrawal authorisation both must sign along with ``state``, if it debits one."""
    for trade in trades:
        if isinstance(trade, DebitWithdrawal):
            return Withdrawal(
                channel_id=state.channel_id,
                version=state.version,
                participant=trade.participant,
                amount=trade.amount,
                recipient=trade.recipient,
            )
    return None
