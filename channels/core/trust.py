"""Whom a node deals with and on what terms: declared peers, admission, channel decisions (pure
configuration; the runtime's gatekeeper applies it, channels/runtime/gatekeeper.py).

A node is built with a :class:`Trust`: the peers we declared (each with the terms we accept with
it, its risk limits and the trades its operator consents to in advance) and the library callbacks
that may widen or decide case by case. The default :class:`Trust` trusts nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from channels.core.consent import DecisionHook, QuoteAuthority, TradeClass
from channels.core.errors import InvalidField
from channels.core.model import Address, Params, address
from channels.core.risk import NO_LIMITS, RiskLimits
from channels.core.terms import NO_TERMS, PeerTerms, TermsDecision


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer we declared: its address, where to reach it, and what we accept with it."""

    name: str
    address: Address
    endpoint: tuple[str, int] | None = None
    terms: PeerTerms = NO_TERMS
    #: Trade classes the operator consents to in advance for this peer (the CLI desk's standing
    #: decision; a bot decides with ``Trust.decide`` instead). Empty: none.
    approve: frozenset[TradeClass] = frozenset()
    #: Risk limits with this peer (channels.core.risk); they bind our own calls too.
    limits: RiskLimits = NO_LIMITS
    #: Limits for channels in one asset, in place of ``limits`` (amount limits are in an asset's
    #: smallest unit, so a figure means something only for one asset).
    asset_limits: Mapping[Address, RiskLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.address, str):  # "0x..." as a desk writes it
            object.__setattr__(self, "address", address(self.address))
        if type(self.address) is not bytes or len(self.address) != 20:
            raise InvalidField(f"peer {self.name}: address must be 20 bytes or 0x-hex")

    def limits_for(self, asset: Address) -> RiskLimits:
        """The risk limits of this peer's channels in ``asset``."""
        return self.asset_limits.get(asset, self.limits)


@dataclass(frozen=True, slots=True)
class ChannelProposal:
    """What an ``accept_channel`` callback sees: the proposal and the decision our terms give."""

    peer: Address
    params: Params
    #: What each participant would deposit (the opener's own, and what it asks of us).
    deposits: tuple[int, int]
    our_index: int
    #: The decision of the terms we declared for this peer (a refusal for a stranger).
    by_terms: TermsDecision

    @property
    def asked_of_us(self) -> int:
        return self.deposits[self.our_index]


#: Admits a peer that is not declared (it proved it holds ``address``'s key).
AdmitPeer = Callable[[Address], bool]
#: Decides a channel proposal: ``AcceptTerms`` or ``RefuseTerms`` (with a reason).
AcceptChannel = Callable[[ChannelProposal], TermsDecision]


@dataclass(frozen=True, slots=True)
class Trust:
    """Whom a node deals with and on what terms. The default trusts nobody."""

    peers: tuple[Peer, ...] = ()
    #: Admit a peer we did not declare; None: only declared peers.
    admit: AdmitPeer | None = None
    #: Decide channel proposals; None: our declared terms decide (strangers get nothing).
    accept_channel: AcceptChannel | None = None
    #: Decide value-moving updates we did not initiate and no quote of ours covers.
    decide: DecisionHook | None = None
    #: Our live firm quotes (the RFQ layer); None: no quotes.
    quotes: QuoteAuthority | None = None
    #: Risk limits for peers admitted by the callback (declared peers carry their own).
    limits: RiskLimits = NO_LIMITS
    #: Authenticated connections from peers that were not declared, at most (all of them).
    max_undeclared_links: int = 32
    #: Authenticated connections from one identity at most (a reconnect briefly holds two).
    max_links_per_peer: int = 2

    def __post_init__(self) -> None:
        names = [p.name for p in self.peers]
        if len(set(names)) != len(names):
            raise InvalidField("two declared peers have the same name")
        if len({p.address for p in self.peers}) != len(self.peers):
            raise InvalidField("two declared peers have the same address")
        if self.max_undeclared_links < 0 or self.max_links_per_peer < 1:
            raise InvalidField("connection caps must be positive")

    def declared(self) -> Mapping[Address, Peer]:
        return {p.address: p for p in self.peers}



__all__ = ["AcceptChannel", "AdmitPeer", "ChannelProposal", "Peer", "Trust"]
