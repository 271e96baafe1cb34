"""What the chain tells the machine: confirmed deposits, disputes, a state carried by a
transaction, the channel's conclusion. The chain's word is final; the machine follows it.
"""

from __future__ import annotations

from channels.core import eip712
from channels.core.errors import BadSignature, Equivocation, StateMismatch, WrongDomain
from channels.core.model import SignedState, SignedUpdate, Version, check_uint
from channels.core.options import CreditDeposit, Trade
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.protocol.base import MachineData
from channels.core.protocol.events import (
    Action,
    DataLossRecovered,
    PersistState,
    UpdateApplied,
)
from channels.core.protocol.phases import Step, allows
from channels.core.signing import verify


class ChainSteps(MachineData):
    __slots__ = ()

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
        if not allows(self.phase, Step.DISPUTE):
            return []
        # Nothing in flight can complete any more: the chain decides from here.
        actions: list[Action] = self._drop_pending()
        actions.extend(self._refuse_requests("Disputed", "a dispute started"))
        actions.extend(self._enter(Step.DISPUTE))
        return actions

    def _dispute_cleared(self) -> list[Action]:
        state = self.state
        if state.is_final:
            step = Step.RESUME_FINAL
        elif self._funded(state):
            step = Step.RESUME_OPEN
        else:
            step = Step.RESUME_FUNDING
        if not allows(self.phase, step):
            return []
        return self._enter(step)

    def _concluded(self) -> list[Action]:
        if not allows(self.phase, Step.CONCLUDED):
            return []
        actions: list[Action] = self._drop_pending()
        actions.extend(self._enter(Step.CONCLUDED))
        return actions


    def _chain_state(self, signed: SignedState, book: BookSnapshot | None = None) -> list[Action]:
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
        unknown_book = state.position_count and state.positions_root != self.book.root
        given = None
        if state.version > ours.version and unknown_book and book is not None:
            given = PositionBook.from_snapshot(book)
            if (given.root, len(given), given.locked) != (
                state.positions_root,
                state.position_count,
                state.locked,
            ):
                raise StateMismatch("the positions given do not match the state's commitment")
        # The chain has spoken about this channel: we know where we stand against it.
        self.synced = True
        if state.version <= ours.version:
            return []
        if unknown_book and given is None:
            # We cannot rebuild positions we never saw; the peer's reestablish (or a tower that
            # kept them) can. Adopting the balances alone would leave the store inconsistent, so
            # only the alarm is raised.
            return [DataLossRecovered(self.channel_id, ours.version, state.version)]
        completed = [p for p in self._pending if p.state.version == state.version]
        self._pending.clear()
        while self.book.pending_change_sets:
            self.book.rollback_newest()
        if given is not None:
            self.book = given
        elif not state.position_count:
            self.book = PositionBook()
        update = SignedUpdate(signed, completed[0].trades if completed else ())
        old = ours.version
        self._advance(update)
        self.highest_signed = max(self.highest_signed, state.version)
        note: Action = (
            UpdateApplied(self.channel_id, update, completed[0].request_id, completed[0].ours)
            if completed
            else DataLossRecovered(self.channel_id, old, state.version)
        )
        return [PersistState(self.channel_id, update, self.book.snapshot()), note]
