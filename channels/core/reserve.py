"""The gas reserve: what a desk keeps in its transaction account to defend every channel (pure).

Defending a channel alone takes a register, a refute (the peer may register a stale state), a
conclude with its payouts, a withdrawal, and one settlement per open position, each paid at up to
the fee cap we configure. A desk that spends that money on deposits cannot refute a cheat (issue
12: a desk drained to 0.000027 ETH lost 30% of a channel). So :func:`check_spend` refuses a deposit
or top-up that would leave less than :func:`required` for the channels we would then have, and
:func:`near` says when the balance gets close enough to alarm.

Gas figures are from ``make gas`` (README, "Figures"), rounded up with room to spare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from channels.core.consent import Refusal
from channels.core.errors import InvalidField, LocalError


@dataclass(frozen=True, slots=True)
class DefenceGas:
    """Gas units of each step of a defence."""

    register: int = 120_000
    refute: int = 90_000
    conclude: int = 120_000
    withdraw: int = 60_000
    settle_per_position: int = 100_000
    #: A deposit (approve + deposit for an ERC-20) we are about to send.
    deposit: int = 150_000


@dataclass(frozen=True, slots=True)
class GasReserve:
    """How much to keep: every defence step paid at ``max_fee_per_gas`` (wei per gas)."""

    max_fee_per_gas: int = 100 * 10**9
    gas: DefenceGas = DefenceGas()
    #: Alarm when the balance is below the reserve plus this share of it (percent).
    alarm_margin_percent: int = 50

    def __post_init__(self) -> None:
        if type(self.max_fee_per_gas) is not int or self.max_fee_per_gas < 0:
            raise InvalidField("max_fee_per_gas must be a non-negative int (wei)")
        if type(self.alarm_margin_percent) is not int or self.alarm_margin_percent < 0:
            raise InvalidField("alarm_margin_percent must be a non-negative int")


class GasReserveTooLow(LocalError):
    """A deposit or top-up would cut into the gas needed to defend our channels."""

    rule = "GasReserve"


#: No reserve (tests of other things only; a real desk keeps one).
NO_RESERVE = GasReserve(max_fee_per_gas=0)


def channel_gas(gas: DefenceGas, open_positions: int) -> int:
    return (
        gas.register
        + gas.refute
        + gas.conclude
        + gas.withdraw
        + gas.settle_per_position * open_positions
    )


def required(reserve: GasReserve, open_positions_per_channel: Iterable[int]) -> int:
    """Wei needed to defend channels with these numbers of open positions."""
    units = sum(channel_gas(reserve.gas, n) for n in open_positions_per_channel)
    return units * reserve.max_fee_per_gas


def check_spend(
    reserve: GasReserve,
    balance: int,
    value: int,
    channels_after: Iterable[int],
    what: str,
) -> Refusal | None:
    """Whether we may send a deposit of ``value`` wei (0 for an ERC-20 deposit) now, from a
    transaction account holding ``balance`` wei, leaving enough to defend ``channels_after`` (the
    open positions of each channel we will then have to defend)."""
    channels = list(channels_after)
    need = required(reserve, channels)
    cost = value + reserve.gas.deposit * reserve.max_fee_per_gas
    left = balance - cost
    if left < need:
        return Refusal(
            "GasReserve",
            f"{what} would leave {max(left, 0)} wei in the transaction account; defending "
            f"{len(channels)} channel(s) needs {need} wei at {reserve.max_fee_per_gas} wei/gas. "
            "Add ETH to the transaction account or deposit less.",
        )
    return None


def near(reserve: GasReserve, balance: int, need: int) -> bool:
    """Whether ``balance`` is within the alarm margin of the reserve ``need``."""
    return balance * 100 < need * (100 + reserve.alarm_margin_percent)


__all__ = [
    "NO_RESERVE",
    "DefenceGas",
    "GasReserve",
    "GasReserveTooLow",
    "channel_gas",
    "check_spend",
    "near",
    "required",
]
