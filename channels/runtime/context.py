"""What every channel runtime of one node shares: the node's services, passed down, never a
reference back to the node."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import trio

from adjudicator.client import AdjudicatorClient
from channels.core.model import Address, ChannelId, Params
from channels.core.options import Trade
from channels.core.protocol import Action
from channels.runtime.clock import ChainClock
from channels.runtime.eventbus import EventBus
from channels.runtime.executor import Executor
from channels.runtime.settings import NodeSettings


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    address: Address
    chain: AdjudicatorClient
    settings: NodeSettings
    clock: ChainClock
    bus: EventBus
    executor: Executor
    #: The node's nursery: background tasks of a channel (pump, credit, funding) live here.
    nursery: trio.Nursery
    #: Request ids, unique across the node's channels.
    request_ids: Iterator[int]
    #: Told of every applied update (channel, version, trades): the quote desk settles fills.
    on_update: Callable[[ChannelId, int, tuple[Trade, ...]], None]
    #: Told after every machine step of what it produced (None: it raised): the quote desk
    #: gives back fills that were checked and then not signed (channels/runtime/quote_fills.py).
    after_step: Callable[[ChannelId, list[Action] | None], None]
    #: consent: entered around sending a deposit of (params, amount): raises GasReserveTooLow
    #: if it would cut into the gas reserve that defends our channels, and keeps any other
    #: deposit of the node from being checked until this one is sent and mined
    #: (channels/runtime/gatekeeper.py).
    spending: Callable[[Params, int], AbstractAsyncContextManager[None]]
    #: Returns once (channel, our newest fully signed version, the version to sign) may be
    #: signed as far as our watchtowers go, else raises TowerBehind
    #: (channels/runtime/towerclient.py).
    hold_signing: Callable[[ChannelId, int, int], Awaitable[None]]
    #: Whether (channel, version) is inside a lease a tower acked (or no tower gate is set):
    #: checked under the channel's lock, right before the step that signs it.
    signing_covered: Callable[[ChannelId, int], bool]
