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

from collections.abc import Sequence

from channels.core import eip712
from channels.core.errors import IllegalCall, InvalidField, UnexpectedMessage, WrongDomain
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
    Params,
    SignedState,
    SignedUpdate,
    Timestamp,
    Version,
    check_channel_deposits,
    check_uint,
)
from channels.core.options import opening_state
from channels.core.positions import PositionBook
from channels.core.protocol.base import Config, check_domain
from channels.core.protocol.chain import ChainSteps
from channels.core.protocol.events import (
    Action,
    ChainStateSeen,
    ConcludedObserved,
    DepositsObserved,
    Disconnected,
    DisputeCleared,
    DisputeObserved,
    Input,
    PersistSignature,
    PersistState,
    PhaseChanged,
    Received,
    Reconnected,
    RequestUpdate,
    Send,
)
from channels.core.protocol.follower import FollowerSteps
from channels.core.protocol.leader import LeaderSteps
from channels.core.protocol.phases import Phase, Step, allows, expect
from channels.core.protocol.resync import ResyncSteps
from channels.core.protocol.roles import peer_step
from channels.core.signing import Signer, sign_message, verify


class ChannelMachine(LeaderSteps, FollowerSteps, ResyncSteps, ChainSteps):
    """One channel seen from one participant. Build it with :meth:`initiate`, :meth:`accept_open`
    or :meth:`restore`; feed it with :meth:`handle`."""

    __slots__ = ()

    # construction -----------------------------------------------------------------------------
    @classmethod
    def initiate(
        cls, params: Params, signer: Signer, config: Config, deposits: tuple[int, int]
    ) -> tuple[ChannelMachine, list[Action]]:
        """Propose a new channel; returns the machine and the actions that send the proposal."""
        check_domain(params, config)
        for amount in deposits:
            check_uint(amount, 128, "deposit")
        check_channel_deposits(deposits)  # gas (issue 16): the adjudicator's cap
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
        check_domain(params, config)
        for amount in proposal.deposits:
            check_uint(amount, 128, "deposit")
        check_channel_deposits(proposal.deposits)  # gas (issue 16): the adjudicator's cap
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
        recent: Sequence[SignedUpdate] = (),
    ) -> ChannelMachine:
        """Rebuild a machine from what the store holds (after a restart); ``recent`` is the
        newest stored updates, oldest first, ending with ``latest``."""
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
        if recent and recent[-1] == latest:
            machine.recent.clear()
            machine.recent.extend(recent)
        return machine

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
            return self._chain_state(event.signed, event.book)
        if isinstance(event, ConcludedObserved):
            return self._concluded()
        raise IllegalCall(f"unknown input {type(event).__name__}")

    def _request(self, req: RequestUpdate, now: Timestamp) -> list[Action]:
        expect(self.phase, Step.TRADE, ours=True, what="cannot trade")
        if self.reestablishing:
            raise IllegalCall("the channel is resynchronising with its peer")
        trades = tuple(req.trades)
        if self.role.proposes:
            return self._propose_for_caller(trades, req.request_id, now)
        return self._ask(trades, req.request_id, now)

    def _received(self, msg: Message, now: Timestamp) -> list[Action]:
        if isinstance(msg, OpenProposal):
            raise UnexpectedMessage("a channel proposal for a channel that already exists")
        if msg.channel_id != self.channel_id:
            raise WrongDomain("the message is for another channel")
        step = peer_step(msg)
        if step is not None and step not in self.role.receives:
            raise UnexpectedMessage(f"{step.value} is not for the {self.role.name}")
        if isinstance(msg, OpenAccept):
            return self._open_accepted(msg)
        if isinstance(msg, Proposal):
            return self._proposal(msg, now)
        if isinstance(msg, Accept):
            return self._accept(msg)
        if isinstance(msg, UpdateRequest):
            return self._peer_request(msg, now)
        if isinstance(msg, Reject):
            if msg.version is None:
                return self._request_refused(msg)
            return self._proposal_refused(msg)
        if isinstance(msg, Reestablish):
            return self._reestablish(msg)
        raise UnexpectedMessage(f"unknown message {type(msg).__name__}")

    def _open_accepted(self, msg: OpenAccept) -> list[Action]:
        if not allows(self.phase, Step.OPEN_ACCEPTED):
            if self.state.version == 0 and self.latest.signed.signatures[1 - self.index] == (
                msg.signature
            ):
                return []  # a replay of the accept we already have
            raise UnexpectedMessage(f"an OpenAccept while the channel is {self.phase.value}")
        v0 = self.state
        verify(eip712.state_digest(self.domain, v0), msg.signature, self.peer_address)
        sigs = list(self.latest.signed.signatures)
        sigs[1 - self.index] = msg.signature
        self._advance(SignedUpdate(SignedState(v0, (sigs[0], sigs[1])), ()))
        return [PersistState(self.channel_id, self.latest), *self._enter(Step.OPEN_ACCEPTED)]


__all__ = ["ChannelMachine"]
