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

Dispute transactions are recorded as intents in the store before they are sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from adjudicator.client import ChainEvent, ChannelStatus, ChannelView, settlement_proof
from adjudicator.errors import ContractError
from adjudicator.rpc import ChainError, Receipt
from channels.core.eip712 import state_struct_hash
from channels.core.errors import ChannelError
from channels.core.machine import (
    ChainStateSeen,
    ConcludedObserved,
    DepositsObserved,
    DisputeCleared,
    DisputeObserved,
    Phase,
)
from channels.core.model import ChannelId, SignedState, State, Version
from channels.core.options import SETTLEMENT_GRACE
from channels.core.wire import encode_state
from channels.events import Alarm, ChainEventSeen, Finality, FinalityChanged
from channels.store import IntentStatus

if TYPE_CHECKING:
    from channels.node import Node, _Entry

log = logging.getLogger("channels.watcher")

CURSOR = "adjudicator"


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
    withdrawn: bool = False


class Watcher:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.cursor = 0
        self.watches: dict[ChannelId, _Watch] = {}
        self.errors = 0

    def watch(self, channel_id: ChannelId) -> _Watch:
        w = self.watches.get(channel_id)
        if w is None:
            w = self.watches[channel_id] = _Watch()
        return w

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        stored = await node.store.run(lambda s: s.get_cursor(CURSOR))
        head = await node.chain.head()
        self.cursor = stored.block_number if stored is not None else max(0, head - 1)
        for entry in list(node._entries.values()):
            if entry.machine.phase is not Phase.CLOSED:
                await self._refresh(entry, [])
        task_status.started()
        while True:
            await trio.sleep(node.settings.chain_poll_interval)
            try:
                await self.poll()
            except (ChannelError, ChainError, OSError) as exc:
                self.errors += 1
                log.warning("watcher poll failed: %s", exc)

    async def poll(self) -> None:
        node = self.node
        head = await node.chain.head()
        await node.refresh_chain_time()
        ids = [cid for cid in node._entries]
        events: list[ChainEvent] = []
        if ids and self.cursor < head:
            events = await node.chain.events(self.cursor + 1, head, channel_ids=ids)
        by_channel: dict[bytes, list[ChainEvent]] = {}
        for ev in events:
            if ev.channel_id is not None:
                by_channel.setdefault(ev.channel_id, []).append(ev)
        for entry in list(node._entries.values()):
            cid = entry.machine.channel_id
            mine = by_channel.get(cid, [])
            for ev in mine:
                if not ev.removed:
                    node._emit(ChainEventSeen(cid, ev.name, dict(ev.args), ev.block_number))
            if mine or entry.machine.phase in (Phase.FUNDING, Phase.DISPUTED):
                await self._refresh(entry, mine)
            await self._duties(entry)
        # Rescan the reorg window next time: only blocks at the confirmation depth are final.
        new_cursor = max(self.cursor, head - node.settings.confirmations)
        if new_cursor != self.cursor:
            self.cursor = new_cursor
            await node.store.set_cursor(CURSOR, new_cursor, b"\0" * 32)

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
            if w.refuted_with < ours.state.version:
                w.refuted_with = ours.state.version
                log.info(
                    "0x%s: stale v%d registered, refuting with v%d",
                    cid.hex()[:12],
                    view.version,
                    ours.state.version,
                )
                node._emit(
                    Alarm(cid, "StaleRegistration", f"v{view.version} < our v{ours.state.version}")
                )
                await self._send("refute", entry, node.chain.register, machine.params, ours)
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
            head = await node.chain.head()
            found = await node.chain.events(0, head, channel_ids=[cid])
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

    # timed duties -----------------------------------------------------------------------------
    async def _duties(self, entry: _Entry) -> None:
        node = self.node
        machine = entry.machine
        w = self.watch(machine.channel_id)
        now = node.now()
        if machine.phase is Phase.DISPUTED and w.view is not None and not w.concluding:
            if w.view.status is ChannelStatus.DISPUTED and now > w.view.deadline:
                state = w.registered.state if w.registered is not None else None
                if state is not None and _struct_hash(state) == w.view.state_hash:
                    w.concluding = True
                    await self._send(
                        "conclude", entry, node.chain.conclude_after_timeout, machine.params, state
                    )
                    await self._refresh(entry, [])
                    w.concluding = False
        if machine.phase is Phase.CLOSED:
            await self._after_conclusion(entry, w, now)
        elif machine.phase in (Phase.FUNDING, Phase.OPEN, Phase.FINAL):
            await self._escalate(entry, w)

    async def _after_conclusion(self, entry: _Entry, w: _Watch, now: int) -> None:
        node = self.node
        machine = entry.machine
        view = w.view
        if view is None or view.status is not ChannelStatus.CONCLUDED:
            view = w.view = await node.chain.channel(machine.channel_id)
        if view.locked_remaining == 0 or machine.book.root != machine.state.positions_root:
            await self._withdraw_credits(entry, w)
            return
        snapshot = machine.book.snapshot()
        for position in list(machine.book):
            if position.id in w.settled or position.id in w.settling or now < position.expiry:
                continue
            found = node._attestations.get((position.underlying, position.expiry))
            late = now >= position.expiry + SETTLEMENT_GRACE
            if found is None and not late:
                continue
            w.settling.add(position.id)
            try:
                proof = settlement_proof(snapshot, w.settled, position.id)
                if found is not None:
                    await self._send(
                        "settle",
                        entry,
                        node.chain.settle_position,
                        machine.params,
                        position,
                        proof,
                        found[0],
                        found[1],
                    )
                else:
                    await self._send(
                        "release",
                        entry,
                        node.chain.release_unsettled,
                        machine.params,
                        position,
                        proof,
                    )
                w.settled.add(position.id)
            finally:
                w.settling.discard(position.id)

    async def _withdraw_credits(self, entry: _Entry, w: _Watch) -> None:
        node = self.node
        if w.withdrawn:
            return
        w.withdrawn = True
        asset = entry.machine.params.asset
        credit = await node.chain.credits(asset, node.address)
        if credit > 0:
            await self._send("withdraw", entry, node.chain.withdraw, asset, node.address)
        node._emit(
            FinalityChanged(
                entry.machine.channel_id, Finality.WITHDRAWN, entry.machine.state.version
            )
        )

    async def _escalate(self, entry: _Entry, w: _Watch) -> None:
        node = self.node
        settings = node.settings
        machine = entry.machine
        if w.escalated or not machine.latest.signed.fully_signed:
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
        await self._send(
            "register", entry, node.chain.register, machine.params, machine.latest.signed
        )

    async def _send(
        self, kind: str, entry: _Entry, fn: Callable[..., Awaitable[Receipt]], *args: object
    ) -> None:
        """Record the intent, then send; a contract refusal is reported, not raised."""
        node = self.node
        cid = entry.machine.channel_id
        intent = await node.store.add_intent(kind, encode_state(entry.machine.state), cid)
        try:
            receipt = await fn(*args)
        except ContractError as exc:
            await node.store.update_intent(intent, IntentStatus.FAILED)
            log.info("0x%s: %s refused by the contract: %s", cid.hex()[:12], kind, exc)
            return
        except (ChainError, ChannelError) as exc:
            await node.store.update_intent(intent, IntentStatus.FAILED)
            node._emit(Alarm(cid, "ChainTxFailed", f"{kind}: {exc}"))
            return
        tx_hash = bytes.fromhex(receipt.transaction_hash[2:])
        await node.store.update_intent(intent, IntentStatus.CONFIRMED, tx_hash=tx_hash)


def _struct_hash(state: State) -> bytes:
    return state_struct_hash(state)
