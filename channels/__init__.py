"""option-channels: two-party state channels for cash-settled options on EVM chains."""

from channels.core.errors import ChannelError, LocalProtocolError, RemoteProtocolError
from channels.core.model import OptionKind, Params, Position, State
from channels.core.signing import LocalSigner, Signer

__all__ = [
    "ChannelError",
    "LocalProtocolError",
    "LocalSigner",
    "OptionKind",
    "Params",
    "Position",
    "RemoteProtocolError",
    "Signer",
    "State",
]
