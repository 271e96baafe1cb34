"""The node as its defence sees it: :class:`channels.defence.host.DefenceHost`, over the node's
services and its registry of channel runtimes, and nothing more."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from adjudicator.client import AdjudicatorClient
from channels.core.model import Address, Attestation, ChannelId
from channels.core.node_events import Event
from channels.runtime.attestations import AttestationBook
from channels.runtime.channel_runtime import ChannelRuntime
from channels.runtime.context import RuntimeContext
from channels.runtime.settings import NodeSettings
from channels.store.persister import Persister


class NodeDefenceHost:
    def __init__(
        self,
        ctx: RuntimeContext,
        store: Persister,
        runtimes: Mapping[ChannelId, ChannelRuntime],
        attestations: AttestationBook,
        is_connected: Callable[[Address], bool],
    ) -> None:
        self.is_connected = is_connected
        self._ctx = ctx
        self._store = store
        self._runtimes = runtimes
        self._attestations = attestations

    @property
    def address(self) -> Address:
        return self._ctx.address

    @property
    def chain(self) -> AdjudicatorClient:
        return self._ctx.chain

    @property
    def store(self) -> Persister:
        return self._store

    @property
    def settings(self) -> NodeSettings:
        return self._ctx.settings

    @property
    def head_timestamp(self) -> int:
        return self._ctx.clock.head_timestamp

    def now(self) -> int:
        return self._ctx.clock.now()

    async def refresh_chain_time(self) -> None:
        await self._ctx.clock.refresh()

    def emit(self, event: Event) -> None:
        self._ctx.bus.emit(event)

    def defended(self) -> Sequence[ChannelRuntime]:
        return list(self._runtimes.values())

    def attestation(self, underlying: bytes, expiry: int) -> tuple[Attestation, bytes] | None:
        return self._attestations.get(underlying, expiry)
