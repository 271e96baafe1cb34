"""Fault-injection points the runtime calls (like ``trio.testing``'s): set only through
:mod:`channels.testing.faults`, which says what each one is for. All are off by default and cost
one attribute test each when off. The runtime imports this module; nothing here imports the
runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from channels.core.messages import Message
from channels.core.model import Address
from channels.core.quotes import QuoteMessage


@dataclass(frozen=True, slots=True)
class SendFault:
    """What to do to the link instead of (or around) sending one message."""

    #: Queue the message (True) or drop it (False).
    send: bool
    #: Cut the link: at once for a dropped message; for a queued one, once the link's writer has
    #: put it on the wire (nothing queued after it goes out on that link).
    close: bool


@dataclass(slots=True)
class FaultHooks:
    #: Called for each message about to be queued to a peer; a fault, or None to send normally.
    on_send: Callable[[Address, Message | QuoteMessage], SendFault | None] | None = None
    #: Called with each decoded message from a peer before the node handles it.
    on_receive: Callable[[Address, Message | QuoteMessage], None] | None = None
