"""One exception hierarchy for the whole library, rooted in :class:`ChannelError`.

Every error says whose fault it is, as h11 splits them: :class:`LocalProtocolError` means our
caller asked for something illegal; :class:`RemoteProtocolError` means the peer (or the chain, or a
file) sent something illegal. Rule violations carry the name of the rule they break in ``rule``.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Root of every error raised by option-channels."""

    rule: str = "channel"


class LocalProtocolError(ChannelError):
    """Our caller asked for something the protocol does not allow."""


class RemoteProtocolError(ChannelError):
    """The peer (or another outside source) sent something the protocol does not allow."""


class RuleViolation(ChannelError):
    """A proposed transition breaks a rule of the channel or of the options.

    The shell re-raises it as local or remote depending on who proposed the transition; the core
    raises the specific subclass so tests and users can match the rule.
    """


# Value and encoding rules -------------------------------------------------------------------
class InvalidAmount(RuleViolation):
    """An amount is negative, not an int, or does not fit the field (uint256, uint64, ...)."""

    rule = "InvalidAmount"


class InvalidField(RuleViolation):
    """A field has the wrong type or an impossible value (e.g. an address of the wrong length)."""

    rule = "InvalidField"


# Signature rules ------------------------------------------------------------------------------
class BadSignature(ChannelError):
    """A signature is malformed, from the wrong key, or recovers to the zero address."""

    rule = "BadSignature"


class NonCanonicalSignature(BadSignature):
    """A signature has a high s value (its malleated twin); only low-s signatures are valid."""

    rule = "NonCanonicalSignature"


class WrongDomain(RuleViolation):
    """A message is bound to another chain, adjudicator or channel than ours."""

    rule = "WrongDomain"


# State rules ----------------------------------------------------------------------------------
class StaleVersion(RuleViolation):
    """A state's version is not newer than the one we hold."""

    rule = "StaleVersion"


class VersionGap(RuleViolation):
    """A state skips versions; each update must be exactly one version above the previous."""

    rule = "VersionGap"


class Equivocation(RuleViolation):
    """Two different states carry the same version."""

    rule = "Equivocation"


class ConservationViolation(RuleViolation):
    """Balances plus locked collateral do not equal the channel's funding."""

    rule = "ConservationViolation"


class UnconfirmedDeposit(RuleViolation):
    """A state would credit a deposit that is not confirmed on chain."""

    rule = "UnconfirmedDeposit"


class InsufficientFunds(RuleViolation):
    """A payer's free balance cannot cover an amount."""

    rule = "InsufficientFunds"


class ImmutableFieldChanged(RuleViolation):
    """A field fixed at opening (channel id, participants, ...) differs."""

    rule = "ImmutableFieldChanged"


class OpenPositionsAtFinal(RuleViolation):
    """A final state still has open positions."""

    rule = "OpenPositionsAtFinal"


class ChannelFinal(RuleViolation):
    """The channel has a final state; no further update is possible."""

    rule = "ChannelFinal"


# Options rules --------------------------------------------------------------------------------
class InvalidOptionTerms(RuleViolation):
    """Zero strike or quantity, zero collateral, unknown kind, or similar."""

    rule = "InvalidOptionTerms"


class ExpiryTooSoon(RuleViolation):
    """An option expires too early to be settled on chain after a full dispute."""

    rule = "ExpiryTooSoon"


class ExpiryTooLate(RuleViolation):
    """An option expires after the channel's maximum lifetime."""

    rule = "ExpiryTooLate"


class Undercollateralised(RuleViolation):
    """Collateral above what the writer's free balance can lock, or below the required minimum."""

    rule = "Undercollateralised"


class DuplicatePosition(RuleViolation):
    """A position id already exists in the channel."""

    rule = "DuplicatePosition"


class UnknownPosition(RuleViolation):
    """No open position has this id."""

    rule = "UnknownPosition"


class NotExercisable(RuleViolation):
    """A European option cannot be settled before its expiry."""

    rule = "NotExercisable"


class BadAttestation(RuleViolation):
    """A price attestation is not for this position, not signed by the channel's oracle, or <= 0."""

    rule = "BadAttestation"


class TooManyPositions(RuleViolation):
    """The channel already holds the maximum number of open positions."""

    rule = "TooManyPositions"


# Protocol flow --------------------------------------------------------------------------------
class UnexpectedMessage(RemoteProtocolError):
    """A message arrived that the channel's phase does not allow."""

    rule = "UnexpectedMessage"


class IllegalCall(LocalProtocolError):
    """Our caller asked for something the channel's phase does not allow."""

    rule = "IllegalCall"


class TooManyPending(RuleViolation):
    """Too many requests are waiting; the excess is refused."""

    rule = "TooManyPending"


class UnknownChannel(ChannelError):
    """A message names a channel we do not have."""

    rule = "UnknownChannel"


# Wire codec (channels/core/wire.py) -------------------------------------------------------------
class WireError(RemoteProtocolError):
    """Bytes from the peer (or a stored record) cannot be decoded into a protocol object."""

    rule = "WireError"


class MalformedMessage(WireError):
    """Not msgpack, trailing bytes, an ExtType or Timestamp, too deep, or too long."""

    rule = "MalformedMessage"


class SchemaError(MalformedMessage):
    """Valid msgpack that breaks the schema: wrong/missing/unknown/duplicate keys, wrong types,
    wrong byte lengths, or values the data model refuses."""

    rule = "SchemaError"


class UnsupportedVersion(WireError):
    """The message's schema version is not one this codec speaks."""

    rule = "UnsupportedVersion"


class UnknownType(WireError):
    """The message's type tag is not known (or not allowed where it was found)."""

    rule = "UnknownType"


class FrameTooLarge(WireError):
    """A length prefix (or a payload) is above the frame limit; nothing was buffered."""

    rule = "FrameTooLarge"


class UnencodableMessage(LocalProtocolError):
    """Our caller asked to encode a value the wire format cannot carry (wrong type or range)."""

    rule = "UnencodableMessage"


# Transport (channels/transport.py) --------------------------------------------------------------
class TransportError(RemoteProtocolError):
    """The secure connection to the peer failed; the connection is closed when this is raised."""

    rule = "TransportError"


class HandshakeError(TransportError):
    """The Noise handshake failed: bad MAC or length, other prologue, timeout, or early EOF."""

    rule = "HandshakeError"


class PeerAuthError(TransportError):
    """The peer's AUTH is malformed, not bound to this session and role, or names a refused peer."""

    rule = "PeerAuthError"


class BadFrame(TransportError):
    """A transport frame failed decryption (tampered, replayed, reordered) or is malformed."""

    rule = "BadFrame"


class ConnectionClosed(TransportError):
    """The connection is closed (EOF from the peer, reset, or closed by us earlier)."""

    rule = "ConnectionClosed"


class PeerTimeout(ConnectionClosed):
    """The peer was too slow (a frame body, or silence beyond the keepalive limit); we closed."""

    rule = "PeerTimeout"


# Persistence ----------------------------------------------------------------------------------
class StoreError(ChannelError):
    """The node's database cannot be used as asked (the message says why)."""

    rule = "StoreError"


class CorruptStore(StoreError):
    """The database file is damaged: not SQLite, truncated, failing its integrity check, or its
    history chain does not verify. The node must not start (and never signs) on it."""

    rule = "CorruptStore"


class ForeignStore(StoreError):
    """The database belongs to another identity, another chain or adjudicator, or another
    program."""

    rule = "ForeignStore"


class SchemaTooNew(StoreError):
    """The database was written by a newer version of this program (its schema is unknown)."""

    rule = "SchemaTooNew"


class StoreInUse(StoreError):
    """Another process (or another open store) holds the database."""

    rule = "StoreInUse"


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type)]
