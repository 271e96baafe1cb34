"""The tunables of a node."""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.core.options import Limits
from channels.core.reserve import GasReserve
from channels.defence.txdriver import TxPolicy
from channels.transport import TransportConfig


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Tunables of a node; the defaults suit a desk on a public chain with 1-block confirmations."""

    confirmations: int = 1
    chain_poll_interval: float = 0.5
    update_timeout: float = 30.0
    connect_timeout: float = 5.0
    open_timeout: float = 120.0
    reconnect_backoff: tuple[float, float] = (0.2, 5.0)
    limits: Limits = field(default_factory=Limits)
    max_pending: int = 64
    synchronous: str = "FULL"
    #: Go on chain when a deposit has not arrived this long after opening (seconds).
    funding_timeout: float = 3600.0
    #: Go on chain when the peer is silent this long while a proposal waits or an option nears
    #: expiry (seconds); None never escalates on silence.
    escalate_after: float | None = 600.0
    #: "Near expiry" means within the challenge period plus this margin (seconds).
    expiry_margin: int = 3600
    #: Deposit our share as soon as a peer's channel proposal is accepted.
    auto_fund: bool = True
    #: Alarm ("StaleHead") when the newest block is older than this (seconds of wall time).
    max_head_age: float = 180.0
    #: The chain's worst-case inclusion delay (on a rollup, its forced-inclusion window), in
    #: seconds: channels whose challenge period does not clearly exceed it raise an alarm.
    inclusion_window: int = 0
    #: When dispute transactions count as stuck and get rebroadcast or fee-bumped.
    tx_policy: TxPolicy | None = None
    #: Seconds of silence after which a link sends a keepalive (and 3x that: the peer is dead).
    keepalive_interval: float | None = 15.0
    #: Per-peer limits: a link that sends more messages than this in one second, or more
    #: malformed or refused messages than ``max_bad_messages`` in its life, is dropped.
    max_messages_per_second: int = 50_000
    max_bad_messages: int = 1_000
    #: consent: a deposit counts as made once the chain credits the agreed amount less this many
    #: basis points (the asset's transfer fee: USDT's is capped at 20); what is credited is always
    #: what the chain measured. The default 0 accepts only fee-free assets: losing value to a
    #: fee-on-transfer token needs the desk's say-so (a larger fee raises DepositFeeRefused).
    max_deposit_fee_bps: int = 0
    #: With watchtowers: a new version is signed only while our newest fully signed state is at
    #: most this many versions ahead of what a tower acked, waiting up to ``update_timeout`` for
    #: the ack (then TowerBehind and an alarm). 0: every state is backed up before the next is
    #: signed; None: sign regardless (a lost store may then cost every unacked state).
    max_tower_lag: int | None = 0
    #: consent: the gas kept to defend every open channel (channels/core/reserve.py); deposits
    #: that would cut into it are refused.
    gas_reserve: GasReserve = field(default_factory=GasReserve)

    def transport_config(self) -> TransportConfig:
        return TransportConfig(keepalive_interval=self.keepalive_interval)
