"""The desk node: wires the sans-IO channel machines to the transport, the store and the chain.

``async with open_node(...) as node:`` owns one trio nursery in which every background task of the
node lives (listener, peer links, the action executor, the chain follower). Nothing outlives the
``async with`` block.

The executor is where the write-before-send rule is kept while updates stay fast: machines hand
it their actions in order; it takes every batch that is waiting, makes all their persistence
actions durable in ONE store transaction, and only then performs the sends and notifications of
those batches, in order. Persisting a later action before an earlier send is harmless; sending
before persisting is never done.
"""

from __future__ import annotations

import functools
import itertools
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from adjudicator.client import AdjudicatorClient, connect_adjudicator
from adjudicator.tx_signing import TransactionSigner
from channels.channel import Channel
from channels.checkpoint import submit_checkpoint
from channels.core.errors import (
    ChannelError,
    IllegalCall,
    LocalError,
    RemoteError,
    UnknownChannel,
)
from channels.core.funding import net_floor
from channels.core.messages import Message, OpenProposal, Reestablish
from channels.core.model import Address, Attestation, ChannelId, Params, State, address
from channels.core.options import CreditDeposit, DebitWithdrawal, Finalize, Limits, Trade
from channels.core.protocol import (
    Action,
    ChannelMachine,
    ConcludedObserved,
    Config,
    DataLossRecovered,
    Disconnected,
    Input,
    PersistSignature,
    PersistState,
    Phase,
    PhaseChanged,
    Policy,
    Received,
    Reconnected,
    RequestUpdate,
    Send,
    UpdateApplied,
    UpdateRefused,
)
from channels.core.quote_book import QuoteLimits
from channels.core.quote_wire import decode_peer_message, encode_peer_message
from channels.core.quotes import QUOTE_MESSAGES, QuoteMessage
from channels.core.signing import LocalSigner, Signer
from channels.crash import crash_point
from channels.currency import check_current_for_dispute
from channels.deposits import deposit_measured
from channels.eventbus import Subscriber
from channels.events import (
    Alarm,
    Event,
    Finality,
    FinalityChanged,
    PeerConnected,
    PeerLost,
    PhaseChangedEvent,
    StateUpdated,
    UpdateRefusedEvent,
)
from channels.quoting import Pricer, QuoteDesk
from channels.signers.calling import call_signer, on_trio_thread
from channels.store import AsyncStore, IntentStatus, open_store
from channels.transport import Prologue, SecureChannel, TransportConfig, connect, serve
from channels.txdriver import TxPolicy
from channels.watcher import Watcher

log = logging.getLogger("channels.node")

#: Our own updates in flight on one channel before new calls are queued and coalesced. The
#: leader keeps a few proposals pipelined (a lost link then completes several at once, see
#: tests/node/test_reconnect.py); the follower's requests each cost the leader a round.
_IN_FLIGHT_LEADER = 4
_IN_FLIGHT_FOLLOWER = 1
#: At most this many trades from queued calls go into one coalesced update.
_MAX_COALESCED_TRADES = 1000
#: A call with at least this many trades is a batch already: it is proposed at once (pipelined
#: up to the machine's limit) rather than queued behind others and merged.
_ALREADY_A_BATCH = 16
#: At most this many queued messages go out in one socket write (bounds the bytes joined).
_MAX_WRITE_BATCH = 256


def _crash_points(durable: Sequence[Action]) -> tuple[str, ...]:
    points: list[str] = []
    if any(isinstance(a, PersistSignature) for a in durable):
        points.append("signature")
    if any(isinstance(a, PersistState) for a in durable):
        points.append("state")
    return tuple(points)


class UpdateRefusedError(RemoteError):
    """The peer refused the update (or it was lost with the connection); ``rule`` names why."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Tunables of a node; the defaults suit a desk on a public chain with 1-block confirmations."""

    confirmations: int = 1
    chain_poll_interval: float = 0.5
    update_timeout: float = 30.0
    connect_timeout: float = 5.0
    open_timeout: float = 120.0
    reconnect_backoff: tuple[float, float] = (0.2, 5.0)
    limits: Limits = field(default_factory=Limits)
    max_pending: int = 64
    synchronous: str = "FULL"
    #: Go on chain when a deposit has not arrived this long after opening (seconds).
    funding_timeout: float = 3600.0
    #: Go on chain when the peer is silent this long while a proposal waits or an option nears
    #: expiry (seconds); None never escalates on silence.
    escalate_after: float | None = 600.0
    #: "Near expiry" means within the challenge period plus this margin (seconds).
    expiry_margin: int = 3600
    #: Deposit our share as soon as a peer's channel proposal is accepted.
    auto_fund: bool = True
    #: Alarm ("StaleHead") when the newest block is older than this (seconds of wall time).
    max_head_age: float = 180.0
    #: The chain's worst-case inclusion delay (on a rollup, its forced-inclusion window), in
    #: seconds: channels whose challenge period does not clearly exceed it raise an alarm.
    inclusion_window: int = 0
    #: When dispute transactions count as stuck and get rebroadcast or fee-bumped.
    tx_policy: TxPolicy | None = None
    #: Seconds of silence after which a link sends a keepalive (and 3x that: the peer is dead).
    keepalive_interval: float | None = 15.0
    #: Per-peer limits: a link that sends more messages than this in one second, or more
    #: malformed or refused messages than ``max_bad_messages`` in its life, is dropped.
    max_messages_per_second: int = 50_000
    max_bad_messages: int = 1_000
    #: A deposit counts as made once the chain credits the agreed amount less this many basis
    #: points (the asset's transfer fee: USDT's is capped at 20); what is credited is always what
    #: the chain measured. 0 accepts only fee-free assets.
    max_deposit_fee_bps: int = 100

    def transport_config(self) -> TransportConfig:
        return TransportConfig(keepalive_interval=self.keepalive_interval)


@dataclass
class _Waiter:
    done: trio.Event = field(default_factory=trio.Event)
    state: State | None = None
    error: ChannelError | None = None


@dataclass(eq=False)
class _Call:
    """One caller's trades waiting to be coalesced with others into one update."""

    trades: tuple[Trade, ...]
    done: trio.Event = field(default_factory=trio.Event)
    state: State | None = None
    error: BaseException | None = None
    #: The combined update was refused by a rule: the caller tries its trades alone.
    retry: bool = False
    #: The caller stopped waiting before its batch was proposed: leave its trades out.
    withdrawn: bool = False


@dataclass(eq=False)
class _Batch:
    """Calls whose trades become one update; only the newest batch of a channel takes more."""

    calls: list[_Call] = field(default_factory=list)
    size: int = 0


def _refused(calls: list[_Call], exc: ChannelError) -> None:
    """A combined update was refused: each call tries alone; a lone call gets the error."""
    if len(calls) == 1:
        calls[0].error = exc
    else:
        for call in calls:
            call.retry = True
    for call in calls:
        call.done.set()


@dataclass
class _Entry:
    machine: ChannelMachine
    handle: Channel
    lock: trio.Lock = field(default_factory=trio.Lock)
    waiters: dict[int, _Waiter] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)
    #: Coalescing (see Node._submit): batches waiting for room, the one still taking calls,
    #: and whether the pump task runs.
    queue: deque[_Batch] = field(default_factory=deque)
    open_batch: _Batch | None = None
    pumping: bool = False
    starting: int = 0
    endpoint: tuple[str, int] | None = None
    crediting: bool = False
    created_at: float = field(default_factory=trio.current_time)
    last_heard: float = field(default_factory=trio.current_time)

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


@dataclass
class _Link:
    peer: Address
    channel: SecureChannel
    outbox: trio.MemorySendChannel[tuple[bytes, tuple[str, ...]]]
    inbox: trio.MemoryReceiveChannel[tuple[bytes, tuple[str, ...]]]


class Node:
    """A desk node. Create it with :func:`open_node`."""

    def __init__(
        self,
        *,
        signer: Signer,
        store: AsyncStore,
        chain: AdjudicatorClient,
        chain_id: int,
        settings: NodeSettings,
        nursery: trio.Nursery,
        policy: Policy | None = None,
        accept_channel: Callable[[Params, tuple[int, int]], bool] | None = None,
        pricer: Pricer | None = None,
        quote_limits: QuoteLimits | None = None,
    ) -> None:
        self.signer = signer
        self.store = store
        self.chain = chain
        self.chain_id = chain_id
        self.settings = settings
        self.policy = policy
        self.accept_channel = accept_channel
        self.config = Config(
            chain_id=chain_id,
            adjudicator=Address(chain.address),
            limits=settings.limits,
            max_pending=settings.max_pending,
            max_deposit_fee_bps=settings.max_deposit_fee_bps,
        )
        self._nursery = nursery
        self._entries: dict[ChannelId, _Entry] = {}
        self._links: dict[Address, _Link] = {}
        self._request_ids = itertools.count(1)
        self._actions_in, self._actions_out = trio.open_memory_channel[tuple[_Entry, list[Action]]](
            10_000
        )
        self._subscribers: list[Subscriber] = []
        #: Events dropped because a subscriber's buffer was full (each is announced to it).
        self.events_lost = 0
        self._chain_time = 0
        self._chain_time_at = 0.0
        self.listen_port: int | None = None
        self._attestations: dict[tuple[bytes, int], tuple[Attestation, bytes]] = {}
        self.watcher = Watcher(self)
        self.unknown_channel_messages = 0
        self.bad_messages = 0
        #: Firm quotes (RFQ): requests, answers, offers, fills and the fill rule.
        self.quotes = QuoteDesk(self, pricer, quote_limits)

    # identity and time --------------------------------------------------------------------------
    @property
    def address(self) -> Address:
        return self.signer.address

    def now(self) -> int:
        """Chain time: the newest block's timestamp plus the time since that block appeared.

        Between blocks the clock keeps running from when we first saw the newest one, so a quiet
        chain (no new blocks) does not stop time; it never runs behind a block's timestamp.
        """
        return self._chain_time + int(trio.current_time() - self._chain_time_at)

    async def refresh_chain_time(self) -> None:
        timestamp = await self.chain.block_timestamp("latest")
        if timestamp != self._chain_time:
            self._chain_time = timestamp
            self._chain_time_at = trio.current_time()

    # channels -----------------------------------------------------------------------------------
    @property
    def channels(self) -> list[Channel]:
        return [e.handle for e in self._entries.values()]

    def channel(self, channel_id: bytes) -> Channel:
        try:
            return self._entries[ChannelId(channel_id)].handle
        except KeyError:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}") from None

    def _add_entry(self, machine: ChannelMachine, endpoint: tuple[str, int] | None) -> _Entry:
        machine.policy = self._quote_policy(machine)
        entry = _Entry(machine=machine, handle=Channel(self, machine), endpoint=endpoint)
        self._entries[machine.channel_id] = entry
        return entry

    def _quote_policy(self, machine: ChannelMachine) -> Policy:
        # firm quotes: a trade naming a quote of ours is signed only if the fill rule accepts
        # it (channels/quoting.py); then the bot's policy runs.
        user_policy = self.policy

        def policy(base: State, new: State, trades: Sequence[Trade]) -> str | None:
            self.quotes.check_update(machine.channel_id, machine.peer_address, tuple(trades))
            return user_policy(base, new, trades) if user_policy is not None else None

        # signers (issue 14): the step may run in a worker thread (a blocking signer)
        return lambda base, new, trades: on_trio_thread(lambda: policy(base, new, trades))

    async def open_channel(
        self,
        *,
        peer: tuple[str, int],
        peer_address: str | bytes,
        asset: str | bytes,
        deposit: int,
        peer_deposit: int,
        oracle: str | bytes,
        challenge_period: int = 3600,
        asset_decimals: int | None = None,
        nonce: int | None = None,
    ) -> Channel:
        """Propose a channel to a peer, fund it, and return once both deposits are credited."""
        peer_addr = address(peer_address)
        asset_addr = address(asset)
        if asset_decimals is None:
            asset_decimals = await self.chain.asset_decimals(asset_addr)
        params = Params(
            chain_id=self.chain_id,
            adjudicator=Address(self.chain.address),
            asset=asset_addr,
            asset_decimals=asset_decimals,
            participants=(self.address, peer_addr),
            challenge_period=challenge_period,
            oracle=address(oracle),
            nonce=nonce if nonce is not None else secrets.randbits(256),
        )
        machine, actions = await call_signer(
            self.signer,
            lambda: ChannelMachine.initiate(
                params, self.signer, self.config, (deposit, peer_deposit)
            ),
        )
        await self._connect(peer, peer_addr)
        await self.store.add_channel(
            params, machine.index, (deposit, peer_deposit), machine.phase, peer
        )
        entry = self._add_entry(machine, peer)
        await self._enqueue(entry, actions)
        with trio.fail_after(self.settings.open_timeout):
            await self._wait_phase(machine.channel_id, (Phase.FUNDING,))
            await self._fund(entry)
            await self._wait_phase(machine.channel_id, (Phase.OPEN,))
        return entry.handle

    async def _on_open_proposal(self, link: _Link, msg: OpenProposal) -> None:
        params = msg.params
        if params.channel_id in self._entries:
            return  # a retransmission of a proposal we already accepted
        if link.peer not in params.participants or self.address not in params.participants:
            raise RemoteError("a channel proposal that does not name both of us")
        if self.accept_channel is not None and not self.accept_channel(params, msg.deposits):
            log.info("refused channel proposal 0x%s", params.channel_id.hex()[:12])
            return
        machine, actions = await call_signer(
            self.signer, lambda: ChannelMachine.accept_open(msg, self.signer, self.config)
        )
        await self.store.add_channel(params, machine.index, msg.deposits, Phase.OPENING, None)
        entry = self._add_entry(machine, None)
        await self._enqueue(entry, actions)
        if self.settings.auto_fund:
            self._nursery.start_soon(self._fund_quietly, entry)

    async def _fund_quietly(self, entry: _Entry) -> None:
        try:
            await self._fund(entry)
        except ChannelError as exc:
            self._emit(Alarm(entry.machine.channel_id, "FundingFailed", str(exc)))

    async def _fund(self, entry: _Entry) -> None:
        """Send our deposit unless the chain already has it."""
        machine = entry.machine
        amount = machine.deposits[machine.index]
        if amount == 0:
            return
        view = await self.chain.channel(machine.channel_id)
        already = (view.deposits0, view.deposits1)[machine.index]
        # [reliability] The chain credits what arrived: a fee-on-transfer token credits less.
        if already >= net_floor(amount, self.settings.max_deposit_fee_bps):
            return
        short = amount - already
        measured = await deposit_measured(self.chain, machine.params, machine.index, short)
        self._emit(measured)

    # trading ------------------------------------------------------------------------------------
    async def _submit(self, channel_id: ChannelId, trades: tuple[Trade, ...]) -> State:
        """Make ``trades`` one update (or part of one) and return the state that contains them.

        Concurrent calls are coalesced: while the channel already has ``_IN_FLIGHT_LEADER`` of
        our updates in flight (``_IN_FLIGHT_FOLLOWER`` for the follower, whose every update
        costs the leader a request round), a call's trades are queued, and when room frees up
        every queued call's trades become ONE update (one signature round, one commit per
        side), whose state every caller gets back. If the rules refuse a combined update, each
        of its calls is tried again on its own, so one bad trade fails only its own caller.
        Withdrawals, deposit credits and finalizing are never combined with other calls.
        """
        entry = self._entries.get(channel_id)
        if entry is None:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}")
        with trio.fail_after(self.settings.update_timeout):
            await self._wait_synced(entry)
        solo = any(isinstance(t, DebitWithdrawal | Finalize | CreditDeposit) for t in trades)
        big = len(trades) >= _ALREADY_A_BATCH
        while True:
            if big or (not entry.queue and self._has_room(entry)):
                request_id, waiter = await self._start_update(entry, trades)
                return await self._finish_update(entry, request_id, waiter)
            call = _Call(trades)
            self._queue_call(entry, call, solo)
            try:
                with trio.fail_after(self.settings.update_timeout):
                    await call.done.wait()
            finally:
                # Not yet proposed: leave the queue (once proposed the update may still apply,
                # as for a call that times out waiting for its own update).
                call.withdrawn = True
            if call.retry:
                solo = True  # the combined update was refused: go again, alone
                continue
            if call.error is not None:
                raise call.error
            assert call.state is not None
            return call.state

    async def _wait_synced(self, entry: _Entry) -> None:
        # After a restart or a lost connection no proposal is made until the two sides have
        # compared their latest states; wait for that rather than fail.
        while entry.machine.reestablishing and entry.machine.phase in (Phase.FUNDING, Phase.OPEN):
            await entry.changed.wait()

    def _has_room(self, entry: _Entry) -> bool:
        limit = _IN_FLIGHT_LEADER if entry.machine.is_leader else _IN_FLIGHT_FOLLOWER
        return len(entry.waiters) + entry.starting < limit

    async def _start_update(self, entry: _Entry, trades: tuple[Trade, ...]) -> tuple[int, _Waiter]:
        """Hand ``trades`` to the machine as one request; raises the rule's error at once if it
        refuses them before anything is signed."""
        request_id = next(self._request_ids)
        waiter = _Waiter()
        # Hold our place among the updates in flight from the room check on (taking the lock
        # may yield to other callers, who must see this one).
        entry.starting += 1
        try:
            async with entry.lock:
                actions = await self._handle(entry, RequestUpdate(trades, request_id))
                entry.waiters[request_id] = waiter
                await self._enqueue(entry, actions)
        finally:
            entry.starting -= 1
            if request_id not in entry.waiters:
                self._room_freed(entry)  # refused at once: the place we held is free again
        return request_id, waiter

    async def _finish_update(self, entry: _Entry, request_id: int, waiter: _Waiter) -> State:
        try:
            with trio.fail_after(self.settings.update_timeout):
                await waiter.done.wait()
        finally:
            # A caller that gave up no longer holds a place among the updates in flight.
            if entry.waiters.pop(request_id, None) is not None:
                self._room_freed(entry)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.state is not None
        return waiter.state

    def _queue_call(self, entry: _Entry, call: _Call, solo: bool) -> None:
        batch = entry.open_batch
        if solo or batch is None or batch.size + len(call.trades) > self._max_batch_trades:
            batch = _Batch()
            entry.queue.append(batch)
            entry.open_batch = None if solo else batch
        batch.calls.append(call)
        batch.size += len(call.trades)
        if not entry.pumping:
            entry.pumping = True
            self._nursery.start_soon(self._pump, entry)

    @property
    def _max_batch_trades(self) -> int:
        return min(_MAX_COALESCED_TRADES, self.settings.limits.max_trades_per_update)

    def _room_freed(self, entry: _Entry) -> None:
        if entry.queue:
            entry.notify()  # wakes the pump (an applied update has notified already)

    async def _pump(self, entry: _Entry) -> None:
        """Propose the queued batches of one channel, oldest first, as room frees up."""
        try:
            while entry.queue:
                while not self._has_room(entry) or (
                    entry.machine.reestablishing
                    and entry.machine.phase in (Phase.FUNDING, Phase.OPEN)
                ):
                    await entry.changed.wait()  # set by _room_freed and after a resync
                batch = entry.queue.popleft()
                if batch is entry.open_batch:
                    entry.open_batch = None
                calls = [c for c in batch.calls if not c.withdrawn]
                if not calls:
                    continue
                trades = tuple(t for c in calls for t in c.trades)
                try:
                    request_id, waiter = await self._start_update(entry, trades)
                except ChannelError as exc:  # refused before anything was signed
                    _refused(calls, exc)
                    continue
                except Exception as exc:  # not the rules' verdict: report it, keep the node up
                    for call in calls:
                        call.error = exc
                        call.done.set()
                    continue
                self._nursery.start_soon(self._resolve, entry, calls, request_id, waiter)
        finally:
            entry.pumping = False

    async def _resolve(
        self, entry: _Entry, calls: list[_Call], request_id: int, waiter: _Waiter
    ) -> None:
        try:
            state = await self._finish_update(entry, request_id, waiter)
        except UpdateRefusedError as exc:  # definitive: the proposal is dropped, never applies
            _refused(calls, exc)
        except trio.TooSlowError:
            # The update may still apply later: retrying would apply these trades twice.
            for call in calls:
                call.error = trio.TooSlowError("the update was not completed in time")
                call.done.set()
        else:
            for call in calls:
                call.state = state
                call.done.set()

    async def _wait_phase(self, channel_id: ChannelId, phases: Sequence[Phase]) -> Phase:
        entry = self._entries[channel_id]
        while entry.machine.phase not in phases:
            await entry.changed.wait()
        return entry.machine.phase

    async def _wait_version(self, channel_id: ChannelId, version: int) -> State:
        entry = self._entries[channel_id]
        while entry.machine.state.version < version:
            await entry.changed.wait()
        return entry.machine.state

    async def _top_up(self, channel_id: ChannelId, amount: int) -> State:
        entry = self._entries[channel_id]
        machine = entry.machine
        before = machine.state.deposited[machine.index]
        # [reliability] Wait for what the chain measured (a fee-on-transfer token credits less
        # than was sent), and not for ever: the credit needs the peer's countersignature.
        measured = await deposit_measured(self.chain, machine.params, machine.index, amount)
        self._emit(measured)
        with trio.fail_after(self.settings.open_timeout):
            while machine.state.deposited[machine.index] < before + measured.credited:
                await entry.changed.wait()
        return machine.state

    async def _withdraw_partial(self, channel_id: ChannelId, trade: DebitWithdrawal) -> State:
        state = await self._submit(channel_id, (trade,))
        entry = self._entries[channel_id]
        update = entry.machine.latest
        if update.withdrawal is None or update.withdrawal_signatures is None:
            raise IllegalCall("the withdrawal was not co-signed")
        await self.chain.withdraw_partial(
            entry.machine.params, update.withdrawal, update.withdrawal_signatures
        )
        return state

    async def _close(self, channel_id: ChannelId) -> None:
        entry = self._entries[channel_id]
        if entry.machine.phase is not Phase.FINAL:
            await self._submit(channel_id, (Finalize(),))
        signed = entry.machine.latest.signed
        await self.chain.conclude(entry.machine.params, signed)
        await self._apply(entry, ConcludedObserved(signed.state.version))
        self._emit(FinalityChanged(channel_id, Finality.CONCLUDED, signed.state.version))

    # the action executor ------------------------------------------------------------------------
    async def _enqueue(self, entry: _Entry, actions: list[Action]) -> None:
        if actions:
            await self._actions_in.send((entry, actions))

    async def _executor(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for first in self._actions_out:
            batch = [first]
            while True:
                try:
                    batch.append(self._actions_out.receive_nowait())
                except trio.WouldBlock:
                    break
            durable = [
                action
                for _, actions in batch
                for action in actions
                if isinstance(action, PersistSignature | PersistState | PhaseChanged)
            ]
            points = _crash_points(durable)
            for point in points:
                crash_point(point, "pre_write")
            if durable:
                await self.store.persist(durable)
            for point in points:
                crash_point(point, "post_write_pre_send")
            for entry, actions in batch:
                for action in actions:
                    self._perform(entry, action, points)

    def _perform(self, entry: _Entry, action: Action, points: tuple[str, ...] = ()) -> None:
        cid = entry.machine.channel_id
        if isinstance(action, Send):
            self._send(entry.machine.peer_address, action.message, points)
        elif isinstance(action, UpdateApplied):
            state = action.update.signed.state
            waiter = None
            if action.ours and action.request_id is not None:
                waiter = entry.waiters.pop(action.request_id, None)
            if waiter is not None:
                waiter.state = state
                waiter.done.set()
                self._room_freed(entry)
            self._emit(StateUpdated(cid, state, action.ours, action.update.trades))
            self.quotes.on_update(cid, state.version, action.update.trades)
            entry.notify()
        elif isinstance(action, UpdateRefused):
            if action.request_id is not None and action.ours:
                waiter = entry.waiters.pop(action.request_id, None)
                if waiter is not None:
                    waiter.error = UpdateRefusedError(action.rule, action.reason)
                    waiter.done.set()
                    self._room_freed(entry)
            self._emit(UpdateRefusedEvent(cid, action.request_id, action.rule, action.reason))
        elif isinstance(action, PhaseChanged):
            self._emit(PhaseChangedEvent(cid, action.phase))
            entry.notify()
        elif isinstance(action, DataLossRecovered):
            self._emit(
                Alarm(cid, "DataLossRecovered", f"v{action.old_version} -> v{action.new_version}")
            )
            entry.notify()
        elif isinstance(action, PersistSignature | PersistState):
            if isinstance(action, PersistState):
                entry.notify()

    # events -------------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                # A slow subscriber loses events rather than stalling the node, and is told so
                # (channels/eventbus.py); the node counts them.
                self.events_lost += subscriber.offer(event)
            except trio.BrokenResourceError:
                self._subscribers.remove(subscriber)

    @asynccontextmanager
    async def events(self, buffer: int = 10_000) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """``async with node.events() as stream: async for event in stream: ...``"""
        send, receive = trio.open_memory_channel[Event](buffer)
        subscriber = Subscriber(send)
        self._subscribers.append(subscriber)
        try:
            yield receive
        finally:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
            await send.aclose()

    # peers --------------------------------------------------------------------------------------
    def _send(
        self, peer: Address, message: Message | QuoteMessage, points: tuple[str, ...] = ()
    ) -> None:
        link = self._links.get(peer)
        if link is None:
            return  # the reestablish after reconnecting brings the peer up to date
        try:
            link.outbox.send_nowait((encode_peer_message(message), points))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            log.warning("dropping a message to %s: link congested or closed", peer.hex())

    async def _connect(self, endpoint: tuple[str, int], peer: Address) -> None:
        if peer in self._links:
            return
        secure = await connect(
            endpoint[0],
            endpoint[1],
            self.signer,
            peer,
            Prologue(self.chain_id, Address(self.chain.address)),
            timeout=self.settings.connect_timeout,
            config=self.settings.transport_config(),
        )
        await self._nursery.start(self._run_link, secure)

    async def _serve_connection(self, secure: SecureChannel) -> None:
        await self._run_link(secure)

    async def _run_link(
        self, secure: SecureChannel, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        peer = secure.peer_address
        out_send, out_receive = trio.open_memory_channel[tuple[bytes, tuple[str, ...]]](10_000)
        old = self._links.get(peer)
        link = _Link(peer, secure, out_send, out_receive)
        self._links[peer] = link
        if old is not None:
            await old.channel.aclose()
        self._emit(PeerConnected(None, peer))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, link)
                for entry in self._entries_of(peer):
                    async with entry.lock:
                        await self._enqueue(entry, await self._handle(entry, Reconnected()))
                task_status.started()
                await self._reader(link)
                nursery.cancel_scope.cancel()
        finally:
            if self._links.get(peer) is link:
                del self._links[peer]
                for entry in self._entries_of(peer):
                    with trio.CancelScope(shield=True):
                        async with entry.lock:
                            await self._enqueue(entry, await self._handle(entry, Disconnected()))
                self._emit(PeerLost(None, peer))
            with trio.CancelScope(shield=True):
                await secure.aclose()

    def _entries_of(self, peer: Address) -> list[_Entry]:
        return [e for e in self._entries.values() if e.machine.peer_address == peer]

    async def _writer(self, link: _Link) -> None:
        try:
            async for first in link.inbox:
                # Send everything already waiting in one socket write (one syscall instead of
                # one per message). Each message was queued only after its persistence was
                # durable, so sending them together changes nothing for write-before-send.
                payloads = [first[0]]
                fired = list(first[1])
                while len(payloads) < _MAX_WRITE_BATCH:
                    try:
                        payload, points = link.inbox.receive_nowait()
                    except trio.WouldBlock:
                        break
                    payloads.append(payload)
                    fired.extend(points)
                await link.channel.send_many(payloads)
                for point in fired:
                    crash_point(point, "post_send")
        except (RemoteError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            # The link broke under us: closing it ends the reader, and the usual "peer lost"
            # path runs; what was not sent is recovered by the reestablish on reconnect.
            log.info("link to %s broke while sending", link.peer.hex())
            await link.channel.aclose()

    async def _reader(self, link: _Link) -> None:
        settings = self.settings
        window_start, in_window, bad = trio.current_time(), 0, 0
        while True:
            try:
                payload = await link.channel.receive()
            except (
                RemoteError,
                OSError,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
            ) as exc:
                log.info("link to %s closed: %s", link.peer.hex(), exc)
                return
            now = trio.current_time()
            if now - window_start >= 1.0:
                window_start, in_window = now, 0
            in_window += 1
            if in_window > settings.max_messages_per_second:
                log.warning("dropping %s: over %d messages/s", link.peer.hex(), in_window - 1)
                return
            try:
                message = decode_peer_message(payload)
                if isinstance(message, QUOTE_MESSAGES):
                    await self.quotes.on_message(link.peer, message)
                else:
                    await self._dispatch(link, message)
            except (RemoteError, LocalError, ChannelError) as exc:
                self.bad_messages += 1
                bad += 1
                log.info("refused a message from %s: %s", link.peer.hex(), exc)
                if bad > settings.max_bad_messages:
                    log.warning("dropping %s: %d bad messages", link.peer.hex(), bad)
                    return

    async def _dispatch(self, link: _Link, message: Message) -> None:
        if isinstance(message, OpenProposal):
            await self._on_open_proposal(link, message)
            return
        entry = self._entries.get(message.channel_id)
        if entry is None or entry.machine.peer_address != link.peer:
            self.unknown_channel_messages += 1
            return
        entry.last_heard = trio.current_time()
        async with entry.lock:
            actions = await self._handle(entry, Received(message))
            await self._enqueue(entry, actions)
            if isinstance(message, Reestablish):
                entry.notify()  # callers waiting for the resync may go on
            if (
                entry.machine.is_leader
                and entry.machine.phase in (Phase.FUNDING, Phase.OPEN)
                and any(isinstance(a, PhaseChanged) for a in actions)
            ):
                self._maybe_credit(entry)

    # signers (issue 14): a machine step may sign; with a blocking (remote) signer it runs in a
    # worker thread so the trio loop keeps serving other channels and links. Callers hold
    # entry.lock, so steps of one channel never overlap.
    async def _handle(self, entry: _Entry, event: Input) -> list[Action]:
        now = self.now()
        return await call_signer(self.signer, lambda: entry.machine.handle(event, now=now))

    # chain -------------------------------------------------------------------------------------
    async def _apply(self, entry: _Entry, event: Input) -> None:
        """Feed the machine a chain fact (or any input) and perform what it asks."""
        async with entry.lock:
            actions = await self._handle(entry, event)
            await self._enqueue(entry, actions)

    def add_attestation(self, attestation: Attestation, signature: bytes) -> None:
        """Give the watcher an oracle's signed price, for settling expired positions on chain."""
        self._attestations[(attestation.underlying, attestation.expiry)] = (attestation, signature)

    async def dispute(self, channel_id: bytes, *, force: bool = False) -> None:
        """Force-close: register our latest fully signed state on chain now.

        The watcher refutes anything older, concludes after the challenge period and settles or
        releases open positions after expiry; follow it with :meth:`Channel.wait_phase`.
        Refused with :class:`NotKnownCurrent` while the node has not established that its latest
        state is the newest (``force=True`` takes that risk: see the error's text).
        """
        entry = self._entries.get(ChannelId(channel_id))
        if entry is None:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}")
        signed = entry.machine.latest.signed
        if not signed.fully_signed:
            raise IllegalCall("no fully signed state to register yet")
        check_current_for_dispute(entry.machine, force=force, emit=self._emit)
        # Through the watcher's driver: recorded as an intent, rebroadcast and fee-bumped until
        # it is mined; we return once it is.
        tx = await self.watcher._submit_register("register", entry, signed)
        await tx.done.wait()
        if tx.outcome is IntentStatus.FAILED:  # cancelled means already registered: fine
            raise IllegalCall(f"the registration did not go through: {tx.detail}")
        await self.watcher._refresh(entry, [])

    async def checkpoint(self, channel_id: bytes) -> None:
        """Record our newest fully signed state on chain with ``checkpoint``: clears a dispute
        registered with an older version (the channel is Open again) or pins an open channel's
        record so that nothing older can be registered. Returns once it is mined."""
        entry = self._entries.get(ChannelId(channel_id))
        if entry is None:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}")
        signed = entry.machine.latest.signed
        check_current_for_dispute(entry.machine, force=False, emit=self._emit)
        view = await self.chain.channel(entry.machine.channel_id)
        if view.version >= signed.state.version:
            raise IllegalCall(
                f"the chain already records v{view.version}; checkpoint needs a newer state "
                f"than that and ours is v{signed.state.version}"
            )
        tx = await submit_checkpoint(self, entry, signed, deadline=view.deadline or None)
        await tx.done.wait()
        if tx.outcome is IntentStatus.FAILED:
            raise IllegalCall(f"the checkpoint did not go through: {tx.detail}")
        await self.watcher._refresh(entry, [])

    def status(self) -> list[dict[str, object]]:
        """One row per channel: what a desk's status table shows."""
        rows: list[dict[str, object]] = []
        for entry in self._entries.values():
            m = entry.machine
            view = self.watcher.watches.get(m.channel_id)
            chain_view = view.view if view is not None else None
            rows.append(
                {
                    "channel_id": "0x" + m.channel_id.hex(),
                    "peer": "0x" + m.peer_address.hex(),
                    "phase": m.phase.value,
                    "version": m.state.version,
                    "our_balance": m.state.balances[m.index],
                    "their_balance": m.state.balances[1 - m.index],
                    "positions": m.state.position_count,
                    "locked": m.state.locked,
                    "deadline": chain_view.deadline if chain_view is not None else 0,
                    "connected": m.peer_address in self._links,
                }
            )
        return rows

    def _maybe_credit(self, entry: _Entry) -> None:
        machine = entry.machine
        if not machine.is_leader or entry.crediting or not machine.credit_trades():
            return
        entry.crediting = True
        self._nursery.start_soon(self._credit, entry)

    async def _credit(self, entry: _Entry) -> None:
        try:
            trades = entry.machine.credit_trades()
            if trades:
                await self._submit(entry.machine.channel_id, trades)
        except ChannelError as exc:
            log.info("crediting deposits failed (retried on the next poll): %s", exc)
        finally:
            entry.crediting = False

    # start-up -----------------------------------------------------------------------------------
    async def _restore(self) -> None:
        for stored in await self.store.load_channels():
            machine = ChannelMachine.restore(
                stored.params,
                self.signer,
                self.config,
                stored.deposits,
                stored.latest,
                stored.book,
                stored.highest_signed,
                stored.phase,
            )
            # [reliability] A store read from disk may be an old copy (a restored backup is as
            # "cleanly shut down" as the real thing): the node is not known current until the
            # peer's reestablish, a tower or the chain says so (channels/currency.py).
            machine.synced = False
            self._add_entry(machine, stored.endpoint)

    async def _redial(self) -> None:
        for entry in list(self._entries.values()):
            if entry.endpoint is not None and entry.machine.peer_address not in self._links:
                try:
                    await self._connect(entry.endpoint, entry.machine.peer_address)
                except (ChannelError, OSError) as exc:
                    log.info("could not reach %s: %s", entry.machine.peer_address.hex(), exc)

    async def _redialer(self) -> None:
        low, high = self.settings.reconnect_backoff
        delay = low
        while True:
            missing = [
                e
                for e in self._entries.values()
                if e.endpoint is not None and e.machine.peer_address not in self._links
            ]
            if missing:
                await self._redial()
                delay = min(high, delay * 2)
            else:
                delay = low
            await trio.sleep(delay)


@asynccontextmanager
async def open_node(
    *,
    signer: Signer,
    store: str | Path,
    chain: str | Sequence[str],
    adjudicator: str | bytes,
    listen: tuple[str, int] | None = None,
    settings: NodeSettings | None = None,
    policy: Policy | None = None,
    accept_channel: Callable[[Params, tuple[int, int]], bool] | None = None,
    transaction_key: bytes | TransactionSigner | None = None,
    pricer: Pricer | None = None,
    quote_limits: QuoteLimits | None = None,
) -> AsyncIterator[Node]:
    """Run a node for the duration of the ``async with`` block.

    ``transaction_key`` (a private key or a :class:`TransactionSigner`) pays gas; by default the
    channel signer's own account does (a :class:`LocalSigner`'s key, or a signer that can also
    sign transactions, such as a keystore or a remote signer).
    ``chain`` is an RPC URL or several (the next one takes over when one fails).
    """
    settings = settings or NodeSettings()
    if transaction_key is None and isinstance(signer, LocalSigner):
        transaction_key = signer.secret
    elif transaction_key is None and isinstance(signer, TransactionSigner):
        transaction_key = signer
    async with connect_adjudicator(chain, address(adjudicator), transaction_key) as client:
        chain_id = await client.rpc.chain_id()
        async with open_store(
            store,
            identity=signer.address,
            chain_id=chain_id,
            adjudicator=client.address,
            synchronous=settings.synchronous,
        ) as db:
            async with trio.open_nursery() as nursery:
                node = Node(
                    signer=signer,
                    store=db,
                    chain=client,
                    chain_id=chain_id,
                    settings=settings,
                    nursery=nursery,
                    policy=policy,
                    accept_channel=accept_channel,
                    pricer=pricer,
                    quote_limits=quote_limits,
                )
                await node.refresh_chain_time()
                await node._restore()
                await node.quotes.restore()  # firm quotes: the live ones of the audit trail
                await nursery.start(node._executor)
                if listen is not None:
                    node.listen_port = await nursery.start(
                        functools.partial(serve, config=settings.transport_config()),
                        listen[0],
                        listen[1],
                        signer,
                        Prologue(chain_id, Address(client.address)),
                        lambda _peer: True,
                        node._serve_connection,
                    )
                await nursery.start(node.quotes.run)
                await nursery.start(node.watcher.run)
                nursery.start_soon(node._redialer)
                try:
                    yield node
                finally:
                    nursery.cancel_scope.cancel()
