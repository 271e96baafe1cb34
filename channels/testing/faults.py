"""Fault injection for tests (like ``trio.testing``): cut a node's link around a chosen message,
watch what a node receives. Each helper arms one of the node's ``fault_hooks``
(:mod:`channels.testing.hooks`); nothing here patches the node's methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

import trio

from channels.core.messages import Message
from channels.core.model import Address
from channels.core.quotes import QuoteMessage
from channels.testing.hooks import FaultHooks, SendFault


class Node(Protocol):
    """A node (:class:`channels.runtime.node.Node`), as far as fault injection needs one."""

    @property
    def fault_hooks(self) -> FaultHooks: ...


def cut_link_on_send(
    node: Node, kind: type[Message], when: Literal["before", "after"], fired: trio.Event
) -> None:
    """Cut ``node``'s link the next time it sends a ``kind`` message: ``"before"`` drops the
    message and closes the link, ``"after"`` closes the link as soon as the message is written
    to the socket (however long the writer takes to get there, so an "after" case never turns
    into a "before" one on a loaded machine). Sets ``fired`` when it does; later messages pass
    untouched."""

    def on_send(peer: Address, message: Message | QuoteMessage) -> SendFault | None:
        if fired.is_set() or not isinstance(message, kind):
            return None
        fired.set()
        return SendFault(send=when == "after", close=True)

    node.fault_hooks.on_send = on_send


def tap_received(node: Node, tap: Callable[[Address, Message | QuoteMessage], None]) -> None:
    """Call ``tap(peer, message)`` with every decoded message ``node`` receives, before it is
    handled (a recorder for test harnesses)."""
    node.fault_hooks.on_receive = tap


def clear(node: Node) -> None:
    """Disarm every hook."""
    node.fault_hooks.on_send = None
    node.fault_hooks.on_receive = None
