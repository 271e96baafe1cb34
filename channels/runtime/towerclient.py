"""The node's side of its watchtowers: every fully signed state is streamed to the desk's towers,
and a state counts as backed up only once a tower acked it (the tower answers after its fsync).

At start the towers also help the node establish that it is current: for each channel the node
does not yet know to be current, each tower is asked what it holds. A newer fully signed state
is adopted (the store was an old copy); if every tower answered and none holds anything newer,
the node is current as far as its backups go. A tower that cannot be reached leaves the channel
not known current (the peer or the chain may still settle it); the towers are asked again every
``RETRY_EVERY`` seconds while any channel is not known current.

The towers also keep the version lease (``self.leases``, channels/runtime/towerlease.py): taken
back at every start before anything new is signed, and a version is signed only inside a lease
a tower acked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from channels.core.errors import ChannelError
from channels.core.model import Address, ChannelId, SignedState, State
from channels.core.node_events import StateUpdated
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.protocol import ChainStateSeen
from channels.defence.towerproto import (
    TowerReplyError,
    decode_held,
    decode_held_book,
    push_request,
    tower_call,
)
from channels.runtime.errors import TowerBehind
from channels.runtime.eventbus import EventsLost
from channels.runtime.towerlease import TOWER_FAILURES, LeaseBackup
from channels.store.ops import StoredChannel
from channels.transport import Prologue

# The node is taken as ``Any``: it creates this client, so this module may not import it, even
# for type checking (import-linter: no cycles).
Node = Any

log = logging.getLogger("channels.towers")

REQUEST_TIMEOUT = 10.0
RETRY_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class TowerEndpoint:
    """One of the desk's watchtowers: where it listens and the key it proves."""

    host: str
    port: int
    address: Address


class TowerClient:
    """Streams states to the towers and remembers what each acked (create with the node)."""

    def __init__(
        self, node: Node, towers: Sequence[TowerEndpoint], runtimes: Mapping[ChannelId, Any]
    ) -> None:
        self.node = node
        #: The node's channel runtimes by id (the node passes its registry in, read only).
        self._runtimes = runtimes
        self.towers = tuple(towers)
        self.acked: dict[ChannelId, dict[Address, int]] = {}
        self.failures = 0
        #: Channels whose store was behind a tower at start: (our version, the tower's).
        self.restored: dict[ChannelId, tuple[int, int]] = {}
        self._dirty: set[ChannelId] = set()
        #: Towers whose last request failed (their outage is logged once).
        self._unanswered: set[Address] = set()
        #: The newer version a tower holds that we could not adopt (its positions unknown).
        self._not_adopted: dict[ChannelId, int] = {}
        self._wakeup = trio.Event()
        self._acks = trio.Event()
        #: The version leases backed up to the towers (channels/runtime/towerlease.py).
        self.leases = LeaseBackup(self, RETRY_EVERY)

    @property
    def runtimes(self) -> Mapping[ChannelId, Any]:
        return self._runtimes

    def use(self, towers: Sequence[TowerEndpoint]) -> None:
        """Stream to ``towers`` from now on (the node is created before its config is read)."""
        self.towers = tuple(towers)

    def backed_up(self, channel_id: bytes) -> int:
        """The newest version of the channel a tower has acked (-1: none)."""
        return max(self.acked.get(ChannelId(channel_id), {}).values(), default=-1)

    async def call(self, tower: TowerEndpoint, request: dict[str, Any]) -> dict[str, Any]:
        """One authenticated request to ``tower`` and its reply."""
        node = self.node
        prologue = Prologue(node.chain_id, Address(node.chain.address))
        return await tower_call(
            (tower.host, tower.port),
            tower.address,
            node.signer,
            prologue,
            request,
            timeout=REQUEST_TIMEOUT,
        )

    # establishing that we are current ----------------------------------------------------------
    async def fetch(
        self, tower: TowerEndpoint, channel_id: bytes
    ) -> tuple[SignedState, BookSnapshot | None] | None:
        """The state the tower holds for the channel, with its open positions if it kept them
        (checked against the state's commitment); None if it holds nothing."""
        reply = await self.call(tower, {"t": "get", "channel": bytes(channel_id)})
        held = decode_held(reply.get("held"))
        if held is None:
            return None
        params, signed = held
        if params.channel_id != channel_id:
            raise TowerReplyError("the tower answered with another channel")
        return signed, decode_held_book(reply.get("held"), signed.state)

    async def establish_current(self) -> None:
        """Ask every tower about every channel not known current; adopt newer states."""
        node = self.node
        for runtime in list(self._runtimes.values()):
            machine = runtime.machine
            if machine.synced:
                continue
            cid = machine.channel_id
            answered = 0
            behind = False  # a tower holds a newer state we could not adopt
            for tower in self.towers:
                try:
                    fetched = await self.fetch(tower, cid)
                except TOWER_FAILURES as exc:
                    self.silent(tower, f"is 0x{cid.hex()[:12]} current? {exc}")
                    continue
                self.answered(tower)
                answered += 1
                if fetched is None:
                    continue
                held, book = fetched
                if self._not_adopted.get(cid) == held.state.version:
                    behind = True  # asked again: still the state we could not adopt
                    continue
                if held.state.version > machine.state.version:
                    old = machine.state.version
                    # A newer state we cannot adopt leaves us behind, or unsure (the peer can
                    # still tell): not current. Each is said once, not at every asking.
                    try:
                        await runtime.apply(ChainStateSeen(held, book))
                    except ChannelError as exc:
                        behind = True
                        self._not_adopted[cid] = held.state.version
                        node.alarm("TowerStateRefused", str(exc), cid)
                        continue
                    if machine.state.version < held.state.version:
                        # Its open positions are not ours and the tower did not keep them.
                        behind = True
                        self._not_adopted[cid] = held.state.version
                        detail = f"v{old} < the tower's v{held.state.version} (positions unknown)"
                        node.alarm("TowerStateNotAdopted", detail, cid)
                        continue
                    self.restored[cid] = (old, held.state.version)
                    detail = f"v{old} -> v{held.state.version}"
                    node.alarm("RestoredFromTower", detail, cid)
                self._ack(cid, tower.address, held.state.version)
            if behind:
                machine.synced = False
            elif answered == len(self.towers) and answered and not machine.synced:
                machine.synced = True  # no tower holds anything newer than we do
                log.info("0x%s: current (towers hold nothing newer)", cid.hex()[:12])

    # streaming ---------------------------------------------------------------------------------
    def _ack(self, cid: ChannelId, tower: Address, version: int) -> None:
        per = self.acked.setdefault(cid, {})
        per[tower] = max(per.get(tower, -1), version)
        self._acks.set()
        self._acks = trio.Event()

    async def hold_signing(self, cid: ChannelId, latest: int, version: int) -> None:
        """Return once ``version`` of the channel may be signed: a tower acked a lease covering
        it and a state at most ``max_tower_lag`` versions behind ``latest`` (our newest fully
        signed one). Waits up to ``update_timeout`` for each, then raises :class:`TowerBehind`
        (and an alarm)."""
        await self.leases.hold(cid, version)
        settings = self.node.settings
        lag = settings.max_tower_lag
        if not self.towers or lag is None or latest - self.backed_up(cid) <= lag:
            return
        self.mark(cid)
        with trio.move_on_after(settings.update_timeout):
            while latest - self.backed_up(cid) > lag:
                await self._acks.wait()
            return
        detail = (
            f"the towers acked v{self.backed_up(cid)}, our newest is v{latest}: a new version is "
            f"signed only within {lag} of a backed-up state (bring a tower back, or raise "
            "max_tower_lag)"
        )
        self.node.alarm("TowerBehind", detail, cid)
        raise TowerBehind(detail)

    def mark(self, channel_id: ChannelId) -> None:
        self._dirty.add(channel_id)
        self._wakeup.set()

    async def push(self, cid: ChannelId) -> bool:
        """Push the channel's newest fully signed state to every tower; True if all acked."""
        runtime = self._runtimes.get(cid)
        if runtime is None:
            return True
        signed = runtime.machine.latest.signed
        if not signed.fully_signed:
            return True
        ok = True
        book = None
        for tower in self.towers:
            if self.acked.get(cid, {}).get(tower.address, -1) >= signed.state.version:
                continue
            if book is None and signed.state.position_count:
                book = await self._book_of(cid, signed.state)
            try:
                reply = await self.call(tower, push_request(runtime.machine.params, signed, book))
                held = int(reply["version"])
            except TOWER_FAILURES as exc:
                self.failures += 1
                ok = False
                self.silent(tower, f"pushing 0x{cid.hex()[:12]} failed: {exc}")
                continue
            self.answered(tower)
            self._ack(cid, tower.address, held)
        return ok

    def silent(self, tower: TowerEndpoint, what: str) -> None:
        """A tower did not answer: said once per outage (it is retried every RETRY_EVERY s;
        ``failures`` counts every attempt)."""
        if tower.address in self._unanswered:
            log.debug("tower %s:%d: %s", tower.host, tower.port, what)
            return
        self._unanswered.add(tower.address)
        log.warning(
            "tower %s:%d does not answer (retried every %.0f s): %s",
            tower.host, tower.port, RETRY_EVERY, what,
        )  # fmt: skip

    def answered(self, tower: TowerEndpoint) -> None:
        if tower.address in self._unanswered:
            self._unanswered.discard(tower.address)
            log.info("tower %s:%d answers again", tower.host, tower.port)

    async def _book_of(self, cid: ChannelId, state: State) -> BookSnapshot | None:
        """The open positions of ``state`` (what a rebuild needs besides the state), from the
        machine when it has nothing in flight, else from the store; None if neither is at it."""
        book: PositionBook = self._runtimes[cid].machine.book
        if not book.pending_change_sets and book.root == state.positions_root:
            return book.snapshot()
        stored: StoredChannel = await self.node.store.load_channel(cid)
        if stored.latest.signed.state == state:
            return stored.book.snapshot()
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        node.store.on_lease = self.leases.on_lease
        async with node.events() as events, trio.open_nursery() as nursery:
            task_status.started()
            # Nothing new is signed before this (hold_signing waits for it): a restored store
            # resumes above every lease a tower holds.
            await self.leases.take_from_towers()
            nursery.start_soon(self.leases.pusher)
            await self.establish_current()
            for cid in list(self._runtimes):
                self.mark(cid)
            nursery.start_soon(self._pusher)
            nursery.start_soon(self._keep_establishing)
            async for event in events:
                if isinstance(event, StateUpdated) and event.channel_id is not None:
                    self.mark(event.channel_id)
                elif isinstance(event, EventsLost):
                    for cid in list(self._runtimes):
                        self.mark(cid)

    async def _keep_establishing(self) -> None:
        """Ask the towers again while a channel is not known current: a tower that was down at
        the start (and the peer still away) brings an old copy up to date once it is back."""
        while True:
            await trio.sleep(RETRY_EVERY)
            if any(not r.machine.synced for r in list(self._runtimes.values())):
                await self.establish_current()

    async def _pusher(self) -> None:
        while True:
            if not self._dirty:
                self._wakeup = trio.Event()
                with trio.move_on_after(RETRY_EVERY):
                    await self._wakeup.wait()
            dirty, self._dirty = self._dirty, set()
            failed = {cid for cid in dirty if not await self.push(cid)}
            if failed:
                self._dirty |= failed  # retried after RETRY_EVERY
                await trio.sleep(RETRY_EVERY)
            # States marked while a push was out go at once: with max_tower_lag 0 the next
            # version waits for their ack.
