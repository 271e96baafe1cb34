"""option-channels: two-party state channels for cash-settled options on EVM chains.

The node (``open_node``, trio, sockets, SQLite) loads lazily, so importing the sans-IO core
(``channels.core``) never pulls in any I/O library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channels.core.errors import ChannelError, LocalError, RemoteError
from channels.core.model import Attestation, OptionKind, Params, Position, State
from channels.core.signing import LocalSigner, Signer

if TYPE_CHECKING:
    from channels.channel import Channel
    from channels.node import Node, NodeSettings, open_node

_LAZY = {
    "open_node": "channels.node",
    "Node": "channels.node",
    "NodeSettings": "channels.node",
    "Channel": "channels.channel",
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
    "LocalError",
    "LocalSigner",
    "Node",
    "NodeSettings",
    "OptionKind",
    "Params",
    "Position",
    "RemoteError",
    "Signer",
    "State",
    "open_node",
]
