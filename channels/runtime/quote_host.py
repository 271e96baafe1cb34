"""The node as its quote desk sees it (:class:`channels.runtime.quoting.QuoteHost`): identity,
store, clock, the channels' machines (to read) and handles (to fill a quote), sending, events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import trio

from channels.core.messages import Message
from channels.core.model import Address, ChannelId
from channels.core.node_events import Event
from channels.core.protocol import ChannelMachine
from channels.core.quotes import QuoteMessage
from channels.core.signing import Signer
from channels.runtime.channel import Channel
from channels.runtime.channel_runtime import ChannelRuntime
from channels.runtime.clock import ChainClock
from channels.runtime.eventbus import EventBus
from channels.store import AsyncStore


class NodeQuoteHost:
    def __init__(
        self,
        *,
        signer: Signer,
        chain_id: int,
        adjudicator: Address,
        store: AsyncStore,
        clock: ChainClock,
        bus: EventBus,
        nursery: trio.Nursery,
        runtimes: Mapping[ChannelId, ChannelRuntime],
        handles: Mapping[ChannelId, Channel],
        send: Callable[[Address, Message | QuoteMessage], None],
    ) -> None:
        self.signer = signer
        self.chain_id = chain_id
        self.adjudicator = adjudicator
        self.store = store
        self._clock = clock
        self._bus = bus
        self._nursery = nursery
        self._runtimes = runtimes
        self._handles = handles
        self._send = send

    @property
    def address(self) -> Address:
        return self.signer.address

    def now(self) -> int:
        return self._clock.now()

    def machine(self, channel_id: bytes) -> ChannelMachine | None:
        runtime = self._runtimes.get(ChannelId(channel_id))
        return runtime.machine if runtime is not None else None

    def channel(self, channel_id: bytes) -> Channel:
        return self._handles[ChannelId(channel_id)]

    def send(self, peer: Address, message: QuoteMessage) -> None:
        self._send(peer, message)

    def emit(self, event: Event) -> None:
        self._bus.emit(event)

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        self._nursery.start_soon(fn, *args)
