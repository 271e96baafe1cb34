"""Getting back in step with the peer after a lost connection or a restart: each side sends its
latest fully signed state with its positions (``Reestablish``); the side that is behind verifies
and adopts the newer one, and proposals in flight are settled by what the peer holds.
"""

from __future__ import annotations

from channels.core import eip712
from channels.core.errors import Equivocation, StateMismatch, WrongDomain
from channels.core.messages import Reestablish
from channels.core.model import SignedState, SignedUpdate, Version
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
        sigs = signed.signatures
        assert sigs[0] is not None and sigs[1] is not None
        snapshot = self.book.snapshot()
        return [
            *lost,
            Send(Reestablish(self.channel_id, signed.state, (sigs[0], sigs[1]), snapshot)),
        ]

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
        if theirs.version > ours.version:
            book = PositionBook.from_snapshot(msg.book)
            if (book.root, len(book), book.locked) != (
                theirs.positions_root,
                theirs.position_count,
                theirs.locked,
            ):
                raise StateMismatch("the positions sent do not match the state's commitment")
        # Everything checked: from here on the machine changes.
        self.reestablishing = False
        self.synced = True
        if allows(self.phase, Step.OPEN_ACCEPTED) and theirs.version == 0 and theirs == ours:
            # Our channel proposal was countersigned but the OpenAccept was lost: the peer's
            # copy of version 0 carries both signatures. Adopt it and tell the peer our side.
            self.latest = SignedUpdate(SignedState(theirs, msg.signatures), ())
            return [
                PersistState(self.channel_id, self.latest),
                *self._enter(Step.OPEN_ACCEPTED),
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
