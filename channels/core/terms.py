"""Our terms for channels a peer proposes to us, and the decision on a proposal (pure).

A channel proposal says what the opener deposits and what it *asks* us to deposit. Our node
decides: :func:`evaluate` accepts (we fund exactly what was asked, never more), refuses with a
:class:`CounterOffer` (the deposit and challenge period we would accept instead, so the opener can
propose again with them in one call), or refuses naming the rule with nothing to offer: the asset
is not one we accept with this peer, the oracle is not one we trust, we already have as many
channels with this peer as our terms allow. A challenge period outside our bounds (never below the
chain's inclusion floor) or a deposit above what is left of our terms is countered.

The asset's decimals in the proposal are the opener's claim; everything we scale by them (quotes
in asset units, limits, amounts typed by hand) would follow a false one, so
:func:`check_decimals` refuses (``WrongAssetDecimals``) any that differ from the decimals the chain
gives for the asset. Our own proposals are held to the same: :class:`WrongAssetDecimals` is
raised to our caller.

The opener treats a counter-offer as hostile input like any other: :func:`check_counter` takes it
only when it lowers what was asked of the peer and its challenge period is within the opener's own
terms for that peer (:class:`BadCounterOffer` otherwise).

An empty :class:`PeerTerms` accepts nothing, which is what a stranger gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from channels.core.errors import InvalidField, LocalError, RemoteError, RuleViolation
from channels.core.model import Address, Params
from channels.core.units import fmt_units


@dataclass(frozen=True, slots=True)
class AssetTerms:
    """How much of one asset we lock with one peer (in the asset's smallest unit)."""

    #: Our deposit in any one channel.
    max_deposit: int
    #: Our deposits over all open channels with this peer.
    max_total: int

    def __post_init__(self) -> None:
        for name in ("max_deposit", "max_total"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise InvalidField(f"{name} must be a non-negative int")


@dataclass(frozen=True, slots=True)
class PeerTerms:
    """What we accept from one peer when it proposes a channel to us."""

    #: Asset address -> how much of it we lock. An asset not here is refused.
    assets: Mapping[Address, AssetTerms] = field(default_factory=dict)
    #: Oracles whose prices we accept for settlement.
    oracles: frozenset[Address] = frozenset()
    #: Challenge period bounds in seconds (the lower one is raised to the chain's floor).
    min_challenge_period: int = 3600
    max_challenge_period: int = 7 * 86400
    #: Open channels with this peer at most (counting the proposed one).
    max_channels: int = 0
    #: Whether this peer may propose channels to us at all (we may still open to it).
    accept_proposals: bool = True

    def __post_init__(self) -> None:
        if self.min_challenge_period > self.max_challenge_period:
            raise InvalidField("min_challenge_period is above max_challenge_period")
        if self.max_channels < 0:
            raise InvalidField("max_channels must be non-negative")


#: The terms a peer nobody declared gets: nothing.
NO_TERMS = PeerTerms()


@dataclass(frozen=True, slots=True)
class PeerUsage:
    """What we already have with the proposing peer (open channels, our deposits per asset)."""

    channels: int = 0
    our_deposits: Mapping[Address, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AcceptTerms:
    """Accept the channel and fund ``our_deposit`` (never above what the opener asked)."""

    our_deposit: int


@dataclass(frozen=True, slots=True)
class CounterOffer:
    """The terms the refusing side would accept instead: a proposal asking it to deposit
    ``deposit`` (asset units) with a challenge period of ``challenge_period`` seconds, and
    otherwise the same, is accepted (while nothing else changed on its side)."""

    deposit: int
    challenge_period: int

    def __post_init__(self) -> None:
        if type(self.deposit) is not int or not 0 <= self.deposit < 1 << 256:
            raise InvalidField("a counter-offer's deposit must be a uint256")
        if type(self.challenge_period) is not int or not 0 < self.challenge_period < 1 << 64:
            raise InvalidField("a counter-offer's challenge period must be a positive uint64")


@dataclass(frozen=True, slots=True)
class RefuseTerms:
    """Refuse the channel; ``counter`` is what we would accept instead (None: nothing would do)."""

    rule: str
    reason: str
    counter: CounterOffer | None = None


TermsDecision = AcceptTerms | RefuseTerms


@dataclass(frozen=True, slots=True)
class ProposedChannel:
    """A channel proposal as its opener made it (to propose again with a counter-offer)."""

    endpoint: tuple[str, int]
    params: Params
    deposits: tuple[int, int]


class TermsRefused(RuleViolation, RemoteError):
    """Our terms (or the peer's) refused a channel proposal; ``rule`` names the term.

    ``counter`` is the peer's :class:`CounterOffer` (None: nothing would do); ``proposed`` the
    refused proposal, so that ``Node.accept_counter_offer(refused)`` proposes again with it.
    """

    rule = "TermsRefused"

    def __init__(
        self,
        rule: str,
        reason: str,
        counter: CounterOffer | None = None,
        proposed: ProposedChannel | None = None,
    ) -> None:
        offer = (
            f" (counter-offer: deposit {counter.deposit}, challenge period "
            f"{counter.challenge_period}s)"
            if counter is not None
            else ""
        )
        super().__init__(f"{rule}: {reason}{offer}")
        self.rule = rule
        self.reason = reason
        self.counter = counter
        self.proposed = proposed


class BadCounterOffer(RuleViolation, RemoteError):
    """The peer's counter-offer asks for more than was proposed or for a challenge period
    outside our own terms for it: we do not propose it."""

    rule = "BadCounterOffer"


class WrongAssetDecimals(LocalError):
    """Our caller gave decimals for the channel's asset other than the chain's (ETH has 18, a
    token its ``decimals()``): leave ``asset_decimals`` out and the node reads them."""

    def __init__(self, asset: Address, claimed: int, true: int) -> None:
        super().__init__(decimals_mismatch(asset, claimed, true))
        self.asset = asset
        self.claimed = claimed
        self.true = true


def decimals_mismatch(asset: Address, claimed: int, true: int) -> str:
    """What is wrong with a channel claiming ``claimed`` decimals for ``asset``."""
    return f"asset 0x{asset.hex()} has {true} decimals on chain, the channel claims {claimed}"


def check_decimals(params: Params, true: int) -> RefuseTerms | None:
    """Refuse a proposal whose ``asset_decimals`` are not ``true``, the asset's decimals as the
    chain gives them: the opener chose the figure, and everything we scale by it would follow."""
    if params.asset_decimals == true:
        return None
    return RefuseTerms(
        "WrongAssetDecimals", decimals_mismatch(params.asset, params.asset_decimals, true)
    )


def evaluate(
    terms: PeerTerms,
    params: Params,
    deposits: tuple[int, int],
    our_index: int,
    usage: PeerUsage,
    period_floor: int,
) -> TermsDecision:
    """Our decision on a proposal of ``params`` with ``deposits`` (what each side would deposit).

    ``period_floor`` is the shortest challenge period that can be defended on this chain (its
    inclusion window plus the watcher's reaction time): nothing below it is ever accepted.
    """
    asked = deposits[our_index]
    if not terms.accept_proposals:
        return RefuseTerms("PeerNotAccepted", "we accept no channel proposals from this peer")
    asset_terms = terms.assets.get(params.asset)
    if asset_terms is None:
        return RefuseTerms("AssetNotAccepted", f"asset 0x{params.asset.hex()} is not in our terms")
    if params.oracle not in terms.oracles:
        return RefuseTerms("OracleNotTrusted", f"oracle 0x{params.oracle.hex()} is not trusted")
    if usage.channels + 1 > terms.max_channels:
        return RefuseTerms(
            "TooManyChannels", f"already {usage.channels} channels, at most {terms.max_channels}"
        )
    low = max(terms.min_challenge_period, period_floor)
    if low > terms.max_challenge_period:
        return RefuseTerms(
            "ChallengePeriodOutOfBounds",
            f"no challenge period fits: this chain needs at least {low}s, our terms allow at "
            f"most {terms.max_challenge_period}s",
        )
    period = min(max(params.challenge_period, low), terms.max_challenge_period)
    room = asset_terms.max_total - usage.our_deposits.get(params.asset, 0)
    most = max(0, min(asset_terms.max_deposit, room))
    counter = CounterOffer(min(asked, most), period)
    if period != params.challenge_period:
        return RefuseTerms(
            "ChallengePeriodOutOfBounds",
            f"challenge period {params.challenge_period}s is outside [{low}s, "
            f"{terms.max_challenge_period}s]",
            counter,
        )
    if asked > most:
        units = params.asset_decimals
        return RefuseTerms(
            "DepositAboveTerms",
            f"asked to deposit {fmt_units(asked, units)}; we deposit at most "
            f"{fmt_units(most, units)} (per channel {fmt_units(asset_terms.max_deposit, units)}, "
            f"left of our total {fmt_units(max(0, room), units)}; in the asset's units)",
            counter,
        )
    return AcceptTerms(asked)


def check_counter(
    proposed: ProposedChannel, counter: CounterOffer, terms: PeerTerms, period_floor: int
) -> None:
    """Whether we, the opener, may propose ``proposed`` again with the peer's ``counter``.

    The counter comes from the peer: it may only lower what we asked it to deposit, and its
    challenge period must be one our own terms for that peer accept (never below the floor).
    """
    asked = proposed.deposits[1]  # the opener is participant 0
    if counter.deposit > asked:
        raise BadCounterOffer(
            f"the counter-offer's deposit {counter.deposit} is above the {asked} we asked for"
        )
    low = max(terms.min_challenge_period, period_floor)
    if not low <= counter.challenge_period <= terms.max_challenge_period:
        raise BadCounterOffer(
            f"the counter-offer's challenge period {counter.challenge_period}s is outside our "
            f"terms [{low}s, {terms.max_challenge_period}s]"
        )


__all__ = [
    "NO_TERMS",
    "AcceptTerms",
    "AssetTerms",
    "BadCounterOffer",
    "CounterOffer",
    "PeerTerms",
    "PeerUsage",
    "ProposedChannel",
    "RefuseTerms",
    "TermsDecision",
    "TermsRefused",
    "WrongAssetDecimals",
    "check_counter",
    "check_decimals",
    "decimals_mismatch",
    "evaluate",
]
