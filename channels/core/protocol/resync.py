"""Getting back in step with the peer after a lost connection or a restart: each side sends its
latest fully signed state with its positions and its newest updates (``Reestablish``); the side
that is behind verifies and adopts the newer one, and proposals in flight are settled by what the
peer holds.

The states caught up on are stored with their trades when the peer's recent updates reach back
to our latest: each is checked (both signatures, its withdrawal's too) and its trades replayed on
the one before must give it exactly, so the audit trail explains every balance change. When the
gap is wider than what the message carries, the peer's latest is adopted alone (its positions
checked against its commitment) and the trail shows the gap.
"""

from __future__ import annotations

from channels.core import eip712, wire
from channels.core.errors import Equivocation, RuleViolation, StateMismatch, WrongDomain
from channels.core.messages import Reestablish
from channels.core.model import SignedState, SignedUpdate, State, Timestamp, Version
from channels.core.options import Context, apply_trades, withdrawal_of
from channels.core.positions import PositionBook
from channels.core.protocol.base import MachineData
from channels.core.protocol.events import (
    Action,
    DataLossRecovered,
    PersistState,
    Send,
    UpdateApplied,
)
from channels.core.protocol.phases import Step, allows
from channels.core.signing import verify


class ResyncSteps(MachineData):
    __slots__ = ()

    def _reconnected(self) -> list[Action]:
        # Requests sent on an earlier connection may have been lost with it (the new connection
        # can even replace the old one before its loss was noticed): refuse them now.
        lost = self._disconnected()
        if not allows(self.phase, Step.RESYNC):
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
        return [*lost, Send(self._reestablish_message(signed))]

    def _reestablish_message(self, signed: SignedState) -> Reestablish:
        """Our Reestablish: ``signed``, the book, and as many recent updates as the wire takes."""
        sigs = signed.signatures
        assert sigs[0] is not None and sigs[1] is not None
        bare = Reestablish(self.channel_id, signed.state, (sigs[0], sigs[1]), self.book.snapshot())
        recent = list(self.recent)
        if not recent or recent[-1].signed != signed:
            return bare
        room = wire.MAX_MESSAGE - len(wire.encode_message(bare))
        kept: list[SignedUpdate] = []
        for update in reversed(recent):  # newest first; a record's envelope outweighs the array's
            room -= len(wire.encode_update(update))
            if room < 0:
                break
            kept.append(update)
        kept.reverse()
        return Reestablish(bare.channel_id, bare.state, bare.signatures, bare.book, tuple(kept))

    def _disconnected(self) -> list[Action]:
        if allows(self.phase, Step.PEER_LOST):
            self.reestablishing = True
        return self._refuse_requests("Disconnected", "connection lost")


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
        caught_up: list[SignedUpdate] = []
        if theirs.version > ours.version:
            book = PositionBook.from_snapshot(msg.book)
            if (book.root, len(book), book.locked) != (
                theirs.positions_root,
                theirs.position_count,
                theirs.locked,
            ):
                raise StateMismatch("the positions sent do not match the state's commitment")
            caught_up = self._replay(ours, msg)
        # Everything checked: from here on the machine changes.
        self.reestablishing = False
        self.synced = True
        if allows(self.phase, Step.OPEN_ACCEPTED) and theirs.version == 0 and theirs == ours:
            # Our channel proposal was countersigned but the OpenAccept was lost: the peer's
            # copy of version 0 carries both signatures. Adopt it and tell the peer our side.
            self._advance(SignedUpdate(SignedState(theirs, msg.signatures), ()))
            return [
                PersistState(self.channel_id, self.latest),
                *self._enter(Step.OPEN_ACCEPTED),
                Send(self._reestablish_message(self.latest.signed)),
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
        if caught_up:
            update = caught_up[-1]
        old = ours.version
        for earlier in caught_up[:-1]:
            actions.append(PersistState(self.channel_id, earlier))
        self._advance(update)
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

    def _replay(self, ours: State, msg: Reestablish) -> list[SignedUpdate]:
        """The peer's updates after ``ours``, each checked and replayed on the one before; empty
        when they do not reach back to ``ours`` (the gap is wider than the message carries).

        Raises (Remote) when an update is not signed by both, names a wrong withdrawal, or the
        last is not the state the peer reestablished. The replayed states commit to their
        positions, so the last one's equal to the reestablished state checks the book sent too.
        """
        newer = [u for u in msg.recent if u.signed.state.version > ours.version]
        if not newer:
            return []
        if newer[-1].signed != SignedState(msg.state, msg.signatures):
            raise StateMismatch("the recent updates do not end at the reestablished state")
        for update in newer:
            self._check_signed(update)
        replayed = PositionBook.from_snapshot(self.book.snapshot())
        ctx = Context(self.params, self.domain, Timestamp(0), (0, 0), replay=True)
        state = ours
        for update in newer:
            want = update.signed.state
            replayed.begin()
            try:
                got = apply_trades(state, replayed, update.trades, ctx, want.version)
            except RuleViolation:
                return []  # not built on ``state``: a gap, or a state adopted without its trades
            replayed.commit_oldest()
            if got != want:
                return []
            state = want
        return newer

    def _check_signed(self, update: SignedUpdate) -> None:
        state = update.signed.state
        if state.channel_id != self.channel_id:
            raise WrongDomain("a recent update names another channel")
        digest = eip712.state_digest(self.domain, state)
        for who, sig in enumerate(update.signed.signatures):
            if sig is None:
                raise StateMismatch(f"recent update v{state.version} is not fully signed")
            verify(digest, sig, self.params.participants[who])
        withdrawal = withdrawal_of(state, update.trades)
        if withdrawal != update.withdrawal:
            raise StateMismatch(f"recent update v{state.version} names another withdrawal")
        if withdrawal is not None:
            sigs = update.withdrawal_signatures
            if sigs is None:
                raise StateMismatch(f"recent update v{state.version}: withdrawal not signed")
            wdigest = eip712.withdrawal_digest(self.domain, withdrawal)
            for who, sig in enumerate(sigs):
                verify(wdigest, sig, self.params.participants[who])
