"""The follower's steps: ask the leader for an update, countersign the leader's proposals,
take the leader's refusal of a request.

The follower signs only a proposal above its latest fully signed state and built on it; its
signature completes the state, which it stores (``PersistState``) before it answers.
"""

from __future__ import annotations

from channels.core import eip712
from channels.core.errors import (
    BadSignature,
    IllegalCall,
    RuleViolation,
    StaleVersion,
    StateMismatch,
    TooManyPending,
    UnexpectedMessage,
    VersionGap,
    WrongDomain,
)
from channels.core.messages import Accept, Proposal, Reject, UpdateRequest
from channels.core.model import SignedState, SignedUpdate, Timestamp
from channels.core.options import Trade, apply_trades, withdrawal_of
from channels.core.protocol.base import MAX_VERSION_SKIP, MachineData, pair
from channels.core.protocol.events import (
    Action,
    PersistState,
    Send,
    UpdateApplied,
    UpdateRefused,
)
from channels.core.protocol.phases import Step, expect
from channels.core.signing import sign_message, verify


class FollowerSteps(MachineData):
    __slots__ = ()

    def _ask(self, trades: tuple[Trade, ...], request_id: int, now: Timestamp) -> list[Action]:
        if len(self._requests) >= self.config.max_requests:
            raise TooManyPending(f"{len(self._requests)} requests are already waiting")
        if request_id in self._requests:
            raise IllegalCall(f"request id {request_id} is already waiting")
        # Check the trades now so our caller gets the rule's error at once; the leader checks
        # them again on top of whatever it has in flight.
        self._dry_run(self.state, trades, now, gate=True)
        self._requests[request_id] = trades
        return [Send(UpdateRequest(self.channel_id, request_id, trades))]

    def _proposal(self, msg: Proposal, now: Timestamp) -> list[Action]:
        expect(self.phase, Step.TRADE, ours=False, what="a proposal")
        latest = self.state
        version = msg.state.version
        if version <= latest.version:
            if version == latest.version and msg.state == latest:
                # The leader did not get our answer: the same signature again, nothing new.
                return [Send(self._accept_for_latest())]
            raise StaleVersion(f"version {version} is not above our latest {latest.version}")
        if msg.state.channel_id != self.channel_id:
            raise WrongDomain("the proposed state names another channel")
        # One struct hash serves the digest checked and signed and the store's records.
        struct_hash = eip712.state_struct_hash(msg.state)
        digest = eip712.digest(self.domain, struct_hash)
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
                VersionGap.rule, f"built on {msg.base_version}, our latest is {latest.version}"
            )
        if version - latest.version > MAX_VERSION_SKIP:
            return refuse(VersionGap.rule, f"version {version} skips too far past {latest.version}")
        if msg.request_id is not None and self._requests.get(msg.request_id) != msg.trades:
            return refuse("RequestMismatch", "the proposal does not carry the requested trades")
        self.book.begin()
        try:
            expected = apply_trades(latest, self.book, msg.trades, self._context(now), version)
            if expected != msg.state:
                raise StateMismatch("the proposed state is not what the trades produce")
            self._check_policy(
                latest, expected, msg.trades, ours=msg.request_id is not None, now=now
            )
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
        if self.reestablishing:
            # Our Reestablish has left naming ``latest``: a signature now would complete a state
            # the leader, reading that Reestablish, abandons (the two sides would diverge). A
            # valid proposal can only get here from before the reconnection.
            self.book.rollback_newest()
            return refuse("Disconnected", "the proposal crossed a reconnection")
        withdrawal_sigs = None
        our_withdrawal_sig = None
        try:  # a signer may fail (a remote one is unreachable): nothing has changed then
            ours = sign_message(self.signer, self.domain, msg.state, digest)
            if withdrawal is not None:
                our_withdrawal_sig = sign_message(self.signer, self.domain, withdrawal)
        except Exception:
            self.book.rollback_newest()
            raise
        changes = self.book.commit_oldest()
        if withdrawal is not None:
            assert msg.withdrawal_signature is not None and our_withdrawal_sig is not None
            withdrawal_sigs = pair(self.index, our_withdrawal_sig, msg.withdrawal_signature)
        update = SignedUpdate(
            SignedState(msg.state, pair(self.index, ours, msg.signature)),
            msg.trades,
            withdrawal,
            withdrawal_sigs,
        )
        self._advance(update)
        self.highest_signed = max(self.highest_signed, version)
        request_id = msg.request_id
        if request_id is not None:
            self._requests.pop(request_id, None)
        actions: list[Action] = [
            PersistState(self.channel_id, update, changes=changes, state_hash=struct_hash),
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

    def _request_refused(self, msg: Reject) -> list[Action]:
        if msg.request_id is None or msg.request_id not in self._requests:
            raise UnexpectedMessage("a refusal of a request we did not make")
        del self._requests[msg.request_id]
        return [UpdateRefused(self.channel_id, msg.request_id, None, msg.rule, msg.reason)]
