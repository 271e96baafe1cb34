"""option-channels: two-party state channels for cash-settled options on EVM chains.

The node (``open_node``, trio, sockets, SQLite) loads lazily, so importing the sans-IO core
(``channels.core``) never pulls in any I/O library.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

from channels.core.boundedjson import restore_recursion_limit
from channels.core.errors import ChannelError, LocalError, RemoteError
from channels.core.model import Attestation, OptionKind, Params, Position, SignedState, State
from channels.core.node_events import (
    Alarm,
    ChainEventSeen,
    Event,
    Finality,
    FinalityChanged,
    PeerConnected,
    PeerLost,
    PhaseChangedEvent,
    StateUpdated,
    UpdateRefusedEvent,
)
from channels.core.signing import LocalSigner, Signer

# py_ecc (imported by eth-account) raises the recursion limit to 100,000 when it is first imported;
# at that limit a deeply nested JSON document overflows the C stack (SIGSEGV) instead of raising.
# Import it now, once, and undo that: a later import of it does not run its module code again.
with contextlib.suppress(ImportError):
    importlib.import_module("py_ecc")
restore_recursion_limit()

if TYPE_CHECKING:
    from channels.runtime.channel import Channel
    from channels.runtime.errors import UpdateRefusedError
    from channels.runtime.node import Node, open_node
    from channels.runtime.settings import NodeSettings
    from channels.runtime.views import ChannelInfo

_LAZY = {
    "open_node": "channels.runtime.node",
    "Node": "channels.runtime.node",
    "NodeSettings": "channels.runtime.settings",
    "Channel": "channels.runtime.channel",
    "ChannelInfo": "channels.runtime.views",
    "UpdateRefusedError": "channels.runtime.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'channels' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Alarm",
    "Attestation",
    "ChainEventSeen",
    "Channel",
    "ChannelError",
    "ChannelInfo",
    "Event",
    "Finality",
    "FinalityChanged",
    "LocalError",
    "LocalSigner",
    "Node",
    "NodeSettings",
    "OptionKind",
    "Params",
    "PeerConnected",
    "PeerLost",
    "PhaseChangedEvent",
    "Position",
    "RemoteError",
    "SignedState",
    "Signer",
    "State",
    "StateUpdated",
    "UpdateRefusedError",
    "UpdateRefusedEvent",
    "open_node",
]
