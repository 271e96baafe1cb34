"""The leader's steps: propose (for our caller or for the follower's request), take the
follower's accept, drop what the follower refused.

The leader signs version ``n`` only if ``n`` is above every version it ever signed, and records
that (``PersistSignature``) before the signature leaves. A refused proposal burns its version.
"""

from __future__ import annotations

from channels.core import eip712
from channels.core.errors import (
    BadSignature,
    InvalidField,
    RuleViolation,
    StaleVersion,
    TooManyPending,
    UnexpectedMessage,
)
from channels.core.messages import Accept, Proposal, Reject, UpdateRequest
from channels.core.model import SignedState, SignedUpdate, Timestamp, Version
from channels.core.options import Trade, apply_trades, withdrawal_of
from channels.core.protocol.base import MachineData, Pending, pair
from channels.core.protocol.events import (
    Action,
    PersistSignature,
    PersistState,
    Send,
    UpdateApplied,
    UpdateRefused,
)
from channels.core.protocol.phases import Step, allows
from channels.core.signing import sign_message, verify


class LeaderSteps(MachineData):
    __slots__ = ()

    def _propose(
        self, trades: tuple[Trade, ...], now: Timestamp, request_id: int | None, ours: bool
    ) -> list[Action]:
        base = self.head()
        version = Version(self.highest_signed + 1)
        self.book.begin()
        try:
            new = apply_trades(base, self.book, trades, self._context(now), version)
            self._check_policy(base, new, trades, ours=ours, now=now)
            # One struct hash serves the digest we sign and the signature record.
            struct_hash = eip712.state_struct_hash(new)
            digest = eip712.digest(self.domain, struct_hash)
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
            Pending(
                new,
                trades,
                signature,
                digest,
                request_id,
                ours,
                withdrawal,
                withdrawal_sig,
                struct_hash,
            )
        )
        return [
            PersistSignature(self.channel_id, version, struct_hash),
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

    def _peer_request(self, msg: UpdateRequest, now: Timestamp) -> list[Action]:
        if self.reestablishing:
            # The request crossed a reconnection: the follower sends none while it
            # resynchronises, and on a new link its reestablish comes first, so this one left on
            # the old link, and the follower refused it to its caller when it reconnected
            # (``_refuse_requests``). A proposal for it could only be refused: a burnt version
            # and a wasted round. Nothing is signed and nothing answered.
            return []
        if not allows(self.phase, Step.TRADE):
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

    def _accept(self, msg: Accept) -> list[Action]:
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
        verify(pending.digest, msg.signature, self.peer_address)
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
            withdrawal_sigs = pair(
                self.index, pending.withdrawal_signature, msg.withdrawal_signature
            )
        self._pending.popleft()
        changes = self.book.commit_oldest()
        update = SignedUpdate(
            SignedState(pending.state, pair(self.index, pending.signature, msg.signature)),
            pending.trades,
            pending.withdrawal,
            withdrawal_sigs,
        )
        self._advance(update)
        actions: list[Action] = [
            PersistState(self.channel_id, update, changes=changes, state_hash=pending.state_hash),
            UpdateApplied(self.channel_id, update, pending.request_id, pending.ours),
        ]
        actions.extend(self._phase_after_update())
        return actions

    def _proposal_refused(self, msg: Reject) -> list[Action]:
        assert msg.version is not None
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

    def _propose_for_caller(
        self, trades: tuple[Trade, ...], request_id: int, now: Timestamp
    ) -> list[Action]:
        if len(self._pending) >= self.config.max_pending:
            raise TooManyPending(f"{len(self._pending)} proposals are already in flight")
        return self._propose(trades, now, request_id=request_id, ours=True)
