"""The narrow interface between the node and its defence.

The node passes a :class:`DefenceHost` to the watcher; the watcher sees each channel as a
:class:`DefendedChannel`: its machine to read, and two ways to act (feed it a chain fact, ask for
deposits to be credited). Nothing else of the node is reachable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from adjudicator.client import AdjudicatorClient
from channels.core.model import Address, Attestation, ChannelId
from channels.core.node_events import Event
from channels.core.protocol import ChannelMachine, Input
from channels.defence.txdriver import TxPolicy
from channels.store.persister import Persister


class DefenceSettings(Protocol):
    """The node settings the defence reads."""

    @property
    def confirmations(self) -> int: ...
    @property
    def chain_poll_interval(self) -> float: ...
    @property
    def funding_timeout(self) -> float: ...
    @property
    def escalate_after(self) -> float | None: ...
    @property
    def expiry_margin(self) -> int: ...
    @property
    def max_head_age(self) -> float: ...
    @property
    def inclusion_window(self) -> int: ...
    @property
    def tx_policy(self) -> TxPolicy | None: ...


class DefendedChannel(Protocol):
    @property
    def machine(self) -> ChannelMachine:
        """For reading only: every change goes through :meth:`apply`."""
        ...

    @property
    def channel_id(self) -> ChannelId: ...

    #: trio time of the last message from the peer on this channel, and of the channel's start.
    @property
    def last_heard(self) -> float: ...
    @property
    def created_at(self) -> float: ...

    async def apply(self, event: Input) -> None:
        """Feed the machine a chain fact; its actions go through the node's executor."""
        ...

    def request_credit(self) -> None:
        """Ask the leader to credit confirmed deposits (a no-op on the follower)."""
        ...


class DefenceHost(Protocol):
    @property
    def address(self) -> Address: ...
    @property
    def chain(self) -> AdjudicatorClient: ...
    @property
    def store(self) -> Persister: ...
    @property
    def settings(self) -> DefenceSettings: ...
    @property
    def head_timestamp(self) -> int:
        """The newest block's timestamp, as the node's clock last read it."""
        ...

    def now(self) -> int:
        """Chain time."""
        ...

    async def refresh_chain_time(self) -> None: ...

    def emit(self, event: Event) -> None: ...

    def is_connected(self, peer: Address) -> bool:
        """Whether the node holds a link to ``peer`` now."""
        ...

    def defended(self) -> Sequence[DefendedChannel]:
        """Every channel of the node, in a stable order."""
        ...

    def attestation(self, underlying: bytes, expiry: int) -> tuple[Attestation, bytes] | None:
        """The oracle's signed price the node was given for ``underlying`` at ``expiry``."""
        ...
