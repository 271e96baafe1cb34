"""option-channels: two-party state channels for cash-settled options on EVM chains.

The node (``open_node``, trio, sockets, SQLite) loads lazily, so importing the sans-IO core
(``channels.core``) never pulls in any I/O library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channels.core.errors import ChannelError, LocalProtocolError, RemoteProtocolError
from channels.core.model import Attestation, OptionKind, Params, Position, State
from channels.core.signing import LocalSigner, Signer

if TYPE_CHECKING:
    from channels.runtime.channel import Channel
    from channels.runtime.node import Node, NodeSettings, open_node

_LAZY = {
    "open_node": "channels.runtime.node",
    "Node": "channels.runtime.node",
    "NodeSettings": "channels.runtime.node",
    "Channel": "channels.runtime.channel",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'channels' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Attestation",
    "Channel",
    "ChannelError",
    "LocalProtocolError",
    "LocalSigner",
    "Node",
    "NodeSettings",
    "OptionKind",
    "Params",
    "Position",
    "RemoteProtocolError",
    "Signer",
    "State",
    "open_node",
]
