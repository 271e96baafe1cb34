"""The machine's data and the helpers every part of it shares (no step handlers here)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from channels.core import eip712
from channels.core.consent import (
    Approved,
    ConsentRefused,
    Refusal,
    UpdateView,
    Verdict,
    strict_gate,
)
from channels.core.errors import PolicyRefused, WrongDomain
from channels.core.funding import funded as deposits_made
from channels.core.messages import RESYNC_HISTORY
from channels.core.model import (
    Address,
    ChannelId,
    Digest,
    Params,
    SignedUpdate,
    State,
    Timestamp,
    Version,
    Withdrawal,
)
from channels.core.options import Context, Limits, Trade, apply_trades
from channels.core.positions import PositionBook
from channels.core.protocol.events import (
    Action,
    PhaseChanged,
    Policy,
    UpdateRefused,
)
from channels.core.protocol.phases import Phase, Step, expect, next_phase
from channels.core.protocol.roles import ROLES, Role
from channels.core.signing import Signer

#: A proposal may skip at most this many burned versions.
MAX_VERSION_SKIP = 4096


@dataclass(slots=True)
class Pending:
    """A proposal we (the leader) signed that the follower has not answered yet."""

    state: State
    trades: tuple[Trade, ...]
    signature: bytes
    #: The EIP-712 digest we signed (the follower's accept is checked against it).
    digest: Digest
    request_id: int | None
    ours: bool
    withdrawal: Withdrawal | None
    withdrawal_signature: bytes | None
    #: The state's EIP-712 struct hash (handed to the store with the fully signed state).
    state_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """What this node accepts: its chain, its adjudicator, its limits."""

    chain_id: int
    adjudicator: Address
    limits: Limits = field(default_factory=Limits)
    max_pending: int = 64
    max_requests: int = 64
    #: A side counts as funded once credited its deposit less this fee (channels/core/funding.py).
    max_deposit_fee_bps: int = 0


@dataclass(slots=True)
class MachineData:
    """One channel seen from one participant: what the machine knows between steps."""

    params: Params
    signer: Signer
    config: Config
    index: int
    deposits: tuple[int, int]
    latest: SignedUpdate
    book: PositionBook
    phase: Phase
    highest_signed: int
    confirmed_deposits: tuple[int, int] = (0, 0)
    policy: Policy | None = None
    #: consent: who decides an update before we sign it (channels.core.consent); the node installs
    #: its gatekeeper here. The default consents only to what cannot cost us value.
    gate: Callable[[UpdateView], Verdict] = strict_gate
    #: Set while we are not in step with the peer: from a disconnect (or a restart) until the
    #: peer's reestablish arrives. No new proposal is made meanwhile: it could cross the peer's
    #: reestablish and leave the two sides on different versions.
    reestablishing: bool = False
    #: False after a restart until the peer's reestablish shows where it stands: we may be
    #: behind (a restored backup, a crash mid-update), so nothing is registered on our own.
    synced: bool = True
    domain: eip712.Domain = field(init=False)
    #: Our newest fully signed updates, oldest first, the latest last: a peer that is behind
    #: replays them from our Reestablish (channels/core/protocol/resync.py).
    recent: deque[SignedUpdate] = field(default_factory=lambda: deque(maxlen=RESYNC_HISTORY))
    _pending: deque[Pending] = field(default_factory=deque)
    _requests: dict[int, tuple[Trade, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.domain = eip712.Domain(self.params.chain_id, self.params.adjudicator)
        if self.latest.signed.fully_signed:
            self.recent.append(self.latest)

    # reading ----------------------------------------------------------------------------------
    @property
    def channel_id(self) -> ChannelId:
        return self.params.channel_id

    @property
    def role(self) -> Role:
        return ROLES[self.index]

    @property
    def state(self) -> State:
        """The latest fully signed state (or our half-signed version 0 while opening)."""
        return self.latest.signed.state

    @property
    def peer_address(self) -> Address:
        return self.params.participants[1 - self.index]

    @property
    def pending_versions(self) -> list[int]:
        return [p.state.version for p in self._pending]

    def head(self) -> State:
        """The state new trades build on: the newest in-flight proposal, else the latest."""
        return self._pending[-1].state if self._pending else self.state

    # shared helpers ---------------------------------------------------------------------------
    def _advance(self, update: SignedUpdate) -> None:
        """``update`` (fully signed) becomes the latest; it joins the recent history."""
        self.latest = update
        recent = self.recent
        if recent and recent[-1].signed.state.version >= update.signed.state.version:
            recent.clear()  # an adopted state replaces ours: the old tail no longer leads to it
        recent.append(update)

    def _enter(self, step: Step) -> list[Action]:
        """Move to the phase the table gives for ``step`` (which must be allowed)."""
        after = expect(self.phase, step, ours=True)
        if after is self.phase:
            return []
        self.phase = after
        return [PhaseChanged(self.channel_id, after)]

    def _dry_run(
        self, base: State, trades: tuple[Trade, ...], now: Timestamp, gate: bool = False
    ) -> State:
        self.book.begin()
        try:
            new = apply_trades(
                base, self.book, trades, self._context(now), Version(base.version + 1)
            )
            if gate:  # our own request: our policy and risk limits bind it before it leaves
                self._check_policy(base, new, trades, ours=True, now=now)
            return new
        finally:
            self.book.rollback_newest()

    def _check_policy(
        self, base: State, new: State, trades: Sequence[Trade], *, ours: bool, now: Timestamp
    ) -> None:
        # consent (channels.core.consent): ``ours`` means we initiated exactly these trades (our
        # call as leader, or our request the leader echoed, checked before by RequestMismatch).
        view = UpdateView(
            channel_id=self.channel_id,
            params=self.params,
            peer=self.peer_address,
            our_index=self.index,
            base=base,
            new=new,
            trades=tuple(trades),
            initiated_by_us=ours,
            now=now,
        )
        if self.policy is not None:
            reason = self.policy(view)
            if reason is not None:
                raise PolicyRefused(reason)
        verdict = self.gate(view)
        if isinstance(verdict, Refusal):
            raise ConsentRefused(verdict)
        if not isinstance(verdict, Approved):
            raise ConsentRefused(Refusal("ConsentRequired", "the gate gave no verdict"))

    def _context(self, now: Timestamp) -> Context:
        return Context(
            params=self.params,
            domain=self.domain,
            now=now,
            confirmed_deposits=self.confirmed_deposits,
            limits=self.config.limits,
        )

    def _funded(self, state: State) -> bool:
        return deposits_made(state.deposited, self.deposits, self.config.max_deposit_fee_bps)

    def _phase_after_update(self) -> list[Action]:
        state = self.state
        if state.is_final:
            step = Step.FINALISED
        elif self._funded(state):
            step = Step.FUNDED
        else:
            return []
        if next_phase(self.phase, step) is None:
            return []
        return self._enter(step)

    def _abandoned(self, p: Pending) -> UpdateRefused:
        return UpdateRefused(
            self.channel_id,
            p.request_id,
            p.state.version,
            "NotCountersigned",
            "the peer never countersigned it",
            p.ours,
        )

    def _drop_pending(self) -> list[Action]:
        actions: list[Action] = [self._abandoned(p) for p in self._pending]
        self._pending.clear()
        while self.book.pending_change_sets:
            self.book.rollback_newest()
        return actions

    def _refuse_requests(self, rule: str, reason: str) -> list[Action]:
        """Our requests waiting for the leader will not be answered: refuse them to our caller."""
        actions: list[Action] = [
            UpdateRefused(self.channel_id, request_id, None, rule, reason)
            for request_id in self._requests
        ]
        self._requests.clear()
        return actions


def pair(index: int, ours: bytes, theirs: bytes) -> tuple[bytes, bytes]:
    """Two signatures in participant order, ours at ``index``."""
    return (ours, theirs) if index == 0 else (theirs, ours)


def check_domain(params: Params, config: Config) -> None:
    if params.chain_id != config.chain_id:
        raise WrongDomain(
            f"the channel is for chain {params.chain_id}, we are on {config.chain_id}"
        )
    if params.adjudicator != config.adjudicator:
        raise WrongDomain("the channel names another adjudicator than ours")
