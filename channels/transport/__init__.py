"""The trio shell of the authenticated, encrypted transport.

The framing, cipher and login rules are sans-IO and live in :mod:`channels.core.secure_session`;
this package only moves bytes between them and a trio stream, with timeouts:
:mod:`~channels.transport.secure_channel` (an open connection) and
:mod:`~channels.transport.handshake` (opening one: dial, listen, handshake).
"""

from channels.core.secure_session import (
    DEFAULT_CONFIG,
    MAX_CHUNK,
    MAX_FRAME,
    NOISE_PROTOCOL_NAME,
    PROTOCOL_ID,
    ROLE_INITIATOR,
    ROLE_RESPONDER,
    BadFrame,
    ConnectionClosed,
    HandshakeError,
    PeerAuthError,
    PeerTimeout,
    Prologue,
    TransportConfig,
    TransportError,
    auth_digest,
    auth_request,
)
from channels.transport.handshake import connect, initiate, respond, serve
from channels.transport.secure_channel import SecureChannel

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_CHUNK",
    "MAX_FRAME",
    "NOISE_PROTOCOL_NAME",
    "PROTOCOL_ID",
    "ROLE_INITIATOR",
    "ROLE_RESPONDER",
    "BadFrame",
    "ConnectionClosed",
    "HandshakeError",
    "PeerAuthError",
    "PeerTimeout",
    "Prologue",
    "SecureChannel",
    "TransportConfig",
    "TransportError",
    "auth_digest",
    "auth_request",
    "connect",
    "initiate",
    "respond",
    "serve",
]
