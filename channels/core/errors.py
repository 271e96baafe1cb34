"""One exception tree for the whole library, rooted in :class:`ChannelError`.

Every concrete error says whose fault it is (as h11 splits them): a :class:`LocalError` means our
caller asked for something illegal or unusable (fix the call); a :class:`RemoteError` means
something outside us sent or did something illegal: the peer, the chain or its RPC node, a file
on disk (nothing our caller can fix by calling differently). ``rule`` names the rule an error
breaks: the class name, set automatically unless a class names its rule itself.

:class:`RuleViolation` groups the channel's and the options' rules so a proposal's refusal can be
told to the peer as ``Reject(rule=...)``. A rule is Local when our own proposals break it (a
peer's proposal that breaks it never raises: the machine answers with a ``Reject``), Remote when
only the peer's messages can break it.

Chain errors (:class:`ChainError` and the adjudicator's reverts in ``adjudicator/errors.py``),
transport errors and store errors hang from the same tree. ``tests/core/test_error_tree.py``
checks that every concrete class is exactly one of Local and Remote.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Root of every error raised by option-channels."""

    rule: str = "ChannelError"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "rule" not in cls.__dict__:  # a class may name its rule; by default it is its name
            cls.rule = cls.__name__


class LocalError(ChannelError):
    """Our caller asked for something the library does not allow (or cannot do as asked)."""


class RemoteError(ChannelError):
    """The peer, the chain or another outside source broke a rule or failed."""


class RuleViolation(ChannelError):
    """A proposed transition breaks a rule of the channel or of the options (a grouping only:
    each rule below is also Local or Remote)."""


# Value and encoding rules -------------------------------------------------------------------
class InvalidAmount(RuleViolation, LocalError):
    """An amount is negative, not an int, or does not fit the field (uint256, uint64, ...)."""


class InvalidField(RuleViolation, LocalError):
    """A field has the wrong type or an impossible value (e.g. an address of the wrong length)."""


# Signature and domain rules -------------------------------------------------------------------
class BadSignature(RemoteError):
    """A signature is malformed, from the wrong key, or recovers to the zero address."""


class NonCanonicalSignature(BadSignature):
    """A signature has a high s value (its malleated twin); only low-s signatures are valid."""


class WrongDomain(RuleViolation, RemoteError):
    """A message is bound to another chain, adjudicator or channel than ours."""


# State rules ----------------------------------------------------------------------------------
class StaleVersion(RuleViolation, RemoteError):
    """A state's version is not newer than the one we hold."""


class VersionGap(RuleViolation, RemoteError):
    """A state skips versions; each update must be exactly one version above the previous."""


class Equivocation(RuleViolation, RemoteError):
    """Two different states carry the same version."""


class StateMismatch(RuleViolation, RemoteError):
    """A state from the peer is not what its trades (or its positions) produce."""


class ConservationViolation(RuleViolation, LocalError):
    """Balances plus locked collateral do not equal the channel's funding."""


class UnconfirmedDeposit(RuleViolation, LocalError):
    """A state would credit a deposit that is not confirmed on chain."""


class InsufficientFunds(RuleViolation, LocalError):
    """A payer's free balance in the channel cannot cover an amount."""


class OpenPositionsAtFinal(RuleViolation, LocalError):
    """A final state still has open positions."""


class ChannelFinal(RuleViolation, LocalError):
    """The channel has a final state; no further update is possible."""


class PolicyRefused(RuleViolation, LocalError):
    """A pre-trade risk check installed by the bot refused the update."""


# Options rules --------------------------------------------------------------------------------
class InvalidOptionTerms(RuleViolation, LocalError):
    """Zero strike or quantity, zero collateral, unknown kind, or similar."""


class ExpiryTooSoon(RuleViolation, LocalError):
    """An option expires too early to be settled on chain after a full dispute."""


class ExpiryTooLate(RuleViolation, LocalError):
    """An option expires after the channel's maximum lifetime."""


class DuplicatePosition(RuleViolation, LocalError):
    """A position id already exists in the channel."""


class UnknownPosition(RuleViolation, LocalError):
    """No open position has this id."""


class NotExercisable(RuleViolation, LocalError):
    """A European option cannot be settled before its expiry."""


class BadAttestation(RuleViolation, LocalError):
    """A price attestation is not for this position, not signed by the channel's oracle, or <= 0."""


class TooManyPositions(RuleViolation, LocalError):
    """The channel already holds the maximum number of open positions."""


class TooManyPending(RuleViolation, LocalError):
    """Too many requests are waiting; the excess is refused."""


# Protocol flow --------------------------------------------------------------------------------
class UnexpectedMessage(RemoteError):
    """A message arrived that the channel's phase (or our role) does not allow."""


class IllegalCall(LocalError):
    """Our caller asked for something the channel's phase does not allow."""


class UnknownChannel(LocalError):
    """Our caller named a channel we do not have."""


# Wire codec (channels/core/wire.py) -------------------------------------------------------------
class WireError(RemoteError):
    """Bytes from the peer (or a stored record) cannot be decoded into a protocol object."""


class MalformedMessage(WireError):
    """Not msgpack, trailing bytes, an ExtType or Timestamp, too deep, or too long."""


class SchemaError(MalformedMessage):
    """Valid msgpack that breaks the schema: wrong/missing/unknown/duplicate keys, wrong types,
    wrong byte lengths, or values the data model refuses."""


class UnsupportedVersion(WireError):
    """The message's schema version is not one this codec speaks."""


class UnknownType(WireError):
    """The message's type tag is not known (or not allowed where it was found)."""


class FrameTooLarge(WireError):
    """A length prefix (or a payload) is above the frame limit; nothing was buffered."""


class UnencodableMessage(LocalError):
    """Our caller asked to encode a value the wire format cannot carry (wrong type or range)."""


# The chain --------------------------------------------------------------------------------------
class ChainError(RemoteError):
    """The chain or its RPC node failed or refused (``adjudicator.rpc`` and
    ``adjudicator.transactions`` raise the concrete kinds)."""


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type)]
