"""The watcher: the host's on-chain defence, running beside the trading loop.

It follows the adjudicator's events for our channels and treats the contract's view of each
channel (``getChannel``) as the truth; events only say *which* channels to look at. That makes it
reorg-safe without bookkeeping: the last ``confirmations`` blocks are scanned again on every poll,
deposits count only at the confirmation depth, and every reaction is idempotent (a refute of a
version already registered is skipped, a second conclude is a no-op).

What it does, per channel:

* deposits confirmed at depth N go to the state machine (the leader then credits them);
* a registration older than our latest fully signed state is **refuted** with the latest;
* a registration newer than ours (the peer completed a proposal we signed, or we lost data) is
  decoded from its transaction, verified and **adopted**; we never refute with an older state;
* after the deadline it **concludes**; expired positions are **settled** with the oracle's
  attestation once the host has one, or **released** to the writer after the grace period;
  payouts left as credits are **withdrawn**;
* it **escalates** on its own: a funding that never arrives, or a peer that stays silent while a
  proposal waits or an option nears expiry, leads to registering the latest state.

Dispute transactions are recorded as intents in the store before they are sent (W7), and a
:class:`TxManager` drives each one to an outcome without blocking the poll loop: it polls for a
receipt of any version, rebroadcasts or fee-bumps (EIP-1559 replacement, same nonce) when none
appears within ``TxPolicy.stuck_blocks`` blocks or ``stuck_seconds`` seconds, re-sends after a
reorg removed it or another transaction took its nonce, drops it when it is no longer needed (a
refute already superseded) and raises ``Alarm("DeadlineAtRisk")`` when it is still not mined
``deadline_margin`` seconds before the dispute deadline. After a restart the open intents are
adopted again (:meth:`Watcher.recover`): a mined one is marked confirmed, a superseded one
cancelled, the others driven on.

The poll loop never dies: any error is logged and counted and the next poll starts afresh from
the chain. It uses ``max(head seen)`` (a lagging backend may answer with an older head) and raises
``Alarm("StaleHead")`` when the latest block is older than ``max_head_age`` seconds of wall time
(time dilation, eclipse: docs/THREATS.md section 7). A channel whose challenge period is shorter
than the inclusion-risk bound (:func:`check_challenge_period`) gets
``Alarm("ChallengePeriodTooShort")``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from adjudicator.client import (
    ChainEvent,
    ChannelStatus,
    ChannelView,
    both_signatures,
    params_tuple,
    position_tuple,
    settlement_proof,
    signature_tuple,
    state_tuple,
)
from channels.core.eip712 import state_struct_hash
from channels.core.errors import ChainError, ChannelError
from channels.core.model import ChannelId, SignedState, State, Version
from channels.core.node_events import Alarm, ChainEventSeen, Finality, FinalityChanged
from channels.core.options import SETTLEMENT_GRACE
from channels.core.protocol import (
    ChainStateSeen,
    ConcludedObserved,
    DepositsObserved,
    DisputeCleared,
    DisputeObserved,
    Phase,
)
from channels.core.wire import encode_state
from channels.defence.chainhealth import ChainHealth
from channels.defence.challenge import (
    DEFAULT_INCLUSION_WINDOW,
    DEFAULT_MAX_HEAD_AGE,
    SAFE_MIN_CHALLENGE_PERIOD,
    check_challenge_period,
)
from channels.defence.checkpoint import peer_is_back, submit_checkpoint
from channels.defence.host import DefenceHost, DefendedChannel
from channels.defence.intents import StoreJournal, adopt_intent
from channels.defence.reorgs import CursorGuard
from channels.defence.txdriver import (
    PendingTx,
    TxManager,
    TxPolicy,
    bind_conclude_needed,
    bind_register_needed,
    intent_key,
    register_needed,
    sent_from_raw,
)
from channels.store import OPEN_INTENTS, IntentStatus

log = logging.getLogger("channels.defence.watcher")

CURSOR = "adjudicator"

#: A FUNDING channel that no polled event names is read from the chain once every this many
#: polls (a fallback: its deposits are normally noticed by their events).
FUNDING_RECHECK_POLLS = 20


@dataclass
class _Watch:
    """What the watcher knows of one channel beyond its state machine."""

    view: ChannelView | None = None
    registered: SignedState | None = None
    refuted_with: int = -1
    concluding: bool = False
    settled: set[int] = field(default_factory=set)
    settling: set[int] = field(default_factory=set)
    escalated: bool = False
    behind_alarm: bool = False
    withdrawn: bool = False
    stale_seen: set[int] = field(default_factory=set)
    period_checked: bool = False


class Watcher:
    def __init__(self, host: DefenceHost) -> None:
        self.host = host
        self.cursor = 0
        self.watches: dict[ChannelId, _Watch] = {}
        self.errors = 0
        settings = host.settings
        self.max_head_age: float = settings.max_head_age
        self.inclusion_window: int = settings.inclusion_window
        self.max_head = -1
        self.head_stale = False
        self.health = ChainHealth(self.max_head_age, trio.current_time)
        self.cursor_guard = CursorGuard(self._block_hash)
        #: Polls done (spreads the FUNDING fallback reads over the polls).
        self.polls = 0
        self._reported: dict[tuple[bytes, int], None] = {}
        self.txs = TxManager(
            host.chain,
            now=host.now,
            alarm=lambda cid, kind, detail: host.emit(Alarm(cid, kind, detail)),
            journal=StoreJournal(host.store),
            policy=settings.tx_policy,
            tick=settings.chain_poll_interval,
        )

    def watch(self, channel_id: ChannelId) -> _Watch:
        w = self.watches.get(channel_id)
        if w is None:
            w = self.watches[channel_id] = _Watch()
        return w

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        host = self.host
        async with trio.open_nursery() as nursery:
            await nursery.start(self.txs.run)
            stored = await host.store.get_cursor(CURSOR)
            head = await host.chain.head()
            self.max_head = head
            self.cursor = stored.block_number if stored is not None else max(0, head - 1)
            if stored is not None:
                self.cursor_guard.seed(stored.block_number, stored.block_hash)
            try:
                await self.recover()
            except (ChainError, ChannelError, OSError) as exc:
                log.warning("recovering open intents failed (re-derived from the chain): %s", exc)
            for channel in host.defended():
                if channel.machine.phase is not Phase.CLOSED:
                    try:
                        await self.refresh(channel, [])
                    except (ChainError, ChannelError, OSError) as exc:
                        log.warning("initial refresh failed (retried on the next poll): %s", exc)
            task_status.started()
            while True:
                await trio.sleep(host.settings.chain_poll_interval)
                try:
                    await self.poll()
                    self.health.succeeded()
                except Exception as exc:  # the watcher must outlive any bug or fault
                    self.errors += 1
                    if not isinstance(exc, ChannelError | ChainError | OSError):
                        log.exception("watcher poll failed")
                    # [reliability] A blind watcher alarms like a stale head; logs are rate-limited.
                    blind = self.health.failed(exc)
                    if blind is not None:
                        self.head_stale = True
                        host.emit(Alarm(None, "StaleHead", blind))

    async def recover(self) -> None:
        """Drive the intents a previous run left open to an outcome (idempotent)."""
        host = self.host
        intents = await host.store.intents(statuses=OPEN_INTENTS)
        for intent in intents:
            if intent.kind == "deposit":
                continue  # the channel runtime settles its own (channels/runtime/deposits.py)
            tx = await adopt_intent(host.store, host.chain, host.now, intent)
            if tx is not None:
                self.txs.adopt(tx)

    async def poll(self) -> None:
        host = self.host
        # The cursor never goes back (max of the heads seen), but we only ask the host for blocks
        # it says it has: a lagging backend or a reorg to a shorter chain reports a lower head.
        head = await host.chain.head()
        self.max_head = max(self.max_head, head)
        await host.refresh_chain_time()
        self._check_head_age()
        # [reliability] A reorg below the cursor rewinds it (channels/defence/reorgs.py).
        self.cursor, deep_reorg = await self.cursor_guard.check(self.cursor)
        if deep_reorg is not None:
            host.emit(Alarm(None, "DeepReorg", deep_reorg))
        ids = [c.channel_id for c in host.defended()]
        events: list[ChainEvent] = []
        if ids and self.cursor < head:
            events = await host.chain.events(self.cursor + 1, head, channel_ids=ids)
        by_channel: dict[bytes, list[ChainEvent]] = {}
        for ev in events:
            if ev.channel_id is not None:
                by_channel.setdefault(ev.channel_id, []).append(ev)
        self.polls += 1
        for index, channel in enumerate(host.defended()):
            cid = channel.machine.channel_id
            self._check_period(channel)
            mine = by_channel.get(cid, [])
            for ev in mine:
                # The reorg window is scanned again on every poll: report each log once.
                seen = (ev.tx_hash, ev.log_index)
                if not ev.removed and seen not in self._reported:
                    self._reported[seen] = None
                    host.emit(ChainEventSeen(cid, ev.name, dict(ev.args), ev.block_number))
            while len(self._reported) > 10_000:
                del self._reported[next(iter(self._reported))]
            if mine or deep_reorg or self._due(channel, index):
                await self.refresh(channel, mine)
            elif channel.machine.phase is Phase.FUNDING:
                channel.request_credit()  # a failed credit is retried without a chain read
            await self._duties(channel)
        # Rescan the reorg window next time: only blocks at the confirmation depth are final.
        new_cursor = max(self.cursor, head - host.settings.confirmations)
        if new_cursor != self.cursor:
            self.cursor = new_cursor
            block_hash = await self.cursor_guard.advance(new_cursor)
            await host.store.set_cursor(CURSOR, new_cursor, block_hash)

    async def _block_hash(self, number: int) -> bytes | None:
        block = await self.host.chain.rpc.get_block(number)
        return None if block is None else bytes.fromhex(block.hash[2:])

    def _due(self, channel: DefendedChannel, index: int) -> bool:
        """Whether a channel that no polled event names needs its chain view read anyway.

        A DISPUTED channel: every poll (deadlines). A FUNDING channel: once when first seen (a
        restored channel, or deposits made before we watched it), then only as a slow fallback,
        every ``FUNDING_RECHECK_POLLS`` polls, spread over the polls by position. A deposit does
        not need the per-poll read: its ``Deposited`` event names the channel, and the reorg
        window is scanned again on every poll, so the event stays in ``mine`` until the deposit
        is at the confirmation depth (the last poll that sees it reads a confirmed view that
        includes it). Reading every FUNDING channel on every poll made opening many channels
        cost one ``getChannel`` per channel per poll.
        """
        phase = channel.machine.phase
        if phase is Phase.DISPUTED:
            return True
        if phase is not Phase.FUNDING:
            return False
        if self.watch(channel.machine.channel_id).view is None:
            return True
        return (self.polls + index) % FUNDING_RECHECK_POLLS == 0

    def _check_head_age(self) -> None:
        """Alarm once when the head is older than ``max_head_age`` of wall time; re-arm when it
        is fresh again."""
        age = time.time() - self.host.head_timestamp
        if age > self.max_head_age:
            if not self.head_stale:
                self.head_stale = True
                self.host.emit(
                    Alarm(
                        None,
                        "StaleHead",
                        f"latest block is {age:.0f}s old (> {self.max_head_age:.0f}s): "
                        "the host may be eclipsed or the chain halted",
                    )
                )
        else:
            self.head_stale = False

    def _check_period(self, channel: DefendedChannel) -> None:
        w = self.watch(channel.machine.channel_id)
        if w.period_checked:
            return
        w.period_checked = True
        problem = check_challenge_period(
            channel.machine.params.challenge_period,
            inclusion_window=self.inclusion_window,
            poll_interval=self.host.settings.chain_poll_interval,
        )
        if problem is not None:
            self.host.emit(Alarm(channel.machine.channel_id, "ChallengePeriodTooShort", problem))

    # reading the chain's view -----------------------------------------------------------------
    async def refresh(self, channel: DefendedChannel, events: Sequence[ChainEvent]) -> None:
        host = self.host
        machine = channel.machine
        cid = machine.channel_id
        w = self.watch(cid)
        view = await host.chain.channel(cid)
        w.view = view
        if view.status is not ChannelStatus.CONCLUDED:
            depth = host.settings.confirmations
            confirmed = view
            if depth > 1:
                block = max(0, await host.chain.head() - depth + 1)
                confirmed = await host.chain.channel(cid, block=block)
            if confirmed.deposits != machine.confirmed_deposits:
                await channel.apply(DepositsObserved(confirmed.deposits))
            channel.request_credit()
        if view.status is ChannelStatus.DISPUTED:
            await self._on_dispute(channel, w, view, events)
        elif view.status is ChannelStatus.OPEN and machine.phase is Phase.DISPUTED:
            await channel.apply(DisputeCleared())
        elif view.status is ChannelStatus.CONCLUDED and machine.phase is not Phase.CLOSED:
            await channel.apply(ConcludedObserved(machine.state.version))
            host.emit(FinalityChanged(cid, Finality.CONCLUDED, view.version))

    async def _on_dispute(
        self, channel: DefendedChannel, w: _Watch, view: ChannelView, events: Sequence[ChainEvent]
    ) -> None:
        host = self.host
        machine = channel.machine
        cid = machine.channel_id
        if machine.phase is not Phase.DISPUTED:
            await channel.apply(DisputeObserved(Version(view.version)))
            host.emit(FinalityChanged(cid, Finality.REGISTERED, view.version))
        ours = machine.latest.signed
        if view.version < ours.state.version and ours.fully_signed:
            if view.version not in w.stale_seen:
                w.stale_seen.add(view.version)
                log.warning(
                    "0x%s: stale v%d registered, refuting with v%d",
                    cid.hex()[:12],
                    view.version,
                    ours.state.version,
                )
                host.emit(
                    Alarm(cid, "StaleRegistration", f"v{view.version} < our v{ours.state.version}")
                )
            # [reliability] The peer is back: clear the dispute instead (defence/checkpoint.py).
            if peer_is_back(host.is_connected(machine.peer_address), channel):
                await self.submit_checkpoint(channel, ours, deadline=view.deadline)
                return
            key = intent_key("refute", cid)
            if key in self.txs.live or not self.txs.busy(key):  # submit de-duplicates
                w.refuted_with = ours.state.version
                await self.submit_register("refute", channel, ours, deadline=view.deadline)
            return
        if view.version == ours.state.version:
            w.registered = ours
            return
        # Newer than anything we hold: read it from the transaction that registered it.
        if w.registered is None or w.registered.state.version != view.version:
            signed = await self._registered_state(cid, view, events)
            if signed is None:
                host.emit(Alarm(cid, "UnknownRegisteredState", f"v{view.version}"))
                return
            w.registered = signed
            try:
                await channel.apply(ChainStateSeen(signed))
            except ChannelError as exc:
                host.emit(Alarm(cid, "BadRegisteredState", str(exc)))

    async def _registered_state(
        self, cid: ChannelId, view: ChannelView, events: Sequence[ChainEvent]
    ) -> SignedState | None:
        host = self.host
        candidates = [e for e in events if e.name in ("Registered", "Checkpointed")]
        if not candidates:
            found = await host.chain.events(0, await host.chain.head(), channel_ids=[cid])
            candidates = [e for e in found if e.name in ("Registered", "Checkpointed")]
        for ev in reversed(candidates):
            if int(ev.args.get("version", -1)) != view.version:
                continue
            try:
                signed = await host.chain.signed_state_of(ev.tx_hash)
            except ChannelError:
                continue
            if signed.state.version == view.version:
                return signed
        return None

    # sending ----------------------------------------------------------------------------------
    async def submit_register(
        self,
        kind: str,
        channel: DefendedChannel,
        signed: SignedState,
        *,
        deadline: int | None = None,
    ) -> PendingTx:
        host = self.host
        params = channel.machine.params
        cid = channel.machine.channel_id
        sig0, sig1 = both_signatures(signed)
        version = signed.state.version
        return await self.txs.submit(
            intent_key(kind, cid),
            kind,
            cid,
            "register",
            (params_tuple(params), state_tuple(signed.state), sig0, sig1),
            payload=encode_state(signed.state),
            deadline=deadline,
            needed=bind_register_needed(host.chain, cid, version, host.now),
            tag=version,
        )

    async def submit_checkpoint(
        self, channel: DefendedChannel, signed: SignedState, *, deadline: int | None = None
    ) -> PendingTx:
        host = self.host
        return await submit_checkpoint(
            self.txs, host.chain, host.now, channel, signed, deadline=deadline
        )

    # timed duties -----------------------------------------------------------------------------
    async def _duties(self, channel: DefendedChannel) -> None:
        host = self.host
        machine = channel.machine
        cid = machine.channel_id
        w = self.watch(cid)
        now = host.now()
        if machine.phase is Phase.DISPUTED and w.view is not None:
            if w.view.status is ChannelStatus.DISPUTED and now > w.view.deadline:
                state = w.registered.state if w.registered is not None else None
                key = intent_key("conclude", cid)
                if (
                    state is not None
                    and _struct_hash(state) == w.view.state_hash
                    and not self.txs.busy(key)
                ):
                    await self.txs.submit(
                        key,
                        "conclude",
                        cid,
                        "concludeAfterTimeout",
                        (params_tuple(machine.params), state_tuple(state)),
                        payload=encode_state(state),
                        needed=bind_conclude_needed(host.chain, cid),
                    )
        if machine.phase is Phase.CLOSED:
            await self._after_conclusion(channel, w, now)
        elif machine.phase in (Phase.FUNDING, Phase.OPEN, Phase.FINAL):
            await self._escalate(channel, w)

    async def _after_conclusion(self, channel: DefendedChannel, w: _Watch, now: int) -> None:
        host = self.host
        machine = channel.machine
        cid = machine.channel_id
        view = w.view
        if view is None or view.status is not ChannelStatus.CONCLUDED or view.locked_remaining:
            view = w.view = await host.chain.channel(cid)
        if view.locked_remaining == 0 or machine.book.root != machine.state.positions_root:
            await self._withdraw_credits(channel, w)
            return
        key = intent_key("settle", cid)
        if self.txs.busy(key):
            return  # one at a time: each proof is against the root the previous one leaves
        snapshot = machine.book.snapshot()
        for position in list(machine.book):
            if position.id in w.settled or now < position.expiry:
                continue
            found = host.attestation(position.underlying, position.expiry)
            late = now >= position.expiry + SETTLEMENT_GRACE
            if found is None and not late:
                continue
            proof = settlement_proof(snapshot, w.settled, position.id)
            pid = position.id

            def settled(tx: PendingTx, pid: int = pid) -> None:
                # Done, or refused (e.g. the peer settled it first): either way its slot is
                # empty in the root the next proof must be built against.
                if tx.outcome in (IntentStatus.CONFIRMED, IntentStatus.FAILED):
                    w.settled.add(pid)

            if found is not None:
                kind, fn = "settle", "settlePosition"
                args: tuple[Any, ...] = (
                    params_tuple(machine.params),
                    position_tuple(position),
                    list(proof),
                    (found[0].underlying, found[0].expiry, found[0].price),
                    signature_tuple(found[1]),
                )
            else:
                kind, fn = "release", "releaseUnsettled"
                args = (params_tuple(machine.params), position_tuple(position), list(proof))
            await self.txs.submit(
                key, kind, cid, fn, args, payload=encode_state(machine.state), on_done=settled
            )
            return

    async def _withdraw_credits(self, channel: DefendedChannel, w: _Watch) -> None:
        host = self.host
        if w.withdrawn:
            return
        w.withdrawn = True
        machine = channel.machine
        asset = machine.params.asset
        cid = machine.channel_id
        version = machine.state.version

        def withdrawn(_tx: PendingTx) -> None:
            host.emit(FinalityChanged(cid, Finality.WITHDRAWN, version))

        credit = await host.chain.credits(asset, host.address)
        if credit > 0:
            await self.txs.submit(
                intent_key("withdraw", cid, asset),
                "withdraw",
                cid,
                "withdraw",
                (asset, host.address),
                payload=encode_state(machine.state),
                on_done=withdrawn,
            )
        else:
            host.emit(FinalityChanged(cid, Finality.WITHDRAWN, version))

    async def _escalate(self, channel: DefendedChannel, w: _Watch) -> None:
        host = self.host
        settings = host.settings
        machine = channel.machine
        if w.escalated or not machine.latest.signed.fully_signed:
            return
        if not machine.synced:
            # Restarted after a crash, peer not heard yet: our latest may be stale (THREATS 4.4).
            if not w.behind_alarm:
                w.behind_alarm = True
                host.emit(
                    Alarm(
                        machine.channel_id,
                        "PossiblyBehind",
                        "not known current (restarted, peer not heard yet): registering nothing "
                        "until the peer, a tower or the chain shows which state is the newest",
                    )
                )
            return
        quiet = trio.current_time() - channel.last_heard
        reason = None
        if machine.phase is Phase.FUNDING and quiet > settings.funding_timeout:
            if trio.current_time() - channel.created_at > settings.funding_timeout:
                reason = "the peer never funded the channel"
        elif settings.escalate_after is not None and quiet > settings.escalate_after:
            if machine.pending_versions:
                reason = f"the peer is silent with v{machine.pending_versions[0]} unanswered"
            else:
                margin = machine.params.challenge_period + settings.expiry_margin
                expiring = [p for p in machine.book if p.expiry - host.now() < margin]
                if expiring:
                    reason = f"the peer is silent and {len(expiring)} position(s) near expiry"
        if reason is None:
            return
        w.escalated = True
        host.emit(Alarm(machine.channel_id, "Escalated", reason))
        log.warning("0x%s: going on chain: %s", machine.channel_id.hex()[:12], reason)
        await self.submit_register("register", channel, machine.latest.signed)


def _struct_hash(state: State) -> bytes:
    return state_struct_hash(state)


__all__ = [
    "DEFAULT_INCLUSION_WINDOW",
    "DEFAULT_MAX_HEAD_AGE",
    "SAFE_MIN_CHALLENGE_PERIOD",
    "PendingTx",
    "TxManager",
    "TxPolicy",
    "Watcher",
    "check_challenge_period",
    "register_needed",
    "sent_from_raw",
]
