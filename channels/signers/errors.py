"""Errors of signers and key sources, in the library's one tree (:class:`ChannelError`)."""

from __future__ import annotations

from channels.core.errors import LocalError, RemoteError

__all__ = ["BadSignerReply", "KeySourceError", "SignerUnavailable"]


class SignerUnavailable(RemoteError):
    """The remote signer did not answer in time, refused the connection, or answered with a
    JSON-RPC error (for example the user declined). Retry later or check the endpoint."""


class BadSignerReply(RemoteError):
    """The remote signer answered something unusable: too large, not JSON-RPC, a malformed
    signature or transaction, or one that signs something other than what was asked."""


class KeySourceError(LocalError):
    """A key source is misconfigured: a missing or unreadable file, a key file others can read,
    a wrong password, or an address the signer does not hold. The message says what to do."""
