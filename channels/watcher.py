"""The watcher: the node's on-chain defence, running beside the trading loop.

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
  attestation once the node has one, or **released** to the writer after the grace period;
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
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from adjudicator.client import (
    ChainEvent,
    ChannelStatus,
    ChannelView,
    params_tuple,
    position_tuple,
    settlement_proof,
    state_tuple,
)
from channels.chainhealth import ChainHealth
from channels.checkpoint import peer_is_back, submit_checkpoint
from channels.core.eip712 import state_struct_hash
from channels.core.errors import ChainError, ChannelError
from channels.core.model import ChannelId, SignedState, State, Version
from channels.core.options import SETTLEMENT_GRACE
from channels.core.protocol import (
    ChainStateSeen,
    ConcludedObserved,
    DepositsObserved,
    DisputeCleared,
    DisputeObserved,
    Phase,
)
from channels.core.wire import decode_state, encode_state
from channels.events import Alarm, ChainEventSeen, Finality, FinalityChanged
from channels.reorgs import CursorGuard
from channels.store import OPEN_INTENTS, Intent, IntentStatus
from channels.txdriver import (
    PendingTx,
    TxManager,
    TxPolicy,
    _bind_conclude_needed,
    _bind_register_needed,
    conclude_needed,
    intent_key,
    register_needed,
    sent_from_raw,
)

if TYPE_CHECKING:
    from channels.node import Node, _Entry

log = logging.getLogger("channels.watcher")

CURSOR = "adjudicator"

#: Alarm when the latest block is older than this many seconds of wall time (docs/THREATS.md
#: section 7).
#: A NodeSettings field ``max_head_age: float`` overrides it.
DEFAULT_MAX_HEAD_AGE = 180.0

#: The shortest challenge period we consider safe on any chain (seconds): enough for an operator
#: to notice an alarm and act by hand if the automatic refute does not land.
SAFE_MIN_CHALLENGE_PERIOD = 3600

#: Worst-case delay before a transaction we send is certainly included (seconds). 0 on L1 (where
#: the minimum above covers congestion); on a rollup, its forced-inclusion window (e.g. about 24 h
#: for Arbitrum's delayed inbox, 12 h for the OP stack's sequencer window). A NodeSettings field
#: ``inclusion_window: int`` overrides it.
DEFAULT_INCLUSION_WINDOW = 0

#: Poll intervals the inclusion-risk bound allows for (a refute needs a few polls to be noticed,
#: sent, and re-priced).
POLLS_OF_SLACK = 10
#: A FUNDING channel that no polled event names is read from the chain once every this many
#: polls (a fallback: its deposits are normally noticed by their events).
FUNDING_RECHECK_POLLS = 20


def check_challenge_period(
    period: int,
    *,
    inclusion_window: int,
    poll_interval: float = 0.5,
    minimum: int = SAFE_MIN_CHALLENGE_PERIOD,
) -> str | None:
    """Why ``period`` is too short to defend a channel, or None if it is long enough.

    The bound is ``max(minimum, inclusion_window + POLLS_OF_SLACK * poll_interval)``: the
    challenge period must outlast the chain's worst-case inclusion delay (on a rollup its
    forced-inclusion window ``W``, during which a censoring sequencer can keep our refute out)
    plus the watcher's reaction time, and never be below the documented minimum.
    """
    reaction = math.ceil(POLLS_OF_SLACK * poll_interval)
    bound = max(minimum, inclusion_window + reaction)
    if period >= bound:
        return None
    return (
        f"challenge period {period}s < {bound}s (inclusion window {inclusion_window}s + "
        f"{POLLS_OF_SLACK} polls of {poll_interval}s, minimum {minimum}s): a refute may not "
        "be included in time"
    )


# ---- driving transactions to inclusion ---------------------------------------------------------


class _StoreJournal:
    def __init__(self, node: Node) -> None:
        self.node = node

    async def add(self, kind: str, payload: bytes, channel_id: ChannelId | None) -> int:
        return await self.node.store.add_intent(kind, payload, channel_id)

    async def update(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        *,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None:
        await self.node.store.update_intent(
            intent_id, status, raw_tx=raw_tx, tx_hash=tx_hash, nonce=nonce
        )


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
    def __init__(self, node: Node) -> None:
        self.node = node
        self.cursor = 0
        self.watches: dict[ChannelId, _Watch] = {}
        self.errors = 0
        settings = node.settings
        self.max_head_age: float = getattr(settings, "max_head_age", DEFAULT_MAX_HEAD_AGE)
        self.inclusion_window: int = getattr(settings, "inclusion_window", DEFAULT_INCLUSION_WINDOW)
        self.max_head = -1
        self.head_stale = False
        self.health = ChainHealth(self.max_head_age, trio.current_time)
        self.cursor_guard = CursorGuard(self._block_hash)
        #: Polls done (spreads the FUNDING fallback reads over the polls).
        self.polls = 0
        self._reported: dict[tuple[bytes, int], None] = {}
        self.txs = TxManager(
            node.chain,
            now=node.now,
            alarm=lambda cid, kind, detail: node._emit(Alarm(cid, kind, detail)),
            journal=_StoreJournal(node),
            policy=getattr(settings, "tx_policy", None),
            tick=settings.chain_poll_interval,
        )

    def watch(self, channel_id: ChannelId) -> _Watch:
        w = self.watches.get(channel_id)
        if w is None:
            w = self.watches[channel_id] = _Watch()
        return w

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        async with trio.open_nursery() as nursery:
            await nursery.start(self.txs.run)
            stored = await node.store.run(lambda s: s.get_cursor(CURSOR))
            head = await node.chain.head()
            self.max_head = head
            self.cursor = stored.block_number if stored is not None else max(0, head - 1)
            if stored is not None:
                self.cursor_guard.seed(stored.block_number, stored.block_hash)
            try:
                await self.recover()
            except (ChainError, ChannelError, OSError) as exc:
                log.warning("recovering open intents failed (re-derived from the chain): %s", exc)
            for entry in list(node._entries.values()):
                if entry.machine.phase is not Phase.CLOSED:
                    try:
                        await self._refresh(entry, [])
                    except (ChainError, ChannelError, OSError) as exc:
                        log.warning("initial refresh failed (retried on the next poll): %s", exc)
            task_status.started()
            while True:
                await trio.sleep(node.settings.chain_poll_interval)
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
                        node._emit(Alarm(None, "StaleHead", blind))

    async def recover(self) -> None:
        """Drive the intents a previous run left open to an outcome (idempotent)."""
        node = self.node
        intents = await node.store.run(lambda s: s.intents(statuses=OPEN_INTENTS))
        for intent in intents:
            await self._recover_one(intent)

    async def _recover_one(self, intent: Intent) -> None:
        node = self.node
        store = node.store
        if intent.raw_tx is None or intent.tx_hash is None:
            # Never broadcast: the poll loop re-derives what is needed from the chain.
            await store.update_intent(intent.id, IntentStatus.CANCELLED)
            return
        receipt = await node.chain.rpc.get_transaction_receipt("0x" + intent.tx_hash.hex())
        if receipt is not None:
            status = IntentStatus.CONFIRMED if receipt.status == 1 else IntentStatus.FAILED
            await store.update_intent(intent.id, status)
            return
        cid = intent.channel_id
        needed: Callable[[], Awaitable[bool]] | None = None
        deadline: int | None = None
        tag: object = None
        if cid is not None and intent.kind in ("refute", "register"):
            version = decode_state(intent.payload).version
            tag = version
            if not await register_needed(node.chain, cid, version, node.now):
                await store.update_intent(intent.id, IntentStatus.CANCELLED)  # superseded
                return
            needed = _bind_register_needed(node.chain, cid, version, node.now)
            view = await node.chain.channel(cid)
            if view.status is ChannelStatus.DISPUTED:
                deadline = view.deadline
        elif cid is not None and intent.kind == "conclude":
            if not await conclude_needed(node.chain, cid):
                await store.update_intent(intent.id, IntentStatus.CANCELLED)
                return
            needed = _bind_conclude_needed(node.chain, cid)
        sent = sent_from_raw(intent.raw_tx)
        tx = PendingTx(
            intent_key(intent.kind, cid, None),
            intent.kind,
            cid,
            None,
            (),
            deadline=deadline,
            needed=needed,
            tag=tag,
            intent=intent.id,
            sent=sent,
            hashes=[sent.hash],
        )
        log.warning("adopting open %s intent %d (%s)", intent.kind, intent.id, sent.hash)
        self.txs.adopt(tx)

    async def poll(self) -> None:
        node = self.node
        # The cursor never goes back (max of the heads seen), but we only ask the node for blocks
        # it says it has: a lagging backend or a reorg to a shorter chain reports a lower head.
        head = await node.chain.head()
        self.max_head = max(self.max_head, head)
        await node.refresh_chain_time()
        self._check_head_age()
        # [reliability] A reorg below the cursor rewinds it (channels/reorgs.py).
        self.cursor, deep_reorg = await self.cursor_guard.check(self.cursor)
        if deep_reorg is not None:
            node._emit(Alarm(None, "DeepReorg", deep_reorg))
        ids = [cid for cid in node._entries]
        events: list[ChainEvent] = []
        if ids and self.cursor < head:
            events = await node.chain.events(self.cursor + 1, head, channel_ids=ids)
        by_channel: dict[bytes, list[ChainEvent]] = {}
        for ev in events:
            if ev.channel_id is not None:
                by_channel.setdefault(ev.channel_id, []).append(ev)
        self.polls += 1
        for index, entry in enumerate(list(node._entries.values())):
            cid = entry.machine.channel_id
            self._check_period(entry)
            mine = by_channel.get(cid, [])
            for ev in mine:
                # The reorg window is scanned again on every poll: report each log once.
                seen = (ev.tx_hash, ev.log_index)
                if not ev.removed and seen not in self._reported:
                    self._reported[seen] = None
                    node._emit(ChainEventSeen(cid, ev.name, dict(ev.args), ev.block_number))
            while len(self._reported) > 10_000:
                del self._reported[next(iter(self._reported))]
            if mine or deep_reorg or self._due(entry, index):
                await self._refresh(entry, mine)
            elif entry.machine.phase is Phase.FUNDING:
                node._maybe_credit(entry)  # a failed credit is retried without a chain read
            await self._duties(entry)
        # Rescan the reorg window next time: only blocks at the confirmation depth are final.
        new_cursor = max(self.cursor, head - node.settings.confirmations)
        if new_cursor != self.cursor:
            self.cursor = new_cursor
            block_hash = await self.cursor_guard.advance(new_cursor)
            await node.store.set_cursor(CURSOR, new_cursor, block_hash)

    async def _block_hash(self, number: int) -> bytes | None:
        block = await self.node.chain.rpc.get_block(number)
        return None if block is None else bytes.fromhex(block.hash[2:])

    def _due(self, entry: _Entry, index: int) -> bool:
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
        phase = entry.machine.phase
        if phase is Phase.DISPUTED:
            return True
        if phase is not Phase.FUNDING:
            return False
        if self.watch(entry.machine.channel_id).view is None:
            return True
        return (self.polls + index) % FUNDING_RECHECK_POLLS == 0

    def _check_head_age(self) -> None:
        """Alarm once when the head is older than ``max_head_age`` of wall time; re-arm when it
        is fresh again."""
        age = time.time() - self.node._chain_time
        if age > self.max_head_age:
            if not self.head_stale:
                self.head_stale = True
                self.node._emit(
                    Alarm(
                        None,
                        "StaleHead",
                        f"latest block is {age:.0f}s old (> {self.max_head_age:.0f}s): "
                        "the node may be eclipsed or the chain halted",
                    )
                )
        else:
            self.head_stale = False

    def _check_period(self, entry: _Entry) -> None:
        w = self.watch(entry.machine.channel_id)
        if w.period_checked:
            return
        w.period_checked = True
        problem = check_challenge_period(
            entry.machine.params.challenge_period,
            inclusion_window=self.inclusion_window,
            poll_interval=self.node.settings.chain_poll_interval,
        )
        if problem is not None:
            self.node._emit(Alarm(entry.machine.channel_id, "ChallengePeriodTooShort", problem))

    # reading the chain's view -----------------------------------------------------------------
    async def _refresh(self, entry: _Entry, events: Sequence[ChainEvent]) -> None:
        node = self.node
        machine = entry.machine
        cid = machine.channel_id
        w = self.watch(cid)
        view = await node.chain.channel(cid)
        w.view = view
        if view.status is not ChannelStatus.CONCLUDED:
            depth = node.settings.confirmations
            confirmed = view
            if depth > 1:
                block = max(0, await node.chain.head() - depth + 1)
                confirmed = await node.chain.channel(cid, block=block)
            if confirmed.deposits != machine.confirmed_deposits:
                async with entry.lock:
                    machine.handle(DepositsObserved(confirmed.deposits), now=node.now())
                entry.notify()
            node._maybe_credit(entry)
        if view.status is ChannelStatus.DISPUTED:
            await self._on_dispute(entry, w, view, events)
        elif view.status is ChannelStatus.OPEN and machine.phase is Phase.DISPUTED:
            await node._apply(entry, DisputeCleared())
        elif view.status is ChannelStatus.CONCLUDED and machine.phase is not Phase.CLOSED:
            await node._apply(entry, ConcludedObserved(machine.state.version))
            node._emit(FinalityChanged(cid, Finality.CONCLUDED, view.version))

    async def _on_dispute(
        self, entry: _Entry, w: _Watch, view: ChannelView, events: Sequence[ChainEvent]
    ) -> None:
        node = self.node
        machine = entry.machine
        cid = machine.channel_id
        if machine.phase is not Phase.DISPUTED:
            await node._apply(entry, DisputeObserved(Version(view.version)))
            node._emit(FinalityChanged(cid, Finality.REGISTERED, view.version))
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
                node._emit(
                    Alarm(cid, "StaleRegistration", f"v{view.version} < our v{ours.state.version}")
                )
            # [reliability] The peer is back: clear the dispute instead (channels/checkpoint.py).
            if peer_is_back(node, entry):
                await submit_checkpoint(node, entry, ours, deadline=view.deadline)
                return
            key = intent_key("refute", cid)
            if key in self.txs.live or not self.txs.busy(key):  # submit de-duplicates
                w.refuted_with = ours.state.version
                await self._submit_register("refute", entry, ours, deadline=view.deadline)
            return
        if view.version == ours.state.version:
            w.registered = ours
            return
        # Newer than anything we hold: read it from the transaction that registered it.
        if w.registered is None or w.registered.state.version != view.version:
            signed = await self._registered_state(cid, view, events)
            if signed is None:
                node._emit(Alarm(cid, "UnknownRegisteredState", f"v{view.version}"))
                return
            w.registered = signed
            try:
                await node._apply(entry, ChainStateSeen(signed))
            except ChannelError as exc:
                node._emit(Alarm(cid, "BadRegisteredState", str(exc)))

    async def _registered_state(
        self, cid: ChannelId, view: ChannelView, events: Sequence[ChainEvent]
    ) -> SignedState | None:
        node = self.node
        candidates = [e for e in events if e.name in ("Registered", "Checkpointed")]
        if not candidates:
            found = await node.chain.events(0, await node.chain.head(), channel_ids=[cid])
            candidates = [e for e in found if e.name in ("Registered", "Checkpointed")]
        for ev in reversed(candidates):
            if int(ev.args.get("version", -1)) != view.version:
                continue
            try:
                signed = await node.chain.signed_state_of(ev.tx_hash)
            except ChannelError:
                continue
            if signed.state.version == view.version:
                return signed
        return None

    # sending ----------------------------------------------------------------------------------
    async def _submit_register(
        self, kind: str, entry: _Entry, signed: SignedState, *, deadline: int | None = None
    ) -> PendingTx:
        node = self.node
        params = entry.machine.params
        cid = entry.machine.channel_id
        sig0, sig1 = signed.signatures
        assert sig0 is not None and sig1 is not None
        version = signed.state.version
        return await self.txs.submit(
            intent_key(kind, cid),
            kind,
            cid,
            "register",
            (params_tuple(params), state_tuple(signed.state), sig0, sig1),
            payload=encode_state(signed.state),
            deadline=deadline,
            needed=_bind_register_needed(node.chain, cid, version, node.now),
            tag=version,
        )

    # timed duties -----------------------------------------------------------------------------
    async def _duties(self, entry: _Entry) -> None:
        node = self.node
        machine = entry.machine
        cid = machine.channel_id
        w = self.watch(cid)
        now = node.now()
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
                        needed=_bind_conclude_needed(node.chain, cid),
                    )
        if machine.phase is Phase.CLOSED:
            await self._after_conclusion(entry, w, now)
        elif machine.phase in (Phase.FUNDING, Phase.OPEN, Phase.FINAL):
            await self._escalate(entry, w)

    async def _after_conclusion(self, entry: _Entry, w: _Watch, now: int) -> None:
        node = self.node
        machine = entry.machine
        cid = machine.channel_id
        view = w.view
        if view is None or view.status is not ChannelStatus.CONCLUDED or view.locked_remaining:
            view = w.view = await node.chain.channel(cid)
        if view.locked_remaining == 0 or machine.book.root != machine.state.positions_root:
            await self._withdraw_credits(entry, w)
            return
        key = intent_key("settle", cid)
        if self.txs.busy(key):
            return  # one at a time: each proof is against the root the previous one leaves
        snapshot = machine.book.snapshot()
        for position in list(machine.book):
            if position.id in w.settled or now < position.expiry:
                continue
            found = node._attestations.get((position.underlying, position.expiry))
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
                    found[1],
                )
            else:
                kind, fn = "release", "releaseUnsettled"
                args = (params_tuple(machine.params), position_tuple(position), list(proof))
            await self.txs.submit(
                key, kind, cid, fn, args, payload=encode_state(machine.state), on_done=settled
            )
            return

    async def _withdraw_credits(self, entry: _Entry, w: _Watch) -> None:
        node = self.node
        if w.withdrawn:
            return
        w.withdrawn = True
        machine = entry.machine
        asset = machine.params.asset
        cid = machine.channel_id
        version = machine.state.version

        def withdrawn(_tx: PendingTx) -> None:
            node._emit(FinalityChanged(cid, Finality.WITHDRAWN, version))

        credit = await node.chain.credits(asset, node.address)
        if credit > 0:
            await self.txs.submit(
                intent_key("withdraw", cid, asset),
                "withdraw",
                cid,
                "withdraw",
                (asset, node.address),
                payload=encode_state(machine.state),
                on_done=withdrawn,
            )
        else:
            node._emit(FinalityChanged(cid, Finality.WITHDRAWN, version))

    async def _escalate(self, entry: _Entry, w: _Watch) -> None:
        node = self.node
        settings = node.settings
        machine = entry.machine
        if w.escalated or not machine.latest.signed.fully_signed:
            return
        if not machine.synced:
            # Restarted after a crash, peer not heard yet: our latest may be stale (THREATS 4.4).
            if not w.behind_alarm:
                w.behind_alarm = True
                node._emit(
                    Alarm(
                        machine.channel_id,
                        "PossiblyBehind",
                        "not known current (restarted, peer not heard yet): registering nothing "
                        "until the peer, a tower or the chain shows which state is the newest",
                    )
                )
            return
        quiet = trio.current_time() - entry.last_heard
        reason = None
        if machine.phase is Phase.FUNDING and quiet > settings.funding_timeout:
            if trio.current_time() - entry.created_at > settings.funding_timeout:
                reason = "the peer never funded the channel"
        elif settings.escalate_after is not None and quiet > settings.escalate_after:
            if machine.pending_versions:
                reason = f"the peer is silent with v{machine.pending_versions[0]} unanswered"
            else:
                margin = machine.params.challenge_period + settings.expiry_margin
                expiring = [p for p in machine.book if p.expiry - node.now() < margin]
                if expiring:
                    reason = f"the peer is silent and {len(expiring)} position(s) near expiry"
        if reason is None:
            return
        w.escalated = True
        node._emit(Alarm(machine.channel_id, "Escalated", reason))
        log.warning("0x%s: going on chain: %s", machine.channel_id.hex()[:12], reason)
        await self._submit_register("register", entry, machine.latest.signed)


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
