"""Built-in risk limits per peer and per underlying (pure).

What a desk holds with one peer, in one asset, over all their channels, is summed into an
:class:`Exposure`: the collateral we lock (as writer), the positions we are party to, the notional
per underlying (strike x quantity, in the asset's units), and the loss we would take if every open
position settled at the oracle's last price (what we owe as writer minus what we are owed as
holder; with no known price, a written position counts its whole collateral as lost).

:func:`check` refuses an update that opens a position or pays a premium and leaves a figure above
its limit, naming the limit and the figures (``LimitExceeded``). Updates that only reduce exposure
(a payment, an unwind, a settlement) are never refused by a limit, so a desk whose limits were
lowered can still get back under them. The limits apply to what we propose and what we
countersign alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from channels.core.consent import Refusal
from channels.core.errors import InvalidField
from channels.core.model import Position
from channels.core.options import OpenOption, Trade, payoff, value
from channels.core.units import fmt_units

DAY = 86_400


#: The limits of :class:`RiskLimits` that are one number (or None); a desk's config names them
#: as they are named here.
SINGLE_LIMITS = (
    "max_collateral_locked",
    "max_open_positions",
    "max_notional",
    "max_premium_per_day",
    "min_time_to_expiry",
    "max_expiry_horizon",
    "max_loss",
)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits for one peer (amounts in the channel asset's smallest unit); None: no limit."""

    #: Collateral we lock as writer, over all channels with the peer.
    max_collateral_locked: int | None = None
    #: Open positions we are party to with the peer.
    max_open_positions: int | None = None
    #: Notional (strike x quantity) per underlying; ``notional_by_underlying`` overrides it for
    #: named underlyings (32-byte symbols, :func:`channels.core.model.symbol`).
    max_notional: int | None = None
    notional_by_underlying: Mapping[bytes, int] = field(default_factory=dict)
    #: Premium we pay over any 24 hours.
    max_premium_per_day: int | None = None
    #: An option we open must expire at least this long from now (seconds) ...
    min_time_to_expiry: int | None = None
    #: ... and at most this long from now.
    max_expiry_horizon: int | None = None
    #: Net loss at the oracle's last prices (see the module docstring).
    max_loss: int | None = None

    def __post_init__(self) -> None:
        for name in SINGLE_LIMITS:
            limit = getattr(self, name)
            if limit is not None and (type(limit) is not int or limit < 0):
                raise InvalidField(f"{name} must be a non-negative int or None")

    @property
    def empty(self) -> bool:
        return self == NO_LIMITS

    def notional_limit(self, underlying: bytes) -> int | None:
        return self.notional_by_underlying.get(underlying, self.max_notional)


NO_LIMITS = RiskLimits()


@dataclass(frozen=True, slots=True)
class Held:
    """One open position as one desk sees it."""

    position: Position
    our_index: int
    asset_decimals: int

    @property
    def we_write(self) -> bool:
        return self.position.writer == self.our_index


@dataclass(frozen=True, slots=True)
class Exposure:
    locked: int = 0
    positions: int = 0
    notional: Mapping[bytes, int] = field(default_factory=dict)
    loss: int = 0


def exposure(held: Iterable[Held], prices: Mapping[bytes, int]) -> Exposure:
    """Sum ``held`` positions; ``prices`` maps an underlying to the oracle's last price."""
    locked = count = loss = 0
    notional: dict[bytes, int] = {}
    for h in held:
        pos = h.position
        count += 1
        notional[pos.underlying] = notional.get(pos.underlying, 0) + value(
            pos.strike, pos.quantity, h.asset_decimals
        )
        price = prices.get(pos.underlying)
        if h.we_write:
            locked += pos.collateral
            loss += pos.collateral if price is None else payoff(pos, price, h.asset_decimals)
        elif price is not None:
            loss -= payoff(pos, price, h.asset_decimals)
    return Exposure(locked, count, notional, max(0, loss))


def premium_we_pay(trades: Sequence[Trade], our_index: int) -> int:
    return sum(
        t.premium for t in trades if isinstance(t, OpenOption) and t.position.writer != our_index
    )


def check(
    limits: RiskLimits,
    trades: Sequence[Trade],
    our_index: int,
    after: Exposure,
    *,
    premium_paid_today: int,
    now: int,
    decimals: int | None = None,
) -> Refusal | None:
    """Whether an update of ``trades`` may be signed, given the exposure ``after`` it (which
    includes it) and the premium we paid in the last 24 hours before it. With the channel's
    asset ``decimals``, a refusal states amounts in the asset's units (smallest units beside)."""
    opened = [t.position for t in trades if isinstance(t, OpenOption)]
    premium = premium_we_pay(trades, our_index)
    if not opened and not premium:
        return None  # nothing here adds exposure

    def over(
        name: str, limit: int | None, figure: int, what: str, amount: bool = True
    ) -> Refusal | None:
        if limit is None or figure <= limit:
            return None
        if not amount or decimals is None:
            return Refusal("LimitExceeded", f"{name} {limit}: {what} would be {figure}")
        return Refusal(
            "LimitExceeded",
            f"{name} {fmt_units(limit, decimals)}: {what} would be {fmt_units(figure, decimals)}"
            f" (smallest units: {limit}, {figure})",
        )

    for position in opened:
        left = position.expiry - now
        if limits.min_time_to_expiry is not None and left < limits.min_time_to_expiry:
            return Refusal(
                "LimitExceeded",
                f"min_time_to_expiry {limits.min_time_to_expiry}s: position {position.id} "
                f"expires in {left}s",
            )
        if limits.max_expiry_horizon is not None and left > limits.max_expiry_horizon:
            return Refusal(
                "LimitExceeded",
                f"max_expiry_horizon {limits.max_expiry_horizon}s: position {position.id} "
                f"expires in {left}s",
            )
    writes = any(p.writer == our_index for p in opened)
    checks = [
        over(
            "max_open_positions",
            limits.max_open_positions,
            after.positions,
            "open positions",
            amount=False,
        )
        if opened
        else None,
        over("max_collateral_locked", limits.max_collateral_locked, after.locked, "locked")
        if writes
        else None,
        over("max_loss", limits.max_loss, after.loss, "the loss at the last prices")
        if writes
        else None,
        over(
            "max_premium_per_day",
            limits.max_premium_per_day,
            premium_paid_today + premium,
            "premium paid in 24h",
        )
        if premium
        else None,
    ]
    for underlying in dict.fromkeys(p.underlying for p in opened):
        checks.append(
            over(
                "max_notional",
                limits.notional_limit(underlying),
                after.notional.get(underlying, 0),
                f"notional in {underlying.rstrip(bytes(1)).decode(errors='replace')}",
            )
        )
    return next((c for c in checks if c is not None), None)


__all__ = [
    "NO_LIMITS",
    "SINGLE_LIMITS",
    "Exposure",
    "Held",
    "RiskLimits",
    "check",
    "exposure",
    "premium_we_pay",
]
