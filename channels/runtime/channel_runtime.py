"""The runtime of one channel: its machine, the lock that orders its steps, the callers waiting
on it, and the calls that change it (each a machine step whose actions go to the executor)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from channels.core.errors import ChannelError, IllegalCall
from channels.core.funding import net_floor
from channels.core.messages import Message, Proposal, Reestablish, Reject, UpdateRequest
from channels.core.model import Address, Amount, ChannelId, SignedState, State
from channels.core.node_events import (
    Alarm,
    Finality,
    FinalityChanged,
    PhaseChangedEvent,
    StateUpdated,
    UpdateRefusedEvent,
)
from channels.core.options import DebitWithdrawal, Finalize, Trade
from channels.core.protocol import (
    MAX_VERSION_SKIP,
    Action,
    ChannelMachine,
    ConcludedObserved,
    DataLossRecovered,
    DepositsObserved,
    Input,
    PersistState,
    Phase,
    PhaseChanged,
    Received,
    RequestUpdate,
    Send,
    UpdateApplied,
    UpdateRefused,
)
from channels.core.protocol.roles import FOLLOWER, LEADER
from channels.runtime.coalescer import Coalescer, Waiter
from channels.runtime.context import RuntimeContext
from channels.runtime.deposits import (
    DEPOSIT_INTENT,
    TOP_UP_INTENT,
    PeerDepositFeeRefused,
    TopUpIntent,
    check_fee,
    deposit_in_flight,
    deposit_measured,
    peer_fee_refused,
    top_up_in_flight,
)
from channels.runtime.errors import TowerBehind, UpdateRefusedError
from channels.signers.calling import call_signer
from channels.store import IntentStatus
from channels.testing.crash import crash_point
from channels.transport.fastlock import FastLock

log = logging.getLogger("channels.runtime.channel")


@dataclass(frozen=True, slots=True)
class RoleDuties:
    """What the runtime does differently for each role (what the protocol lets each role do is
    the core's :mod:`channels.core.protocol.roles`)."""

    #: Our own updates in flight on one channel before new calls are queued and coalesced.
    in_flight: int
    #: Credits confirmed deposits in a new state unasked (the proposer of new versions does).
    credits_deposits: bool


#: The leader keeps a few proposals pipelined (a lost link then completes several at once, see
#: tests/node/test_reconnect.py); the follower's requests each cost the leader a round.
DUTIES = {
    LEADER: RoleDuties(in_flight=4, credits_deposits=True),
    FOLLOWER: RoleDuties(in_flight=1, credits_deposits=False),
}

_LIVE = (Phase.FUNDING, Phase.OPEN)


class ChannelRuntime:
    def __init__(
        self, ctx: RuntimeContext, machine: ChannelMachine, endpoint: tuple[str, int] | None
    ) -> None:
        self._ctx = ctx
        self._machine = machine
        self._duties = DUTIES[machine.role]
        #: Where to redial the peer (None: the peer dials us).
        self.endpoint = endpoint
        self._lock = FastLock()
        self._waiters: dict[int, Waiter] = {}
        self._starting = 0
        self._changed = trio.Event()
        #: The version of the latest state known durable in our store (the machine's own latest
        #: may be a step ahead, until its PersistState is committed).
        self.stored_version = machine.state.version
        self._crediting = False
        #: Set once the peer's credited deposit shows a fee this desk did not accept.
        self.peer_fee_refused: PeerDepositFeeRefused | None = None
        settings = ctx.settings
        self._coalescer = Coalescer(
            self, ctx.nursery, settings.update_timeout, settings.limits.max_trades_per_update
        )
        self.created_at = trio.current_time()
        self.last_heard = trio.current_time()

    # reading ----------------------------------------------------------------------------------
    @property
    def machine(self) -> ChannelMachine:
        """The channel's state machine, for reading (every change goes through :meth:`apply`)."""
        return self._machine

    @property
    def channel_id(self) -> ChannelId:
        return self._machine.channel_id

    @property
    def peer_address(self) -> Address:
        return self._machine.peer_address

    @property
    def in_flight(self) -> int:
        """Our updates proposed or requested and not yet applied or refused."""
        return len(self._waiters) + self._starting

    def paused(self) -> bool:
        return self._machine.reestablishing and self._machine.phase in _LIVE

    def has_room(self) -> bool:
        return self.in_flight < self._duties.in_flight

    # waking callers ---------------------------------------------------------------------------
    def notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    async def wait_phase(self, phases: Sequence[Phase]) -> Phase:
        while self._machine.phase not in phases:
            await self._changed.wait()
        return self._machine.phase

    async def wait_open(self) -> None:
        """Until the channel is OPEN; raises :class:`PeerDepositFeeRefused` as soon as the peer's
        deposit is credited short of what this desk accepts (it would never open)."""
        while self._machine.phase is not Phase.OPEN:
            if self.peer_fee_refused is not None:
                raise self.peer_fee_refused
            await self._changed.wait()

    async def wait_version(self, version: int) -> State:
        while self.stored_version < version:
            await self._changed.wait()
        return self._machine.state

    # machine steps ----------------------------------------------------------------------------
    async def _step(self, event: Input) -> list[Action]:
        """One machine step, under ``self._lock`` (steps of a channel never overlap). A step may
        sign; with a blocking (remote) signer it runs in a worker thread, so the trio loop keeps
        serving other channels, links and the watcher (issue 14)."""
        now = self._ctx.clock.now()
        machine = self._machine
        try:
            actions = await call_signer(machine.signer, lambda: machine.handle(event, now=now))
        except BaseException:
            self._ctx.after_step(machine.channel_id, None)
            raise
        self._ctx.after_step(machine.channel_id, actions)
        return actions

    async def apply(self, event: Input) -> None:
        """Feed the machine one input (a chain fact, a link change) and perform what it asks."""
        async with self._lock:
            actions = await self._step(event)
            await self._ctx.executor.enqueue(self, actions)
        if isinstance(event, DepositsObserved):
            self._check_peer_fee()
        self.notify()

    def _check_peer_fee(self) -> None:
        """Alarm once if the peer's credited deposit shows a fee this desk did not accept."""
        machine = self._machine
        if self.peer_fee_refused is not None or machine.phase is not Phase.FUNDING:
            return
        peer = 1 - machine.index
        refused = peer_fee_refused(
            machine.params,
            peer,
            machine.deposits[peer],
            machine.confirmed_deposits[peer],
            self._ctx.settings.max_deposit_fee_bps,
        )
        if refused is not None:
            self.peer_fee_refused = refused
            self._ctx.bus.emit(Alarm(machine.channel_id, refused.rule, str(refused)))

    async def enqueue(self, actions: list[Action]) -> None:
        """Hand the actions of a step made outside :meth:`apply` (opening) to the executor."""
        await self._ctx.executor.enqueue(self, actions)

    async def receive(self, message: Message) -> None:
        """A message from the peer for this channel."""
        self.last_heard = trio.current_time()
        machine = self._machine
        cid = machine.channel_id
        signs = isinstance(message, (Proposal, UpdateRequest))  # each asks us to sign anew
        while True:
            if isinstance(message, (Proposal, UpdateRequest)):  # signs (narrowed for mypy)
                try:
                    await self._ctx.hold_signing(
                        cid, machine.state.version, self._version_to_sign(message)
                    )
                except TowerBehind as exc:
                    version = message.state.version if isinstance(message, Proposal) else None
                    refusal = Reject(cid, version, message.request_id, exc.rule, str(exc))
                    await self._ctx.executor.enqueue(self, [Send(refusal)])
                    return
            async with self._lock:
                # Looked at again under the lock: another step may have signed meanwhile.
                if signs and not self._ctx.signing_covered(cid, self._version_to_sign(message)):
                    continue
                actions = await self._step(Received(message))
                await self._ctx.executor.enqueue(self, actions)
                if isinstance(message, Reestablish):
                    self.notify()  # callers waiting for the resync may go on
                if (
                    self._duties.credits_deposits
                    and machine.phase in _LIVE
                    and any(isinstance(a, PhaseChanged) for a in actions)
                ):
                    self.request_credit()
            return

    def _version_to_sign(self, message: Message | None = None) -> int:
        """The version a step would sign: a proposal's own, else the leader's next. A proposal
        further ahead than the follower signs (``MAX_VERSION_SKIP``) is gated at that bound: the
        peer's figure must not raise the lease we back up (the machine refuses the proposal)."""
        machine = self._machine
        if isinstance(message, Proposal):
            return min(int(message.state.version), machine.state.version + MAX_VERSION_SKIP)
        return machine.highest_signed + 1

    async def raise_highest_signed(self, version: int) -> None:
        """Never sign at or below ``version`` (a watchtower holds a lease up to it: a version
        there may have been signed before this store was restored)."""
        async with self._lock:
            machine = self._machine
            machine.highest_signed = max(machine.highest_signed, version)

    def on_action(self, action: Action) -> None:
        """Called by the executor once ``action`` (and all before it) is durable."""
        cid = self._machine.channel_id
        bus = self._ctx.bus
        if isinstance(action, UpdateApplied):
            state = action.update.signed.state
            waiter = None
            if action.ours and action.request_id is not None:
                waiter = self._waiters.pop(action.request_id, None)
            if waiter is not None:
                waiter.state = state
                waiter.done.set()
                self._room_freed()
            bus.emit(StateUpdated(cid, state, action.ours, action.update.trades))
            self._ctx.on_update(cid, state.version, action.update.trades)
            self.notify()
        elif isinstance(action, UpdateRefused):
            if action.request_id is not None and action.ours:
                waiter = self._waiters.pop(action.request_id, None)
                if waiter is not None:
                    waiter.error = UpdateRefusedError(action.rule, action.reason)
                    waiter.done.set()
                    self._room_freed()
            bus.emit(UpdateRefusedEvent(cid, action.request_id, action.rule, action.reason))
        elif isinstance(action, PhaseChanged):
            bus.emit(PhaseChangedEvent(cid, action.phase))
            self.notify()
        elif isinstance(action, DataLossRecovered):
            bus.emit(
                Alarm(cid, "DataLossRecovered", f"v{action.old_version} -> v{action.new_version}")
            )
            self.notify()
        elif isinstance(action, PersistState):
            self.stored_version = max(self.stored_version, action.update.signed.state.version)
            self.notify()

    # updates ----------------------------------------------------------------------------------
    async def submit(self, trades: tuple[Trade, ...]) -> State:
        """Make ``trades`` one update (or part of one, see :mod:`channels.runtime.coalescer`) and
        return the state that contains them."""
        if self.paused():  # no cancel scope per call on the usual path
            with trio.fail_after(self._ctx.settings.update_timeout):
                # After a restart or a lost connection no proposal is made until the two sides
                # have compared their latest states; wait for that rather than fail.
                while self.paused():
                    await self._changed.wait()
        return await self._coalescer.submit(trades)

    async def start_update(self, trades: tuple[Trade, ...]) -> tuple[int, Waiter]:
        """Hand ``trades`` to the machine as one request; raises the rule's error at once if it
        refuses them before anything is signed."""
        # consent: nothing new is signed while our towers lag (a proposal is held in receive).
        machine = self._machine
        await self._ctx.hold_signing(
            self.channel_id, machine.state.version, self._version_to_sign()
        )
        request_id = next(self._ctx.request_ids)
        waiter = Waiter()
        # Hold our place among the updates in flight from the room check on (taking the lock
        # may yield to other callers, who must see this one).
        self._starting += 1
        deadline = trio.current_time() + self._ctx.settings.update_timeout
        try:
            while True:
                async with self._lock:
                    # Looked at again under the lock: a lost link queued on it (behind a step in
                    # progress) may have started a resync since the caller looked.
                    covered = self._ctx.signing_covered(self.channel_id, self._version_to_sign())
                    if not self.paused() and covered:
                        actions = await self._step(RequestUpdate(trades, request_id))
                        self._waiters[request_id] = waiter
                        await self._ctx.executor.enqueue(self, actions)
                        break
                    changed = self._changed
                with trio.fail_at(deadline):
                    if covered:
                        await changed.wait()
                    else:  # another step signed past the backed-up lease meanwhile
                        await self._ctx.hold_signing(
                            self.channel_id, machine.state.version, self._version_to_sign()
                        )
        finally:
            self._starting -= 1
            if request_id not in self._waiters:
                self._room_freed()  # refused at once: the place we held is free again
        return request_id, waiter

    async def finish_update(self, request_id: int, waiter: Waiter) -> State:
        try:
            # A bare CancelScope, not trio.fail_after: that one is a generator-based context
            # manager, a visible cost at one per update.
            deadline = trio.current_time() + self._ctx.settings.update_timeout
            with trio.CancelScope(deadline=deadline) as scope:
                await waiter.done.wait()
            if scope.cancelled_caught:
                raise trio.TooSlowError
        finally:
            # A caller that gave up no longer holds a place among the updates in flight.
            if self._waiters.pop(request_id, None) is not None:
                self._room_freed()
        if waiter.error is not None:
            raise waiter.error
        assert waiter.state is not None
        return waiter.state

    def _room_freed(self) -> None:
        if self._coalescer.waiting:
            self.notify()  # wakes the pump (an applied update has notified already)

    # deposits, withdrawals, closing -------------------------------------------------------------
    def request_credit(self) -> None:
        """Credit confirmed deposits in a new state (if our role does), unless already under way."""
        machine = self._machine
        if not self._duties.credits_deposits or self._crediting or not machine.credit_trades():
            return
        self._crediting = True
        self._ctx.nursery.start_soon(self._credit)

    async def _credit(self) -> None:
        try:
            trades = self._machine.credit_trades()
            if trades:
                await self.submit(trades)
        except (ChannelError, trio.TooSlowError) as exc:
            # A peer away longer than update_timeout must not stop the node: this runs in the
            # node's task group, and the next poll asks again.
            log.info("crediting deposits failed (retried on the next poll): %r", exc)
        finally:
            self._crediting = False

    async def fund(self) -> None:
        """Send our deposit unless the chain already has it."""
        machine = self._machine
        amount = machine.deposits[machine.index]
        if amount == 0:
            return
        view = await self._ctx.chain.channel(machine.channel_id)
        already = (view.deposits0, view.deposits1)[machine.index]
        # The chain credits what arrived: a fee-on-transfer token credits less.
        floor = net_floor(amount, self._ctx.settings.max_deposit_fee_bps)
        if already >= floor:
            return
        store, cid = self._ctx.executor.store, machine.channel_id
        if await deposit_in_flight(self._ctx.chain, store, cid, machine.index, floor):
            return  # a deposit of a previous run went out after all (see deposits.py)
        async with self._ctx.spending(machine.params, amount - already):  # consent: gas reserve
            crash_point("deposit", "pre_write")
            intent = await store.add_intent(
                DEPOSIT_INTENT, (amount - already).to_bytes(32, "big"), machine.channel_id
            )
            crash_point("deposit", "post_write_pre_send")
            measured = await deposit_measured(
                self._ctx.chain, machine.params, machine.index, amount - already
            )
        await store.update_intent(intent, IntentStatus.CONFIRMED, tx_hash=measured.tx_hash)
        crash_point("deposit", "post_send")
        self._ctx.bus.emit(measured)
        check_fee(measured, self._ctx.settings.max_deposit_fee_bps)  # consent: no silent fee

    async def fund_quietly(self) -> None:
        try:
            await self.fund()
        except ChannelError as exc:
            self._ctx.bus.emit(Alarm(self.channel_id, "FundingFailed", str(exc)))

    async def top_up(self, amount: int) -> State:
        """Deposit ``amount`` more and return the state that credits it.

        Journalled like the first deposit (a ``top_up`` intent before the transaction), so a call
        the crash of a previous run cut off can be retried: if that top-up went out after all,
        it is not sent again (:func:`~channels.runtime.deposits.top_up_in_flight`)."""
        machine = self._machine
        before = machine.state.deposited[machine.index]
        chain, store, cid = self._ctx.chain, self._ctx.executor.store, machine.channel_id
        view = await chain.channel(cid)
        floor = net_floor(amount, self._ctx.settings.max_deposit_fee_bps)
        asked = TopUpIntent(amount, before, (view.deposits0, view.deposits1)[machine.index] + floor)
        # Wait for what the chain measured (a fee-on-transfer token credits less than was sent),
        # and not for ever: the credit needs the peer's countersignature.
        if await top_up_in_flight(chain, store, cid, machine.index, asked):
            target = before + floor  # sent by the run the crash cut off: not again
        else:
            async with self._ctx.spending(machine.params, amount):  # consent: gas reserve
                intent = await store.add_intent(TOP_UP_INTENT, asked.payload(), cid)
                measured = await deposit_measured(chain, machine.params, machine.index, amount)
            await store.update_intent(intent, IntentStatus.CONFIRMED, tx_hash=measured.tx_hash)
            self._ctx.bus.emit(measured)
            check_fee(measured, self._ctx.settings.max_deposit_fee_bps)
            target = before + measured.credited
        with trio.fail_after(self._ctx.settings.open_timeout):
            while machine.state.deposited[machine.index] < target:
                await self._changed.wait()
        return machine.state

    async def withdraw(self, amount: int, recipient: Address) -> State:
        machine = self._machine
        trade = DebitWithdrawal(machine.index, Amount(amount), recipient)
        state = await self.submit((trade,))
        update = machine.latest
        if update.withdrawal is None or update.withdrawal_signatures is None:
            raise IllegalCall("the withdrawal was not co-signed")
        await self._ctx.chain.withdraw_partial(
            machine.params, update.withdrawal, update.withdrawal_signatures
        )
        return state

    async def close(self) -> None:
        machine = self._machine
        if machine.phase is not Phase.FINAL:
            await self.submit((Finalize(),))
        signed: SignedState = machine.latest.signed
        await self._ctx.chain.conclude(machine.params, signed)
        await self.apply(ConcludedObserved(signed.state.version))
        self._ctx.bus.emit(
            FinalityChanged(self.channel_id, Finality.CONCLUDED, signed.state.version)
        )
