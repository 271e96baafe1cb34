"""Peer links: one authenticated connection per peer, its writer and its reader, with the
per-peer limits (message rate, bad messages) and connectivity as a read-only view."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from channels.core.errors import ChannelError, LocalError, RemoteError
from channels.core.messages import Message
from channels.core.model import Address
from channels.core.node_events import PeerConnected, PeerLost
from channels.core.quote_wire import decode_peer_message, encode_peer_message
from channels.core.quotes import QuoteMessage
from channels.core.signing import Signer
from channels.runtime.eventbus import EventBus
from channels.runtime.settings import NodeSettings
from channels.testing.crash import crash_point
from channels.testing.hooks import FaultHooks
from channels.transport import Prologue, SecureChannel, connect

log = logging.getLogger("channels.runtime.links")

#: At most this many queued messages go out in one socket write (bounds the bytes joined).
MAX_WRITE_BATCH = 256
#: The reader yields to the scheduler at least once per this many messages: the locks on the
#: update path do not when they are free (channels/transport/fastlock.py), and one socket read
#: may hold hundreds of small messages, which must not keep the watcher or the other links
#: waiting.
YIELD_EVERY = 32

#: One queued message: its bytes (None: only flush what ``SecureChannel.send_now`` left over),
#: the crash points its sending passes, and whether a fault cuts the link once it is written
#: (channels/testing/faults.py).
Outgoing = tuple[bytes | None, tuple[str, ...], bool]
PeerHandler = Callable[[Address], Awaitable[None]]
Dispatch = Callable[[Address, Message | QuoteMessage], Awaitable[None]]


@dataclass
class Link:
    peer: Address
    channel: SecureChannel
    outbox: trio.MemorySendChannel[Outgoing]
    inbox: trio.MemoryReceiveChannel[Outgoing]
    #: Messages queued for the writer and not yet written (a message queued and already taken
    #: by the writer is no longer in the channel's buffer, but is still ahead of a new one).
    queued: int = 0


class Links:
    """The node's connections. ``on_up``/``on_down`` run (under the link) when a peer connects or
    is lost; ``dispatch`` handles each decoded message (its errors count as bad messages)."""

    def __init__(
        self,
        *,
        signer: Signer,
        prologue: Prologue,
        settings: NodeSettings,
        bus: EventBus,
        nursery: trio.Nursery,
        dispatch: Dispatch,
        on_up: PeerHandler,
        on_down: PeerHandler,
    ) -> None:
        self._signer = signer
        self._prologue = prologue
        self._settings = settings
        self._bus = bus
        self._nursery = nursery
        self._dispatch = dispatch
        self._on_up = on_up
        self._on_down = on_down
        self._links: dict[Address, Link] = {}
        self._changed = trio.Event()
        self.hooks = FaultHooks()
        #: Messages refused (malformed, or breaking a rule) over the node's life.
        self.bad_messages = 0

    # views ------------------------------------------------------------------------------------
    @property
    def peers(self) -> tuple[Address, ...]:
        """The peers connected now."""
        return tuple(self._links)

    def connected(self, peer: Address) -> bool:
        return peer in self._links

    async def wait_connected(self, peer: Address, connected: bool = True) -> None:
        """Return once ``peer`` is connected (or, with ``connected=False``, once it is not)."""
        while (peer in self._links) is not connected:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # sending ----------------------------------------------------------------------------------
    def send(
        self, peer: Address, message: Message | QuoteMessage, points: tuple[str, ...] = ()
    ) -> None:
        link = self._links.get(peer)
        if link is None:
            return  # the reestablish after reconnecting brings the peer up to date
        fault = self.hooks.on_send(peer, message) if self.hooks.on_send is not None else None
        if fault is not None and not fault.send:
            if fault.close:
                self._nursery.start_soon(link.channel.aclose)
            return
        cut = fault is not None and fault.close
        payload = encode_peer_message(message)
        item: Outgoing = (payload, points, cut)
        if not cut and not link.queued and link.channel.send_now((payload,)):
            # Written now, without a turn of the writer task (nothing was ahead of it).
            if not link.channel.has_backlog:
                for point in points:
                    crash_point(point, "post_send")
                return
            item = (None, points, False)  # the writer flushes the rest, then passes the points
        try:
            link.outbox.send_nowait(item)
            link.queued += 1
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            log.warning("dropping a message to %s: link congested or closed", peer.hex())

    async def disconnect(self, peer: Address) -> None:
        """Close the connection to ``peer`` (if any); a peer we dialled is redialled."""
        link = self._links.get(peer)
        if link is not None:
            await link.channel.aclose()

    # connecting -------------------------------------------------------------------------------
    async def connect(self, endpoint: tuple[str, int], peer: Address) -> None:
        if peer in self._links:
            return
        secure = await connect(
            endpoint[0],
            endpoint[1],
            self._signer,
            peer,
            self._prologue,
            timeout=self._settings.connect_timeout,
            config=self._settings.transport_config(),
        )
        await self._nursery.start(self.run, secure)

    async def serve(self, secure: SecureChannel) -> None:
        """Handler for the listener: run an accepted connection until it ends."""
        await self.run(secure)

    async def run(
        self, secure: SecureChannel, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        peer = secure.peer_address
        out_send, out_receive = trio.open_memory_channel[Outgoing](10_000)
        old = self._links.get(peer)
        link = Link(peer, secure, out_send, out_receive)
        self._links[peer] = link
        self._notify()
        if old is not None:
            await old.channel.aclose()
        self._bus.emit(PeerConnected(None, peer))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, link)
                await self._on_up(peer)
                task_status.started()
                await self._reader(link)
                nursery.cancel_scope.cancel()
        finally:
            if self._links.get(peer) is link:
                del self._links[peer]
                self._notify()
                with trio.CancelScope(shield=True):
                    await self._on_down(peer)
                self._bus.emit(PeerLost(None, peer))
            with trio.CancelScope(shield=True):
                await secure.aclose()

    async def _writer(self, link: Link) -> None:
        try:
            async for first in link.inbox:
                # Send everything already waiting in one socket write (one syscall instead of
                # one per message). Each message was queued only after its persistence was
                # durable, so sending them together changes nothing for write-before-send.
                payloads = [] if first[0] is None else [first[0]]
                fired = list(first[1])
                cut = first[2]
                taken = 1
                while taken < MAX_WRITE_BATCH and not cut:
                    try:
                        payload, points, cut = link.inbox.receive_nowait()
                    except trio.WouldBlock:
                        break
                    taken += 1
                    if payload is not None:
                        payloads.append(payload)
                    fired.extend(points)
                await link.channel.send_many(payloads)  # [] flushes what send_now left
                link.queued -= taken
                for point in fired:
                    crash_point(point, "post_send")
                if cut:  # an injected fault: the link dies right after this message
                    await link.channel.aclose()
                    return
        except (RemoteError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            # The link broke under us: closing it ends the reader, and the usual "peer lost"
            # path runs; what was not sent is recovered by the reestablish on reconnect.
            log.info("link to %s broke while sending", link.peer.hex())
            await link.channel.aclose()

    async def _reader(self, link: Link) -> None:
        settings = self._settings
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
            if in_window % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            try:
                message = decode_peer_message(payload)
                if self.hooks.on_receive is not None:
                    self.hooks.on_receive(link.peer, message)
                await self._dispatch(link.peer, message)
            except (RemoteError, LocalError, ChannelError) as exc:
                self.bad_messages += 1
                bad += 1
                log.info("refused a message from %s: %s", link.peer.hex(), exc)
                if bad > settings.max_bad_messages:
                    log.warning("dropping %s: %d bad messages", link.peer.hex(), bad)
                    return
