"""The ``[node]`` keys that guard a desk: its gas reserve and its caps on connections.

::

    [node]
    max_fee_per_gas_gwei = 100               # the fee cap of a defence transaction, in gwei
    gas_reserve_alarm_margin_percent = 50    # GasReserveLow below the reserve plus 50 % of it
    max_links_per_peer = 2                   # authenticated connections of one identity
    max_undeclared_links = 32                # of all peers a bot's admit callback let in

The gas reserve (channels/core/reserve.py) is the ETH the gas account keeps to defend every open
channel: register, refute, conclude, withdraw and a settlement per open position, each counted at
``max_fee_per_gas_gwei``. A deposit or top-up that would cut into it is refused (``GasReserve``),
and ``channels status`` shows the account against the reserve and the fee it is counted at.

The dispute-transaction driver (channels/defence/txdriver.py) takes the same figure as its bump
cap: once a stuck transaction's fee has reached it, the driver only rebroadcasts. A transaction
can still pay more per gas than the cap: its first send is priced at the market (twice the base
fee plus the tip), and its last bump may follow the market past the cap. The reserve's gas figures
are a third or more above the gas a defence measures (a refute is counted at 90,000 gas and uses
about 54,000, a conclude at 120,000 and uses about 90,000), so a fee somewhat over the cap is
covered; a market that stays above the cap is not: on such a chain raise the cap, and the ETH
with it. Leave the key out and the reserve is counted at 100 gwei while the driver bumps without
a cap: a refute that cannot land loses the channel, so with no figure from the operator the node
pays what it takes, and the reserve is an estimate rather than a bound.

``max_links_per_peer`` caps the authenticated connections one identity holds at once (2: a
reconnect briefly holds two); a dial over it is refused at the handshake. ``max_undeclared_links``
caps all connections of peers that were not declared, together: a CLI desk admits only the peers
of its ``[peers.NAME]`` tables, so it applies to a bot that adds an ``admit`` callback to the
desk's :class:`~channels.core.trust.Trust`. Declared peers never count against it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

from channels.core.reserve import GasReserve
from channels.core.trust import Trust
from channels.defence.txdriver import TxPolicy

GWEI = 10**9
#: A fee cap above this is a typo (a million gwei is 1,000 ETH for a million gas).
MAX_FEE_GWEI = 1_000_000

GUARD_KEYS = {
    "max_fee_per_gas_gwei",
    "gas_reserve_alarm_margin_percent",
    "max_links_per_peer",
    "max_undeclared_links",
}


@dataclass(frozen=True, slots=True)
class NodeGuards:
    """What the ``[node]`` guard keys say; None: the key is not set (the library's default)."""

    #: wei per gas
    max_fee_per_gas: int | None = None
    alarm_margin_percent: int | None = None
    max_links_per_peer: int | None = None
    max_undeclared_links: int | None = None

    def gas_reserve(self) -> GasReserve:
        reserve = GasReserve()
        if self.max_fee_per_gas is not None:
            reserve = dataclasses.replace(reserve, max_fee_per_gas=self.max_fee_per_gas)
        if self.alarm_margin_percent is not None:
            reserve = dataclasses.replace(reserve, alarm_margin_percent=self.alarm_margin_percent)
        return reserve

    def tx_policy(self) -> TxPolicy | None:
        """The driver's policy: the same fee cap as the reserve (None: the driver's default)."""
        if self.max_fee_per_gas is None:
            return None
        return TxPolicy(max_fee_per_gas=self.max_fee_per_gas)

    def apply_caps(self, trust: Trust) -> Trust:
        if self.max_links_per_peer is not None:
            trust = dataclasses.replace(trust, max_links_per_peer=self.max_links_per_peer)
        if self.max_undeclared_links is not None:
            trust = dataclasses.replace(trust, max_undeclared_links=self.max_undeclared_links)
        return trust


def parse_node_guards(table: Mapping[str, Any], fail: Callable[[str, str], NoReturn]) -> NodeGuards:
    """The guard keys of a ``[node]`` table; ``fail(key, message)`` refuses a bad value."""

    def integer(key: str, low: int, high: int) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if type(value) is not int or not low <= value <= high:
            fail(key, f"must be an integer from {low} to {high}")
        return value

    return NodeGuards(
        max_fee_per_gas=_fee_cap(table.get("max_fee_per_gas_gwei"), fail),
        alarm_margin_percent=integer("gas_reserve_alarm_margin_percent", 0, 1_000),
        max_links_per_peer=integer("max_links_per_peer", 1, 1_000),
        max_undeclared_links=integer("max_undeclared_links", 0, 100_000),
    )


def _fee_cap(value: object, fail: Callable[[str, str], NoReturn]) -> int | None:
    """Gwei (a number; fractions down to one wei) to wei per gas."""
    key = "max_fee_per_gas_gwei"
    if value is None:
        return None
    if type(value) not in (int, float):
        fail(key, "must be a number of gwei, e.g. 100 or 0.05")
    gwei = Decimal(str(value))
    if not gwei.is_finite() or not 0 < gwei <= MAX_FEE_GWEI:
        fail(key, f"must be more than 0 and at most {MAX_FEE_GWEI:,} gwei")
    wei = gwei * GWEI
    if wei != wei.to_integral_value():
        fail(key, "has more decimals than a wei (9 after the point)")
    return int(wei)


__all__ = ["GUARD_KEYS", "NodeGuards", "parse_node_guards"]
