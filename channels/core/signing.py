"""secp256k1 signatures over 32-byte digests: 65 bytes ``r ‖ s ‖ v``, v in {27, 28}, low-s.

The same bytes verify with the EVM's ``ecrecover`` and with eth-account. Verification is strict:
malformed lengths, ``r``/``s`` out of range, a high ``s`` (the malleated twin) and a recovery to the
zero address are all refused, because the contract refuses them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import coincurve

from channels.core import eip712
from channels.core.errors import BadSignature, NonCanonicalSignature
from channels.core.hashing import keccak256
from channels.core.model import ZERO_ADDRESS, Address, Digest, check_bytes

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
SIGNATURE_LENGTH = 65


# Signers (docs/PROTOCOL.md section 13) -------------------------------------------------------
# A signer offers one of two methods; the node uses what it offers. ``blocking = True`` says a
# call may wait on I/O (a remote signer): the node then calls it from a worker thread, never
# from the trio loop.
@runtime_checkable
class DigestSigner(Protocol):
    """Signs bare 32-byte EIP-712 digests (a local key, an HSM, a KMS)."""

    @property
    def address(self) -> Address: ...

    def sign_digest(self, digest: bytes) -> bytes:
        """Return a 65-byte low-s ``r ‖ s ‖ v`` signature over a 32-byte digest."""
        ...


@runtime_checkable
class TypedDataSigner(Protocol):
    """Signs ``eth_signTypedData_v4`` messages (a wallet, a keystore, a remote signer)."""

    @property
    def address(self) -> Address: ...

    def sign_typed_data(self, typed_data: dict[str, Any], digest: bytes) -> bytes:
        """Return a 65-byte signature over ``typed_data``; ``digest`` is its EIP-712 digest
        (given so a signer may check it; the signature is checked against it anyway)."""
        ...


#: Whatever holds a channel key.
Signer = DigestSigner | TypedDataSigner


@dataclass(frozen=True, slots=True)
class SignRequest:
    """One signature the node needs: the message, its domain and its digest. The typed-data
    JSON is built only for signers that want it (it costs ~10x the digest)."""

    domain: eip712.Domain
    #: A message of :mod:`channels.core.eip712`, or any other with its ``digest`` and ``encoder``
    #: given (a firm quote, :mod:`channels.core.quotes`).
    message: object
    #: Computed from the message when not given (the core passes the one it already has).
    digest: Digest = field(default=Digest(b""))
    #: ``encoder(domain, message)`` gives the typed-data JSON of a message eip712 does not know.
    encoder: Callable[[eip712.Domain, Any], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.encoder is None and not isinstance(self.message, eip712.SIGNED_MESSAGES):
            raise TypeError(f"no typed-data encoder for {type(self.message).__name__}")
        if not self.digest:
            if not isinstance(self.message, eip712.SIGNED_MESSAGES):
                raise TypeError(f"give the digest of a {type(self.message).__name__}")
            object.__setattr__(self, "digest", eip712.message_digest(self.domain, self.message))

    def typed_data(self) -> dict[str, Any]:
        if self.encoder is not None:
            return self.encoder(self.domain, self.message)
        assert isinstance(self.message, eip712.SIGNED_MESSAGES)
        return eip712.typed_data(self.domain, self.message)


def is_blocking(signer: object) -> bool:
    """Whether ``signer``'s calls may wait on I/O (then call it from a worker thread)."""
    return getattr(signer, "blocking", False) is True


def sign(signer: Signer, request: SignRequest) -> bytes:
    """Have ``signer`` sign ``request`` by the method it offers. A signature from anything but a
    :class:`LocalSigner` is checked: a wallet that signed another digest (or another key) is
    caught here, before the signature reaches the peer or the store."""
    if isinstance(signer, LocalSigner):
        return signer.sign_digest(request.digest)
    by_digest = getattr(signer, "sign_digest", None)
    if callable(by_digest):
        signature = by_digest(request.digest)
    else:
        by_typed = getattr(signer, "sign_typed_data", None)
        if not callable(by_typed):
            raise BadSignature("the signer offers neither sign_digest nor sign_typed_data")
        signature = by_typed(request.typed_data(), request.digest)
    if type(signature) is not bytes:
        raise BadSignature("the signer returned no bytes")
    try:
        verify(request.digest, signature, signer.address)
    except BadSignature as exc:
        raise BadSignature(f"the signer's signature is not valid for its address: {exc}") from exc
    return signature


def sign_message(
    signer: Signer,
    domain: eip712.Domain,
    message: eip712.SignedMessage,
    digest: Digest | None = None,
) -> bytes:
    """Shorthand: sign one message in ``domain`` (``digest``: its digest, if already known)."""
    return sign(signer, SignRequest(domain, message, digest or Digest(b"")))


def public_key_to_address(uncompressed: bytes) -> Address:
    """Ethereum address of a 65-byte uncompressed public key."""
    return Address(keccak256(uncompressed[1:])[12:])


class LocalSigner:
    """A private key held in this process (coincurve)."""

    __slots__ = ("_address", "_key")

    def __init__(self, secret: bytes) -> None:
        check_bytes(secret, 32, "private key")
        try:
            self._key = coincurve.PrivateKey(secret)
        except ValueError as exc:
            raise BadSignature("the private key is not a valid secp256k1 scalar") from exc
        self._address = public_key_to_address(self._key.public_key.format(compressed=False))

    @classmethod
    def from_hex(cls, text: str) -> LocalSigner:
        raw = text[2:] if text.startswith(("0x", "0X")) else text
        try:
            secret = bytes.fromhex(raw.strip())
        except ValueError as exc:
            raise BadSignature("the private key is not hex") from exc
        return cls(secret)

    @classmethod
    def generate(cls) -> LocalSigner:
        return cls(coincurve.PrivateKey().secret)

    @property
    def address(self) -> Address:
        return self._address

    @property
    def secret(self) -> bytes:
        """The raw private key (the node uses it to pay gas when no other key is given)."""
        return bytes(self._key.secret)

    def sign_digest(self, digest: bytes) -> bytes:
        check_bytes(digest, 32, "digest")
        # libsecp256k1 always produces low-s signatures.
        raw = self._key.sign_recoverable(digest, hasher=None)
        return raw[:64] + bytes((raw[64] + 27,))

    def __repr__(self) -> str:  # never show the key
        return f"LocalSigner({self._address.hex()})"


def check_signature_shape(signature: object) -> bytes:
    """Refuse any signature the contract would refuse, before trying to recover it."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_LENGTH:
        raise BadSignature("a signature must be exactly 65 bytes")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise BadSignature(f"signature v must be 27 or 28, got {v}")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise BadSignature("signature r or s out of range")
    if s > HALF_N:
        raise NonCanonicalSignature("signature s is in the upper half (malleated twin)")
    return signature


def recover(digest: bytes, signature: bytes) -> Address:
    """The address that signed ``digest``; raises :class:`BadSignature` for anything malformed."""
    check_bytes(digest, 32, "digest")
    check_signature_shape(signature)
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError / its own errors on bad points
        raise BadSignature("signature does not recover to a public key") from exc
    addr = public_key_to_address(public.format(compressed=False))
    if addr == ZERO_ADDRESS:  # pragma: no cover - needs a keccak preimage of zero
        raise BadSignature("signature recovers to the zero address")
    return addr


def verify(digest: bytes, signature: bytes, expected: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` over ``digest`` is from ``expected``.

    Why recover-then-compare and not ``PublicKey.verify`` against the peer's cached key (which
    would save recovery's square root: measured 44 against 48 µs): ECDSA verification checks
    ``r`` and ``s`` only, never ``v``. A peer could send its valid ``r ‖ s`` with the wrong
    ``v``: it would verify against its key here, yet the contract's ``ecrecover`` recovers
    another address from it and refuses the state, so we would hold a countersigned state we
    cannot enforce. Recovery uses ``v``, so it checks exactly what the chain checks."""
    if recover(digest, signature) != expected:
        raise BadSignature("signature is not from the expected signer")


def malleate(signature: bytes) -> bytes:
    """The high-s twin of a signature (valid for raw ecrecover, refused by us). For tests."""
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
