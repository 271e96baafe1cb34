"""The channel state machine: inputs in, actions out, no I/O (docs/PROTOCOL.md section 7).

``machine.handle(input, now=t)`` checks the input against the channel's phase and rules and returns
the actions the shell must perform **in order** (persist before send). Bad input raises a typed
:class:`~channels.core.errors.ChannelError` and leaves the machine exactly as it was, except where a
refusal must be told to the peer: then the machine is unchanged and the only action is
``Send(Reject(...))``.

Ordering rule (the leader rule, after Nitro ADR-0003): participant 0 is the leader and signs every
new version first; the follower sends unsigned :class:`UpdateRequest` s and countersigns what the
leader signed. Versions only grow, and a signer never signs two states of one version:

* the leader signs version ``n`` only if ``n`` is above every version it ever signed, and records
  that (``PersistSignature``) before the signature leaves;
* the follower signs only a proposal above its latest fully signed state and built on it; its
  signature completes the state, which it stores (``PersistState``) before it answers.

A refused proposal burns its version (the leader's signature on it is out); the next proposal
skips it. Several proposals may be in flight (pipelining), each built on the previous one.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from channels.core import eip712
from channels.core.errors import (
    BadSignature,
    Equivocation,
    IllegalCall,
    InvalidField,
    RuleViolation,
    StaleVersion,
    TooManyPending,
    UnexpectedMessage,
    UnknownChannel,
    WrongDomain,
)
from channels.core.messages import (
    Accept,
    Message,
    OpenAccept,
    OpenProposal,
    Proposal,
    Reestablish,
    Reject,
    UpdateRequest,
)
from channels.core.model import (
    Address,
    ChannelId,
    Params,
    SignedState,
    State,
    Timestamp,
    Version,
    Withdrawal,
    check_uint,
)
from channels.core.options import (
    Context,
    CreditDeposit,
    Limits,
    Trade,
    apply_trades,
    opening_state,
    withdrawal_of,
)
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.signing import Signer, sign_message, verify

#: A proposal may skip at most this many burned versions.
MAX_VERSION_SKIP = 4096


class Phase(enum.Enum):
    OPENING = "opening"  # version 0 signed by us, waiting for the peer's signature
    FUNDING = "funding"  # version 0 fully signed; deposits not yet credited
    OPEN = "open"  # trading
    FINAL = "final"  # a final state is fully signed: close on chain
    DISPUTED = "disputed"  # a state is registered on chain; no updates
    CLOSED = "closed"  # concluded on chain


# Inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A message from the peer."""

    message: Message


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    """Our caller wants ``trades`` in the next state."""

    trades: tuple[Trade, ...]
    request_id: int


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection to the peer is up: send our side of the reestablish."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection to the peer is gone: requests we sent are lost."""


@dataclass(frozen=True, slots=True)
class DepositsObserved:
    """Cumulative deposits per participant, confirmed on chain at the confirmation depth."""

    totals: tuple[int, int]


@dataclass(frozen=True, slots=True)
class DisputeObserved:
    """A state of this channel is registered on chain (updates stop)."""

    version: Version


@dataclass(frozen=True, slots=True)
class DisputeCleared:
    """A newer state was checkpointed on chain: the dispute is over, trading may resume."""


@dataclass(frozen=True, slots=True)
class ChainStateSeen:
    """A fully signed state of this channel carried by a chain transaction (register/checkpoint).

    If it is valid and newer than ours we adopt it: either the peer completed a proposal we
    signed, or we lost data. Its positions are known only if they match ours.
    """

    signed: SignedState


@dataclass(frozen=True, slots=True)
class ConcludedObserved:
    """The channel is concluded on chain."""

    version: Version


Input = (
    Received
    | RequestUpdate
    | Reconnected
    | Disconnected
    | DepositsObserved
    | DisputeObserved
    | DisputeCleared
    | ChainStateSeen
    | ConcludedObserved
)


# Actions ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistSignature:
    """Durably record "I signed ``version`` = ``state_hash``" before the signature leaves."""

    channel_id: ChannelId
    version: Version
    state_hash: bytes


@dataclass(frozen=True, slots=True)
class SignedUpdate:
    """A fully signed state with the trades that produced it (the store's append-only record)."""

    signed: SignedState
    trades: tuple[Trade, ...]
    withdrawal: Withdrawal | None = None
    withdrawal_signatures: tuple[bytes, bytes] | None = None


@dataclass(frozen=True, slots=True)
class PersistState:
    """Durably store a fully signed state; it becomes the channel's latest.

    ``book`` is the whole positions book after it when the state was adopted from the peer (its
    positions do not follow from our stored latest plus its trades); otherwise None.
    """

    channel_id: ChannelId
    update: SignedUpdate
    book: BookSnapshot | None = None


@dataclass(frozen=True, slots=True)
class Send:
    message: Message


@dataclass(frozen=True, slots=True)
class UpdateApplied:
    """A new fully signed state is the latest (tells the caller whose request it answered)."""

    channel_id: ChannelId
    update: SignedUpdate
    request_id: int | None
    ours: bool


@dataclass(frozen=True, slots=True)
class UpdateRefused:
    """Our request or proposal did not become a state."""

    channel_id: ChannelId
    request_id: int | None
    version: Version | None
    rule: str
    reason: str
    #: False when the request id is the peer's (a leader dropping a proposal it made for the
    #: follower's request): our own callers must not be woken by it.
    ours: bool = True


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    channel_id: ChannelId
    phase: Phase


@dataclass(frozen=True, slots=True)
class DataLossRecovered:
    """The peer held a newer fully signed state than we did; we verified and adopted it."""

    channel_id: ChannelId
    old_version: Version
    new_version: Version


Action = (
    PersistSignature
    | PersistState
    | Send
    | UpdateApplied
    | UpdateRefused
    | PhaseChanged
    | DataLossRecovered
)

#: A pre-trade check a bot installs: ``policy(base, new, trades)`` returns a reason to refuse, or
#: None to allow. It is a plain synchronous function of its arguments, called inside one machine
#: step: it cannot await, so it cannot re-enter the node or wait on anything the node holds (the
#: node's asynchronous callbacks, the event stream, never run under the node's locks).
Policy = Callable[[State, State, Sequence[Trade]], str | None]


@dataclass(slots=True)
class _Pending:
    """A proposal we (the leader) signed that the follower has not answered yet."""

    state: State
    trades: tuple[Trade, ...]
    signature: bytes
    request_id: int | None
    ours: bool
    withdrawal: Withdrawal | None
    withdrawal_signature: bytes | None


@dataclass(frozen=True, slots=True)
class Config:
    """What this node accepts: its chain, its adjudicator, its limits."""

    chain_id: int
    adjudicator: Address
    limits: Limits = field(default_factory=Limits)
    max_pending: int = 64
    max_requests: int = 64


@dataclass(slots=True)
class ChannelMachine:
    """One channel seen from one participant. Build it with :meth:`initiate`, :meth:`accept_open`
    or :meth:`restore`."""

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
    #: Set while we are not in step with the peer: from a disconnect (or a restart) until the
    #: peer's reestablish arrives. No new proposal is made meanwhile: it could cross the peer's
    #: reestablish and leave the two sides on different versions.
    reestablishing: bool = False
    #: False after a restart until the peer's reestablish shows where it stands: we may be
    #: behind (a restored backup, a crash mid-update), so nothing is registered on our own.
    synced: bool = True
    domain: eip712.Domain = field(init=False)
    _pending: deque[_Pending] = field(default_factory=deque)
    _requests: dict[int, tuple[Trade, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.domain = eip712.Domain(self.params.chain_id, self.params.adjudicator)

    # construction -----------------------------------------------------------------------------
    @classmethod
    def initiate(
        cls, params: Params, signer: Signer, config: Config, deposits: tuple[int, int]
    ) -> tuple[ChannelMachine, list[Action]]:
        """Propose a new channel; returns the machine and the actions that send the proposal."""
        _check_domain(params, config)
        for amount in deposits:
            check_uint(amount, 128, "deposit")
        index = params.index_of(signer.address)
        v0 = opening_state(params)
        signature = sign_message(signer, eip712.Domain(params.chain_id, params.adjudicator), v0)
        sigs: list[bytes | None] = [None, None]
        sigs[index] = signature
        machine = cls(
            params=params,
            signer=signer,
            config=config,
            index=index,
            deposits=deposits,
            latest=SignedUpdate(SignedState(v0, (sigs[0], sigs[1])), ()),
            book=PositionBook(),
            phase=Phase.OPENING,
            highest_signed=0,
        )
        state_hash = eip712.state_struct_hash(v0)
        return machine, [
            PersistSignature(params.channel_id, Version(0), state_hash),
            Send(OpenProposal(params, deposits, signature)),
        ]

    @classmethod
    def accept_open(
        cls, proposal: OpenProposal, signer: Signer, config: Config
    ) -> tuple[ChannelMachine, list[Action]]:
        """Check a peer's channel proposal, countersign version 0, store it, then answer."""
        params = proposal.params
        _check_domain(params, config)
        for amount in proposal.deposits:
            check_uint(amount, 128, "deposit")
        try:
            index = params.index_of(signer.address)
        except InvalidField as exc:
            raise WrongDomain("the proposal does not name us as a participant") from exc
        v0 = opening_state(params)
        domain = eip712.Domain(params.chain_id, params.adjudicator)
        digest = eip712.state_digest(domain, v0)
        verify(digest, proposal.signature, params.participants[1 - index])
        ours = sign_message(signer, domain, v0, digest)
        sigs: list[bytes | None] = [None, None]
        sigs[index] = ours
        sigs[1 - index] = proposal.signature
        update = SignedUpdate(SignedState(v0, (sigs[0], sigs[1])), ())
        machine = cls(
            params=params,
            signer=signer,
            config=config,
            index=index,
            deposits=proposal.deposits,
            latest=update,
            book=PositionBook(),
            phase=Phase.FUNDING,
            highest_signed=0,
        )
        cid = params.channel_id
        return machine, [
            PersistState(cid, update),
            Send(OpenAccept(cid, ours)),
            PhaseChanged(cid, Phase.FUNDING),
        ]

    @classmethod
    def restore(
        cls,
        params: Params,
        signer: Signer,
        config: Config,
        deposits: tuple[int, int],
        latest: SignedUpdate,
        book: PositionBook,
        highest_signed: int,
        phase: Phase,
    ) -> ChannelMachine:
        """Rebuild a machine from what the store holds (after a restart)."""
        machine = cls(
            params=params,
            signer=signer,
            config=config,
            index=params.index_of(signer.address),
            deposits=deposits,
            latest=latest,
            book=book,
            phase=phase,
            highest_signed=max(highest_signed, latest.signed.state.version),
            reestablishing=True,
            synced=False,
        )
        if book.root != latest.signed.state.positions_root and len(book):
            raise InvalidField("the stored positions do not match the stored state")
        return machine

    # reading ----------------------------------------------------------------------------------
    @property
    def channel_id(self) -> ChannelId:
        return self.params.channel_id

    @property
    def is_leader(self) -> bool:
        return self.index == 0

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

    # the one entry point ----------------------------------------------------------------------
    def handle(self, event: Input, now: int) -> list[Action]:
        """Process one input at chain time ``now``; return the actions to perform in order."""
        if isinstance(event, Received):
            return self._received(event.message, Timestamp(now))
        if isinstance(event, RequestUpdate):
            return self._request(event, Timestamp(now))
        if isinstance(event, Reconnected):
            return self._reconnected()
        if isinstance(event, Disconnected):
            return self._disconnected()
        if isinstance(event, DepositsObserved):
            return self._deposits(event.totals)
        if isinstance(event, DisputeObserved):
            return self._dispute(event.version)
        if isinstance(event, DisputeCleared):
            return self._dispute_cleared()
        if isinstance(event, ChainStateSeen):
            return self._chain_state(event.signed)
        if isinstance(event, ConcludedObserved):
            return self._concluded()
        raise IllegalCall(f"unknown input {type(event).__name__}")

    # local requests ---------------------------------------------------------------------------
    def _request(self, req: RequestUpdate, now: Timestamp) -> list[Action]:
        if self.phase not in (Phase.FUNDING, Phase.OPEN):
            raise IllegalCall(f"cannot trade while the channel is {self.phase.value}")
        if self.reestablishing:
            raise IllegalCall("the channel is resynchronising with its peer")
        trades = tuple(req.trades)
        if self.is_leader:
            if len(self._pending) >= self.config.max_pending:
                raise TooManyPending(f"{len(self._pending)} proposals are already in flight")
            return self._propose(trades, now, request_id=req.request_id, ours=True)
        if len(self._requests) >= self.config.max_requests:
            raise TooManyPending(f"{len(self._requests)} requests are already waiting")
        if req.request_id in self._requests:
            raise IllegalCall(f"request id {req.request_id} is already waiting")
        # Check the trades now so our caller gets the rule's error at once; the leader checks
        # them again on top of whatever it has in flight.
        self._dry_run(self.state, trades, now)
        self._requests[req.request_id] = trades
        return [Send(UpdateRequest(self.channel_id, req.request_id, trades))]

    def _dry_run(self, base: State, trades: tuple[Trade, ...], now: Timestamp) -> State:
        self.book.begin()
        try:
            return apply_trades(
                base, self.book, trades, self._context(now), Version(base.version + 1)
            )
        finally:
            self.book.rollback_newest()

    def _propose(
        self, trades: tuple[Trade, ...], now: Timestamp, request_id: int | None, ours: bool
    ) -> list[Action]:
        base = self.head()
        version = Version(self.highest_signed + 1)
        self.book.begin()
        try:
            new = apply_trades(base, self.book, trades, self._context(now), version)
            self._check_policy(base, new, trades)
            digest = eip712.state_digest(self.domain, new)
            # A signer may fail (a remote one is unreachable): nothing has changed then.
            signature = sign_message(self.signer, self.domain, new, digest)
            withdrawal = withdrawal_of(new, trades)
            withdrawal_sig = (
                sign_message(self.signer, self.domain, withdrawal)
                if withdrawal is not None
                else None
            )
        except Exception:
            self.book.rollback_newest()
            raise
        self.highest_signed = version
        self._pending.append(
            _Pending(new, trades, signature, request_id, ours, withdrawal, withdrawal_sig)
        )
        return [
            PersistSignature(self.channel_id, version, eip712.state_struct_hash(new)),
            Send(
                Proposal(
                    self.channel_id,
                    base.version,
                    trades,
                    new,
                    signature,
                    None if ours else request_id,
                    withdrawal_sig,
                )
            ),
        ]

    def _check_policy(self, base: State, new: State, trades: Sequence[Trade]) -> None:
        if self.policy is None:
            return
        reason = self.policy(base, new, trades)
        if reason is not None:
            raise PolicyRefused(reason)

    def _context(self, now: Timestamp) -> Context:
        return Context(
            params=self.params,
            domain=self.domain,
            now=now,
            confirmed_deposits=self.confirmed_deposits,
            limits=self.config.limits,
        )

    # peer messages ----------------------------------------------------------------------------
    def _received(self, msg: Message, now: Timestamp) -> list[Action]:
        if isinstance(msg, OpenProposal):
            raise UnexpectedMessage("a channel proposal for a channel that already exists")
        if msg.channel_id != self.channel_id:
            raise UnknownChannel("the message is for another channel")
        if isinstance(msg, OpenAccept):
            return self._open_accepted(msg)
        if isinstance(msg, Proposal):
            return self._proposal(msg, now)
        if isinstance(msg, Accept):
            return self._accept(msg)
        if isinstance(msg, UpdateRequest):
            return self._peer_request(msg, now)
        if isinstance(msg, Reject):
            return self._reject(msg)
        if isinstance(msg, Reestablish):
            return self._reestablish(msg)
        raise UnexpectedMessage(f"unknown message {type(msg).__name__}")

    def _open_accepted(self, msg: OpenAccept) -> list[Action]:
        if self.phase is not Phase.OPENING:
            if self.state.version == 0 and self.latest.signed.signatures[1 - self.index] == (
                msg.signature
            ):
                return []  # a replay of the accept we already have
            raise UnexpectedMessage(f"an OpenAccept while the channel is {self.phase.value}")
        v0 = self.state
        verify(eip712.state_digest(self.domain, v0), msg.signature, self.peer_address)
        sigs = list(self.latest.signed.signatures)
        sigs[1 - self.index] = msg.signature
        self.latest = SignedUpdate(SignedState(v0, (sigs[0], sigs[1])), ())
        self.phase = Phase.FUNDING
        return [
            PersistState(self.channel_id, self.latest),
            PhaseChanged(self.channel_id, self.phase),
        ]

    def _proposal(self, msg: Proposal, now: Timestamp) -> list[Action]:
        if self.is_leader:
            raise UnexpectedMessage("only the leader proposes; we are the leader")
        if self.phase not in (Phase.FUNDING, Phase.OPEN):
            raise UnexpectedMessage(f"a proposal while the channel is {self.phase.value}")
        latest = self.state
        version = msg.state.version
        if version <= latest.version:
            if version == latest.version and msg.state == latest:
                # The leader did not get our answer: the same signature again, nothing new.
                return [Send(self._accept_for_latest())]
            raise StaleVersion(f"version {version} is not above our latest {latest.version}")
        if msg.state.channel_id != self.channel_id:
            raise WrongDomain("the proposed state names another channel")
        digest = eip712.state_digest(self.domain, msg.state)
        # A bad leader signature is the peer's fault and is never answered with a signature.
        verify(digest, msg.signature, self.peer_address)

        def refuse(rule: str, reason: str) -> list[Action]:
            actions: list[Action] = [
                Send(Reject(self.channel_id, version, msg.request_id, rule, reason))
            ]
            if msg.request_id is not None and msg.request_id in self._requests:
                del self._requests[msg.request_id]
                actions.append(
                    UpdateRefused(self.channel_id, msg.request_id, version, rule, reason)
                )
            return actions

        if msg.base_version != latest.version:
            return refuse(
                "VersionGap", f"built on {msg.base_version}, our latest is {latest.version}"
            )
        if version - latest.version > MAX_VERSION_SKIP:
            return refuse("VersionGap", f"version {version} skips too far past {latest.version}")
        if msg.request_id is not None and self._requests.get(msg.request_id) != msg.trades:
            return refuse("RequestMismatch", "the proposal does not carry the requested trades")
        self.book.begin()
        try:
            expected = apply_trades(latest, self.book, msg.trades, self._context(now), version)
            if expected != msg.state:
                raise StateMismatch("the proposed state is not what the trades produce")
            self._check_policy(latest, expected, msg.trades)
            withdrawal = withdrawal_of(expected, msg.trades)
            if withdrawal is not None:
                if msg.withdrawal_signature is None:
                    raise BadSignature("the withdrawal authorisation is not signed")
                verify(
                    eip712.withdrawal_digest(self.domain, withdrawal),
                    msg.withdrawal_signature,
                    self.peer_address,
                )
        except (RuleViolation, BadSignature) as exc:
            self.book.rollback_newest()
            return refuse(exc.rule, str(exc))
        withdrawal_sigs = None
        our_withdrawal_sig = None
        try:  # a signer may fail (a remote one is unreachable): nothing has changed then
            ours = sign_message(self.signer, self.domain, msg.state, digest)
            if withdrawal is not None:
                our_withdrawal_sig = sign_message(self.signer, self.domain, withdrawal)
        except Exception:
            self.book.rollback_newest()
            raise
        self.book.commit_oldest()
        if withdrawal is not None:
            assert msg.withdrawal_signature is not None and our_withdrawal_sig is not None
            withdrawal_sigs = _pair(self.index, our_withdrawal_sig, msg.withdrawal_signature)
        update = SignedUpdate(
            SignedState(msg.state, _pair(self.index, ours, msg.signature)),
            msg.trades,
            withdrawal,
            withdrawal_sigs,
        )
        self.latest = update
        self.highest_signed = max(self.highest_signed, version)
        request_id = msg.request_id
        if request_id is not None:
            self._requests.pop(request_id, None)
        actions: list[Action] = [
            PersistState(self.channel_id, update),
            Send(Accept(self.channel_id, version, ours, our_withdrawal_sig)),
            UpdateApplied(self.channel_id, update, request_id, ours=request_id is not None),
        ]
        actions.extend(self._phase_after_update())
        return actions

    def _accept_for_latest(self) -> Accept:
        ours = self.latest.signed.signatures[self.index]
        assert ours is not None
        wsig = (
            self.latest.withdrawal_signatures[self.index]
            if self.latest.withdrawal_signatures
            else None
        )
        return Accept(self.channel_id, self.state.version, ours, wsig)

    def _accept(self, msg: Accept) -> list[Action]:
        if not self.is_leader:
            raise UnexpectedMessage("only the leader receives accepts")
        if not self._pending:
            if msg.version <= self.state.version:
                if msg.signature == self.latest.signed.signatures[1 - self.index]:
                    return []  # replay of an accept we already used
                raise StaleVersion(f"an accept for old version {msg.version}")
            raise UnexpectedMessage(f"an accept for version {msg.version} we never proposed")
        pending = self._pending[0]
        if msg.version != pending.state.version:
            if msg.version <= self.state.version:
                if msg.signature == self.latest.signed.signatures[1 - self.index]:
                    return []
                raise StaleVersion(f"an accept for old version {msg.version}")
            raise UnexpectedMessage(
                f"an accept for version {msg.version}, expected {pending.state.version}"
            )
        digest = eip712.state_digest(self.domain, pending.state)
        verify(digest, msg.signature, self.peer_address)
        withdrawal_sigs = None
        if pending.withdrawal is not None:
            if msg.withdrawal_signature is None:
                raise BadSignature("the accept lacks the withdrawal countersignature")
            verify(
                eip712.withdrawal_digest(self.domain, pending.withdrawal),
                msg.withdrawal_signature,
                self.peer_address,
            )
            assert pending.withdrawal_signature is not None
            withdrawal_sigs = _pair(
                self.index, pending.withdrawal_signature, msg.withdrawal_signature
            )
        self._pending.popleft()
        self.book.commit_oldest()
        update = SignedUpdate(
            SignedState(pending.state, _pair(self.index, pending.signature, msg.signature)),
            pending.trades,
            pending.withdrawal,
            withdrawal_sigs,
        )
        self.latest = update
        actions: list[Action] = [
            PersistState(self.channel_id, update),
            UpdateApplied(self.channel_id, update, pending.request_id, pending.ours),
        ]
        actions.extend(self._phase_after_update())
        return actions

    def _peer_request(self, msg: UpdateRequest, now: Timestamp) -> list[Action]:
        if not self.is_leader:
            raise UnexpectedMessage("only the leader takes update requests")
        if self.phase not in (Phase.FUNDING, Phase.OPEN):
            return [
                Send(
                    Reject(
                        self.channel_id,
                        None,
                        msg.request_id,
                        "IllegalCall",
                        f"the channel is {self.phase.value}",
                    )
                )
            ]
        if len(self._pending) >= self.config.max_pending:
            return [
                Send(
                    Reject(
                        self.channel_id,
                        None,
                        msg.request_id,
                        TooManyPending.rule,
                        "too many proposals in flight",
                    )
                )
            ]
        try:
            return self._propose(tuple(msg.trades), now, request_id=msg.request_id, ours=False)
        except (RuleViolation, InvalidField) as exc:
            return [Send(Reject(self.channel_id, None, msg.request_id, exc.rule, str(exc)))]

    def _reject(self, msg: Reject) -> list[Action]:
        if msg.version is None:
            # A refusal of one of our requests (we are the follower).
            if self.is_leader or msg.request_id not in self._requests:
                raise UnexpectedMessage("a refusal of a request we did not make")
            del self._requests[msg.request_id]
            return [UpdateRefused(self.channel_id, msg.request_id, None, msg.rule, msg.reason)]
        if not self.is_leader:
            raise UnexpectedMessage("only the leader's proposals can be refused")
        versions = self.pending_versions
        if msg.version not in versions:
            if msg.version <= self.highest_signed:
                # A refusal of a proposal we already dropped (it was built on a refused one).
                return []
            raise StaleVersion(f"a refusal of version {msg.version}, which is not in flight")
        # The refused proposal and every proposal built on it are dropped (newest first).
        actions: list[Action] = []
        while self._pending and self._pending[-1].state.version >= msg.version:
            dropped = self._pending.pop()
            self.book.rollback_newest()
            rule = msg.rule if dropped.state.version == msg.version else "BaseRefused"
            actions.append(
                UpdateRefused(
                    self.channel_id,
                    dropped.request_id,
                    dropped.state.version,
                    rule,
                    msg.reason,
                    dropped.ours,
                )
            )
        actions.reverse()
        return actions

    # reconnection ----------------------------------------------------------------------------
    def _reconnected(self) -> list[Action]:
        # Requests sent on an earlier connection may have been lost with it (the new connection
        # can even replace the old one before its loss was noticed): refuse them now.
        lost = self._disconnected()
        if self.phase is Phase.OPENING:
            return lost
        signed = self.latest.signed
        if not signed.fully_signed:
            return lost
        # Proposals in flight may or may not have been countersigned; the peer's reestablish
        # tells. Until then the book shows the latest fully signed state only, and no new
        # proposal is made.
        while self.book.pending_change_sets:
            self.book.rollback_newest()
        self.reestablishing = True
        sigs = signed.signatures
        assert sigs[0] is not None and sigs[1] is not None
        snapshot = self.book.snapshot()
        return [
            *lost,
            Send(Reestablish(self.channel_id, signed.state, (sigs[0], sigs[1]), snapshot)),
        ]

    def _disconnected(self) -> list[Action]:
        if self.phase not in (Phase.OPENING, Phase.CLOSED):
            self.reestablishing = True
        actions: list[Action] = []
        for request_id in list(self._requests):
            actions.append(
                UpdateRefused(self.channel_id, request_id, None, "Disconnected", "connection lost")
            )
        self._requests.clear()
        return actions

    def _reestablish(self, msg: Reestablish) -> list[Action]:
        theirs = msg.state
        ours = self.state
        if theirs.channel_id != self.channel_id:
            raise WrongDomain("the reestablish names another channel")
        digest = eip712.state_digest(self.domain, theirs)
        verify(digest, msg.signatures[0], self.params.participants[0])
        verify(digest, msg.signatures[1], self.params.participants[1])
        if theirs.version == ours.version and theirs != ours:
            raise Equivocation(f"two different fully signed states of version {ours.version}")
        book = None
        if theirs.version > ours.version:
            book = PositionBook.from_snapshot(msg.book)
            if (book.root, len(book), book.locked) != (
                theirs.positions_root,
                theirs.position_count,
                theirs.locked,
            ):
                raise InvalidField("the positions sent do not match the state's commitment")
        # Everything checked: from here on the machine changes.
        self.reestablishing = False
        self.synced = True
        if self.phase is Phase.OPENING and theirs.version == 0 and theirs == ours:
            # Our channel proposal was countersigned but the OpenAccept was lost: the peer's
            # copy of version 0 carries both signatures. Adopt it and tell the peer our side.
            self.latest = SignedUpdate(SignedState(theirs, msg.signatures), ())
            self.phase = Phase.FUNDING
            return [
                PersistState(self.channel_id, self.latest),
                PhaseChanged(self.channel_id, self.phase),
                Send(Reestablish(self.channel_id, theirs, msg.signatures, self.book.snapshot())),
            ]
        if book is None:
            # The peer is at our version or behind (it adopts ours): nothing in flight completed.
            return self._drop_pending()
        actions: list[Action] = []
        completed = [p for p in self._pending if p.state.version == theirs.version]
        if completed and completed[0].state != theirs:  # pragma: no cover - needs two leader sigs
            raise Equivocation(f"the peer holds another state of version {theirs.version}")
        if completed:
            dropped = [p for p in self._pending if p.state.version > theirs.version]
        else:  # the peer's state is none of ours: nothing we have in flight is in it
            dropped = list(self._pending)
        # Proposals below the one the peer completed were countersigned too: the peer only signs
        # a proposal built on its latest, and each of ours is built on the one before.
        below = [p for p in self._pending if p.state.version < theirs.version] if completed else []
        self._pending.clear()
        while self.book.pending_change_sets:
            self.book.rollback_newest()
        self.book = book
        done = completed[0] if completed else None
        update = SignedUpdate(SignedState(theirs, msg.signatures), done.trades if done else ())
        old = ours.version
        self.latest = update
        self.highest_signed = max(self.highest_signed, theirs.version)
        actions.append(PersistState(self.channel_id, update, msg.book))
        for p in below:
            actions.append(UpdateApplied(self.channel_id, update, p.request_id, p.ours))
        if done is not None:
            actions.append(UpdateApplied(self.channel_id, update, done.request_id, done.ours))
        else:
            actions.append(DataLossRecovered(self.channel_id, Version(old), theirs.version))
        for p in dropped:
            actions.append(self._abandoned(p))
        actions.extend(self._phase_after_update())
        return actions

    def _abandoned(self, p: _Pending) -> UpdateRefused:
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

    # chain facts ------------------------------------------------------------------------------
    def _deposits(self, totals: tuple[int, int]) -> list[Action]:
        for amount in totals:
            check_uint(amount, 256, "deposit total")
        # Confirmed deposits only grow; a smaller figure (a reorg) is applied as is, so nothing
        # unconfirmed is credited.
        self.confirmed_deposits = (totals[0], totals[1])
        return []

    def credit_trades(self) -> tuple[Trade, ...]:
        """Trades that credit every confirmed, not yet credited deposit."""
        out: list[Trade] = []
        for who in (0, 1):
            missing = self.confirmed_deposits[who] - self.head().deposited[who]
            if missing > 0:
                out.append(CreditDeposit(who, missing))  # type: ignore[arg-type]
        return tuple(out)

    def _dispute(self, version: Version) -> list[Action]:
        if self.phase in (Phase.DISPUTED, Phase.CLOSED):
            return []
        self.phase = Phase.DISPUTED
        # Nothing in flight can complete any more: the chain decides from here.
        actions: list[Action] = self._drop_pending()
        for request_id in list(self._requests):
            actions.append(
                UpdateRefused(self.channel_id, request_id, None, "Disputed", "a dispute started")
            )
        self._requests.clear()
        actions.append(PhaseChanged(self.channel_id, self.phase))
        return actions

    def _dispute_cleared(self) -> list[Action]:
        if self.phase is not Phase.DISPUTED:
            return []
        state = self.state
        funded = all(state.deposited[i] >= self.deposits[i] for i in (0, 1))
        self.phase = Phase.FINAL if state.is_final else (Phase.OPEN if funded else Phase.FUNDING)
        return [PhaseChanged(self.channel_id, self.phase)]

    def _concluded(self) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        self.phase = Phase.CLOSED
        actions: list[Action] = self._drop_pending()
        actions.append(PhaseChanged(self.channel_id, self.phase))
        return actions

    def _chain_state(self, signed: SignedState) -> list[Action]:
        state = signed.state
        if state.channel_id != self.channel_id:
            raise WrongDomain("the state names another channel")
        sig0, sig1 = signed.signatures
        if sig0 is None or sig1 is None:
            raise BadSignature("a state from the chain must carry both signatures")
        digest = eip712.state_digest(self.domain, state)
        verify(digest, sig0, self.params.participants[0])
        verify(digest, sig1, self.params.participants[1])
        ours = self.state
        if state.version == ours.version and state != ours:
            raise Equivocation(f"two different fully signed states of version {ours.version}")
        # The chain has spoken about this channel: we know where we stand against it.
        self.synced = True
        if state.version <= ours.version:
            return []
        if state.position_count and state.positions_root != self.book.root:
            # We cannot rebuild positions we never saw; the peer's reestablish can. Adopting the
            # balances alone would leave the store inconsistent, so only the alarm is raised.
            return [DataLossRecovered(self.channel_id, ours.version, state.version)]
        completed = [p for p in self._pending if p.state.version == state.version]
        self._pending.clear()
        while self.book.pending_change_sets:
            self.book.rollback_newest()
        if not state.position_count:
            self.book = PositionBook()
        update = SignedUpdate(signed, completed[0].trades if completed else ())
        old = ours.version
        self.latest = update
        self.highest_signed = max(self.highest_signed, state.version)
        note: Action = (
            UpdateApplied(self.channel_id, update, completed[0].request_id, completed[0].ours)
            if completed
            else DataLossRecovered(self.channel_id, old, state.version)
        )
        return [PersistState(self.channel_id, update, self.book.snapshot()), note]

    def _phase_after_update(self) -> list[Action]:
        state = self.state
        new_phase = self.phase
        if state.is_final:
            new_phase = Phase.FINAL
        elif self.phase is Phase.FUNDING and all(
            state.deposited[i] >= self.deposits[i] for i in (0, 1)
        ):
            new_phase = Phase.OPEN
        if new_phase is self.phase:
            return []
        self.phase = new_phase
        return [PhaseChanged(self.channel_id, new_phase)]


class StateMismatch(RuleViolation):
    """The proposed state is not the result of applying its trades to the agreed base."""

    rule = "StateMismatch"


class PolicyRefused(RuleViolation):
    """A pre-trade risk check installed by the bot refused the update."""

    rule = "PolicyRefused"


def _pair(index: int, ours: bytes, theirs: bytes) -> tuple[bytes, bytes]:
    return (ours, theirs) if index == 0 else (theirs, ours)


def _check_domain(params: Params, config: Config) -> None:
    if params.chain_id != config.chain_id:
        raise WrongDomain(
            f"the channel is for chain {params.chain_id}, we are on {config.chain_id}"
        )
    if params.adjudicator != config.adjudicator:
        raise WrongDomain("the channel names another adjudicator than ours")


__all__ = [
    "Action",
    "ChannelMachine",
    "Config",
    "Input",
    "Phase",
]
