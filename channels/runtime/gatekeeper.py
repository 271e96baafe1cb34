"""Who may connect, open a channel with us, and get an update countersigned (the node's consent).

A node is built with a :class:`Trust`: the peers we declared (each with the terms we accept with
it) and the library callbacks that may widen or decide case by case. With no :class:`Trust` a node
talks to nobody who dials it, accepts no channel proposal and countersigns only the updates that
cannot cost it value (see :mod:`channels.core.consent`).

The :class:`Gatekeeper` applies it for one node: the transport's ``accept_peer`` callback, the cap
on authenticated connections (per identity and in total, with room always kept for declared peers
so strangers cannot starve them), the decision on a channel proposal, and the gate every channel
machine calls before it signs an update. The rules themselves are pure functions in the core
(:mod:`channels.core.terms`, :mod:`channels.core.consent`, :mod:`channels.core.risk`); this module
only gathers what they need.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import trio

from channels.core.consent import (
    Approved,
    DecisionHook,
    Refusal,
    TradeClass,
    UpdateView,
    Verdict,
    decide,
    needs_consent,
)
from channels.core.errors import ChannelError, RemoteError
from channels.core.model import Address, ChannelId, Params
from channels.core.protocol import Phase
from channels.core.reserve import GasReserveTooLow, check_spend, near, required
from channels.core.risk import (
    DAY,
    Held,
    RiskLimits,
    check,
    exposure,
    premium_we_pay,
)
from channels.core.terms import (
    NO_TERMS,
    AcceptTerms,
    CounterOffer,
    PeerTerms,
    PeerUsage,
    RefuseTerms,
    TermsDecision,
    WrongAssetDecimals,
    check_decimals,
    evaluate,
)
from channels.core.trust import ChannelProposal, Peer, Trust
from channels.defence.challenge import POLLS_OF_SLACK
from channels.runtime.assets import AssetDecimals

if TYPE_CHECKING:
    from adjudicator.client import AdjudicatorClient
    from channels.core.reserve import GasReserve
    from channels.runtime.channel import Channel
    from channels.store import AsyncStore


class NodeSettingsView(Protocol):
    """The node settings the gatekeeper reads."""

    @property
    def chain_poll_interval(self) -> float: ...
    @property
    def inclusion_window(self) -> int: ...
    @property
    def gas_reserve(self) -> GasReserve: ...


class Node(Protocol):
    """What the gatekeeper reads from its node (the node imports us, not the other way)."""

    @property
    def address(self) -> Address: ...
    @property
    def channels(self) -> list[Channel]: ...
    @property
    def chain(self) -> AdjudicatorClient: ...
    @property
    def settings(self) -> NodeSettingsView: ...
    @property
    def store(self) -> AsyncStore: ...
    def now(self) -> int: ...
    def alarm(self, kind: str, detail: str, channel_id: ChannelId | None = None) -> None: ...
    def last_prices(self) -> dict[bytes, int]: ...


log = logging.getLogger("channels.runtime.gatekeeper")

ETH_ASSET = Address(bytes(20))

#: Channels that no longer commit any of our funds.
_ENDED = (Phase.CLOSED,)


def period_floor(settings: NodeSettingsView) -> int:
    """The shortest challenge period any terms may accept on this chain: the chain's inclusion
    window plus the watcher's reaction time (a refute must be able to land in time). The default
    terms ask for more (an hour, :class:`PeerTerms`)."""
    reaction = math.ceil(POLLS_OF_SLACK * settings.chain_poll_interval)
    return settings.inclusion_window + reaction


class LinkRefused(RemoteError):
    """An authenticated connection over a cap; the node closes it at once."""


@dataclass
class Gatekeeper:
    """Applies a node's :class:`Trust` (see the module docstring)."""

    trust: Trust
    node: Node
    period_floor: int = 0
    _declared: Mapping[Address, Peer] = field(init=False)
    _links: dict[Address, int] = field(default_factory=dict)
    #: Premiums we agreed to pay per peer and asset (chain time, amount), for the daily limit.
    _premiums: dict[tuple[Address, Address], deque[tuple[int, int]]] = field(default_factory=dict)
    refused_connections: int = 0
    last_balance: int | None = None
    reserve_low: bool = False
    #: Each asset's decimals as the chain gives them (channels/runtime/assets.py).
    decimals: AssetDecimals = field(init=False)

    def __post_init__(self) -> None:
        self._declared = self.trust.declared()
        self.decimals = AssetDecimals(lambda asset: self.node.chain.asset_decimals(asset))
        #: Held while one deposit is checked against the gas reserve and sent (see spending).
        self._spending = trio.Lock()

    # connections --------------------------------------------------------------------------
    def is_declared(self, peer: Address) -> bool:
        return peer in self._declared

    def admit(self, peer: Address) -> bool:
        """The transport's ``accept_peer``: a declared peer, or one the admission callback takes,
        and only while it is under the caps (checked again when the link starts)."""
        if not self._under_caps(peer):
            self.refused_connections += 1
            return False
        if peer in self._declared:
            return True
        if self.trust.admit is None:
            self.refused_connections += 1
            return False
        try:
            admitted = bool(self.trust.admit(peer))
        except Exception:  # the bot's callback failing must not open the door, nor crash us
            log.exception("the admission callback failed; refusing 0x%s", peer.hex())
            admitted = False
        if not admitted:
            self.refused_connections += 1
        return admitted

    def _under_caps(self, peer: Address) -> bool:
        if self._links.get(peer, 0) >= self.trust.max_links_per_peer:
            return False
        if peer in self._declared:
            return True  # room for declared peers is never taken by strangers
        undeclared = sum(n for p, n in self._links.items() if p not in self._declared)
        return undeclared < self.trust.max_undeclared_links

    @contextmanager
    def link(self, peer: Address) -> Iterator[None]:
        """Count one authenticated incoming connection for as long as it lives."""
        if not self._under_caps(peer):
            self.refused_connections += 1
            raise LinkRefused(f"0x{peer.hex()} is over its connection cap")
        self._links[peer] = self._links.get(peer, 0) + 1
        try:
            yield
        finally:
            left = self._links[peer] - 1
            if left:
                self._links[peer] = left
            else:
                del self._links[peer]

    @property
    def link_count(self) -> int:
        return sum(self._links.values())

    def connection_status(self) -> dict[str, int]:
        """Authenticated connections open now, and dials refused so far by admission or a cap
        (for ping and ``channels status``: a flood of strangers shows here)."""
        return {"open": self.link_count, "refused": self.refused_connections}

    # channel proposals --------------------------------------------------------------------
    def terms_for(self, peer: Address) -> PeerTerms:
        declared = self._declared.get(peer)
        return declared.terms if declared is not None else NO_TERMS

    async def decide_channel(self, params: Params, deposits: tuple[int, int]) -> TermsDecision:
        """Our decision on a channel the peer proposes: accept (we fund exactly what it asks,
        within our terms), a counter-offer, or a refusal naming the rule. The asset's decimals
        must be the chain's (``WrongAssetDecimals``), checked before any counter-offer and before
        the ``accept_channel`` callback sees the proposal."""
        our_index = params.index_of(self.node.address)
        peer = params.participants[1 - our_index]
        by_terms = evaluate(
            self.terms_for(peer), params, deposits, our_index, self._usage(peer), self.period_floor
        )
        refused_outright = isinstance(by_terms, RefuseTerms) and by_terms.counter is None
        if refused_outright and self.trust.accept_channel is None:
            return by_terms  # an asset outside our terms is never read from the chain
        wrong = await self._check_decimals(params)
        if wrong is not None:
            return wrong
        if self.trust.accept_channel is None:
            return by_terms
        proposal = ChannelProposal(peer, params, deposits, our_index, by_terms)
        try:
            decision = self.trust.accept_channel(proposal)
        except Exception as exc:
            log.exception("the accept_channel callback failed")
            return RefuseTerms("AcceptChannelFailed", f"our callback failed: {exc}")
        if isinstance(decision, AcceptTerms):
            asked = deposits[our_index]
            if decision.our_deposit != asked:
                # We fund exactly what both sides signed up to, never what the proposer chose
                # beyond it: a different figure is a counter-offer.
                most = min(decision.our_deposit, asked)
                return RefuseTerms(
                    "DepositAboveTerms",
                    f"asked to deposit {asked}; we deposit at most {most}",
                    CounterOffer(most, params.challenge_period),
                )
            return decision
        if isinstance(decision, RefuseTerms):
            return decision
        return RefuseTerms("AcceptChannelFailed", "our callback returned no decision")

    async def _check_decimals(self, params: Params) -> RefuseTerms | None:
        try:
            true = await self.decimals.of(params.asset)
        except RemoteError as exc:  # a bad token answer or a failing chain: unchecked is refused
            log.warning("reading the decimals of 0x%s failed: %s", params.asset.hex(), exc)
            return RefuseTerms(
                "AssetDecimalsUnknown",
                f"could not read the decimals of asset 0x{params.asset.hex()} from the chain "
                f"({exc.rule})",
            )
        return check_decimals(params, true)

    async def asset_decimals(self, asset: Address, claimed: int | None) -> int:
        """The decimals of ``asset`` for a channel we propose: the chain's; our caller's
        ``claimed`` figure, if any, must equal them (:class:`WrongAssetDecimals` otherwise)."""
        true = await self.decimals.of(asset)
        if claimed is not None and claimed != true:
            raise WrongAssetDecimals(asset, claimed, true)
        return true

    def _usage(self, peer: Address) -> PeerUsage:
        channels = 0
        deposits: dict[Address, int] = {}
        for channel in self.node.channels:
            if channel.peer_address != peer or channel.phase in _ENDED:
                continue
            channels += 1
            asset = channel.params.asset
            deposits[asset] = deposits.get(asset, 0) + channel.deposits[channel.our_index]
        return PeerUsage(channels, deposits)

    # updates ------------------------------------------------------------------------------
    def gate(self, view: UpdateView) -> Verdict:
        """Called by a channel machine before it signs an update (proposing or countersigning):
        the risk limits first, then the consent rule (whose quote check comes last: an approved
        fill is taken)."""
        declared = self._declared.get(view.peer)
        limits = self.limits_for(view.peer, view.params.asset)
        premium = premium_we_pay(view.trades, view.our_index)
        if not limits.empty:
            refusal = self._check_limits(view, limits, premium)
            if refusal is not None:
                return refusal
        hook = self.trust.decide
        if declared is not None and declared.approve:
            hook = _standing_approval(declared, hook)
        verdict = decide(view, self.trust.quotes, hook)
        if premium and isinstance(verdict, Approved):
            key = (view.peer, view.params.asset)
            self._premiums.setdefault(key, deque()).append((view.now, premium))
        return verdict

    async def restore_premiums(self) -> int:
        """After a restart: the premiums we paid in the last 24 hours, from the store (each
        stored state records them: channels/store/premiums.py), so that a restart does not reset
        the daily premium limit. Their times are chain time now minus their age. Returns the
        total restored."""
        channels = {c.id: c for c in self.node.channels}
        now = self.node.now()
        restored: dict[tuple[Address, Address], list[tuple[int, int]]] = {}
        for paid in await self.node.store.premiums_since(DAY):
            channel = channels.get(ChannelId(paid.channel_id))
            if channel is None or paid.payer != channel.our_index:
                continue
            key = (channel.peer_address, channel.params.asset)
            restored.setdefault(key, []).append((now - paid.age, paid.amount))
        for key, entries in restored.items():
            merged = sorted([*self._premiums.get(key, ()), *entries])
            self._premiums[key] = deque(merged)
        return sum(amount for entries in restored.values() for _, amount in entries)

    # gas reserve -----------------------------------------------------------------------------
    def _defended(self, extra: bool) -> list[int]:
        """Open positions of every channel we may have to defend (plus a new one)."""
        counts = [len(c.positions) for c in self.node.channels if c.phase not in _ENDED]
        return [*counts, 0] if extra else counts

    async def _balance(self) -> int | None:
        account = self.node.chain.account
        if account is None:
            return None
        # "pending": a deposit still unmined (its wait timed out, the spending slot was let
        # go) has already spent what it sends; the reserve is checked against what is left.
        balance = int(await self.node.chain.rpc.get_balance("0x" + account.hex(), "pending"))
        self.last_balance = balance
        return balance

    async def check_funding(self, params: Params, amount: int, *, new_channel: bool) -> None:
        """Raise :class:`GasReserveTooLow` if depositing ``amount`` into ``params``'s channel would
        leave less than the gas needed to defend every channel we would then have."""
        reserve = self.node.settings.gas_reserve
        balance = await self._balance()
        if balance is None or reserve.max_fee_per_gas == 0:
            return
        value = amount if params.asset == ETH_ASSET else 0
        refusal = check_spend(
            reserve, balance, value, self._defended(new_channel), f"depositing {amount}"
        )
        if refusal is not None:
            raise GasReserveTooLow(refusal.reason)

    @asynccontextmanager
    async def spending(self, params: Params, amount: int) -> AsyncIterator[None]:
        """consent: check a deposit against the gas reserve and hold the node's one spending
        slot until the caller's block (sending it, waiting for it to be mined) is done, so that
        two deposits can never both pass the check against the same balance."""
        async with self._spending:
            await self.check_funding(params, amount, new_channel=False)
            yield

    def reserve_status(self) -> dict[str, object]:
        """The transaction account's last known balance against the reserve (for status)."""
        reserve = self.node.settings.gas_reserve
        need = required(reserve, self._defended(False))
        return {
            "balance": self.last_balance,
            "reserve": need,
            "max_fee_per_gas": reserve.max_fee_per_gas,
            "low": self.last_balance is not None and near(reserve, self.last_balance, need),
        }

    async def watch_reserve(self, interval: float) -> None:
        """Alarm ``GasReserveLow`` when the balance nears the reserve (once per crossing)."""
        while True:
            try:
                balance = await self._balance()
            except ChannelError as exc:  # the chain will be asked again; the watcher alarms
                log.info("reading the transaction account's balance failed: %s", exc)
                balance = None
            if balance is not None:
                status = self.reserve_status()
                if status["low"] and not self.reserve_low:
                    self.node.alarm(
                        "GasReserveLow",
                        f"transaction account holds {balance} wei; defending the open channels "
                        f"needs {status['reserve']} wei at {status['max_fee_per_gas']} wei/gas: "
                        "add ETH",
                    )
                self.reserve_low = bool(status["low"])
            await trio.sleep(interval)

    def limits_for(self, peer: Address, asset: Address) -> RiskLimits:
        """The risk limits of ``peer``'s channels in ``asset`` (a declared peer's own, or those
        of ``Trust.limits`` for a peer the admission callback let in)."""
        declared = self._declared.get(peer)
        return declared.limits_for(asset) if declared is not None else self.trust.limits

    def _check_limits(self, view: UpdateView, limits: RiskLimits, premium: int) -> Refusal | None:
        held = [
            Held(position, channel.our_index, channel.params.asset_decimals)
            for channel in self.node.channels
            if channel.peer_address == view.peer
            and channel.params.asset == view.params.asset
            and channel.phase not in _ENDED
            for position in channel.positions
        ]
        paid = self._premiums.get((view.peer, view.params.asset), deque())
        while paid and paid[0][0] <= view.now - DAY:
            paid.popleft()
        return check(
            limits,
            view.trades,
            view.our_index,
            exposure(held, self.node.last_prices()),
            premium_paid_today=sum(amount for _, amount in paid),
            now=view.now,
            decimals=view.params.asset_decimals,
        )


def _standing_approval(peer: Peer, then: DecisionHook | None) -> DecisionHook:
    """The operator's consent in advance to some trade classes of one peer; anything else goes to
    the bot's hook (or is refused)."""

    def hook(view: UpdateView) -> Verdict:
        moving = {c for c in view.classes if needs_consent(c)}
        if moving <= peer.approve:
            return Approved(f"standing approval for peer {peer.name}")
        if then is not None:
            return then(view)
        missing = ", ".join(sorted(c.name.lower() for c in moving - peer.approve))
        return Refusal(
            "ConsentRequired",
            f"peer {peer.name} is approved for {_names(peer.approve)}, not for {missing}",
        )

    return hook


def _names(classes: frozenset[TradeClass]) -> str:
    return ", ".join(sorted(c.name.lower() for c in classes)) or "nothing"


__all__ = ["Gatekeeper", "LinkRefused", "period_floor"]
