"""The node's side of its watchtowers: every fully signed state is streamed to the desk's towers,
and a state counts as backed up only once a tower acked it (the tower answers after its fsync).

At start the towers also help the node establish that it is current: for each channel the node
does not yet know to be current, each tower is asked what it holds. A newer fully signed state
is adopted (the store was an old copy); if every tower answered and none holds anything newer,
the node is current as far as its backups go. A tower that cannot be reached leaves the channel
not known current (the peer or the chain may still settle it).
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
from channels.defence.towerproto import TowerReplyError, decode_held, push_request, tower_call
from channels.runtime.errors import TowerBehind
from channels.runtime.eventbus import EventsLost
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
        self._wakeup = trio.Event()
        self._acks = trio.Event()

    def use(self, towers: Sequence[TowerEndpoint]) -> None:
        """Stream to ``towers`` from now on (the node is created before its config is read)."""
        self.towers = tuple(towers)

    def backed_up(self, channel_id: bytes) -> int:
        """The newest version of the channel a tower has acked (-1: none)."""
        return max(self.acked.get(ChannelId(channel_id), {}).values(), default=-1)

    async def _call(self, tower: TowerEndpoint, request: dict[str, Any]) -> dict[str, Any]:
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
    async def fetch(self, tower: TowerEndpoint, channel_id: bytes) -> SignedState | None:
        reply = await self._call(tower, {"t": "get", "channel": bytes(channel_id)})
        held = decode_held(reply.get("held"))
        if held is None:
            return None
        params, signed = held
        if params.channel_id != channel_id:
            raise TowerReplyError("the tower answered with another channel")
        return signed

    async def establish_current(self) -> None:
        """Ask every tower about every channel not known current; adopt newer states."""
        node = self.node
        for runtime in list(self._runtimes.values()):
            machine = runtime.machine
            if machine.synced:
                continue
            cid = machine.channel_id
            answered = 0
            for tower in self.towers:
                try:
                    held = await self.fetch(tower, cid)
                except (ChannelError, OSError, trio.TooSlowError, ValueError) as exc:
                    log.warning("tower %s:%d did not answer: %s", tower.host, tower.port, exc)
                    continue
                answered += 1
                if held is not None and held.state.version > machine.state.version:
                    old = machine.state.version
                    try:
                        await runtime.apply(ChainStateSeen(held))
                    except ChannelError as exc:
                        node.alarm("TowerStateRefused", str(exc), cid)
                        continue
                    self.restored[cid] = (old, held.state.version)
                    detail = f"v{old} -> v{held.state.version}"
                    node.alarm("RestoredFromTower", detail, cid)
                if held is not None:
                    self._ack(cid, tower.address, held.state.version)
            if answered == len(self.towers) and answered and not machine.synced:
                machine.synced = True  # no tower holds anything newer than we do
                log.info("0x%s: current (towers hold nothing newer)", cid.hex()[:12])

    # streaming ---------------------------------------------------------------------------------
    def _ack(self, cid: ChannelId, tower: Address, version: int) -> None:
        per = self.acked.setdefault(cid, {})
        per[tower] = max(per.get(tower, -1), version)
        self._acks.set()
        self._acks = trio.Event()

    async def hold_signing(self, cid: ChannelId, latest: int) -> None:
        """Return once a new version of the channel may be signed: a tower acked a state at
        most ``max_tower_lag`` versions behind ``latest`` (our newest fully signed one). Waits
        up to ``update_timeout``, then raises :class:`TowerBehind` (and an alarm)."""
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
                reply = await self._call(tower, push_request(runtime.machine.params, signed, book))
                held = int(reply["version"])
            except (ChannelError, OSError, trio.TooSlowError, KeyError, ValueError) as exc:
                self.failures += 1
                ok = False
                log.warning("pushing 0x%s to tower %s failed: %s", cid.hex()[:12], tower.host, exc)
                continue
            self._ack(cid, tower.address, held)
        return ok

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
        async with node.events() as events, trio.open_nursery() as nursery:
            task_status.started()
            await self.establish_current()
            for cid in list(self._runtimes):
                self.mark(cid)
            nursery.start_soon(self._pusher)
            async for event in events:
                if isinstance(event, StateUpdated) and event.channel_id is not None:
                    self.mark(event.channel_id)
                elif isinstance(event, EventsLost):
                    for cid in list(self._runtimes):
                        self.mark(cid)

    async def _pusher(self) -> None:
        while True:
            if not self._dirty:
                self._wakeup = trio.Event()
                with trio.move_on_after(RETRY_EVERY):
                    await self._wakeup.wait()
            dirty, self._dirty = self._dirty, set()
            for cid in dirty:
                if not await self.push(cid):
                    self._dirty.add(cid)  # retried after RETRY_EVERY
            if self._dirty:
                await trio.sleep(RETRY_EVERY)
