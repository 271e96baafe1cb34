"""The sans-IO half of the secure transport: framing, the Noise cipher with rekeying, the
handshake steps and the AUTH login. No sockets, no clock: :mod:`channels.transport` feeds bytes
in and writes the bytes these functions return (the wire format is described there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from channels.core import eip712
from channels.core.errors import (
    ChannelError,
    FrameTooLarge,
    InvalidField,
    RemoteError,
    UnencodableMessage,
)
from channels.core.model import Address
from channels.core.signing import SIGNATURE_LENGTH, SignRequest, recover
from channels.core.wire import MAX_MESSAGE


# Errors (under the one error tree; re-exported by channels.transport) ---------------------------
class TransportError(RemoteError):
    """The secure connection to the peer failed; the connection is closed when this is raised."""


class HandshakeError(TransportError):
    """The Noise handshake failed: bad MAC or length, other prologue, timeout, or early EOF."""


class PeerAuthError(TransportError):
    """The peer's AUTH is malformed, not bound to this session and role, or names a refused peer."""


class BadFrame(TransportError):
    """A transport frame failed decryption (tampered, replayed, reordered) or is malformed."""


class ConnectionClosed(TransportError):
    """The connection is closed (EOF from the peer, reset, or closed by us earlier)."""


class PeerTimeout(ConnectionClosed):
    """The peer was too slow (a frame body, or silence beyond the keepalive limit); we closed."""


class NoiseState(Protocol):
    """A Noise handshake and, once it is done, its two transport ciphers (the ``noiseprotocol``
    package's ``NoiseConnection``, created by the transport shell)."""

    def write_message(self, payload: bytes = b"") -> bytearray: ...
    def read_message(self, data: bytes) -> bytearray: ...
    def get_handshake_hash(self) -> bytes: ...
    def encrypt(self, data: bytes) -> bytes: ...
    def decrypt(self, data: bytes) -> bytes: ...
    def rekey_outbound_cipher(self) -> None: ...
    def rekey_inbound_cipher(self) -> None: ...


NOISE_PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_SHA256"
PROTOCOL_ID: Final = b"optchan/1"
ROLE_INITIATOR: Final = 0x01
ROLE_RESPONDER: Final = 0x02

TAG_LENGTH: Final = 16
MAX_FRAME: Final = 0xFFFF  # ciphertext bytes behind one 2-byte length prefix
MAX_PLAINTEXT: Final = MAX_FRAME - TAG_LENGTH
MAX_CHUNK: Final = MAX_PLAINTEXT - 1  # one flag byte per chunk
FLAG_LAST: Final = 0x00
FLAG_MORE: Final = 0x01

DH_LENGTH: Final = 32
#: Exact lengths of the three XX messages with empty payloads: e | e, ee, s, es | s, se.
ACT_LENGTHS: Final = (
    DH_LENGTH,
    DH_LENGTH + (DH_LENGTH + TAG_LENGTH) + TAG_LENGTH,
    (DH_LENGTH + TAG_LENGTH) + TAG_LENGTH,
)
AUTH_LENGTH: Final = 20 + SIGNATURE_LENGTH
#: The most bytes worth reading from a stream at once: one whole frame.
RECEIVE_SIZE: Final = 2 + MAX_FRAME


# Configuration ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Prologue:
    """What both ends must agree on before any byte is trusted: protocol, chain and deployment."""

    chain_id: int
    adjudicator: Address
    protocol: bytes = PROTOCOL_ID

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 0 <= self.chain_id < 2**256:
            raise InvalidField("chain id must be an int in [0, 2**256)")
        if type(self.adjudicator) is not bytes or len(self.adjudicator) != 20:
            raise InvalidField("adjudicator must be 20 raw bytes")
        if type(self.protocol) is not bytes or not 0 < len(self.protocol) <= 64:
            raise InvalidField("protocol id must be 1..64 bytes")

    def to_bytes(self) -> bytes:
        """``protocol ‖ chainId (32 B big-endian) ‖ adjudicator (20 B)``; fixed-width tail, so
        the encoding is unambiguous."""
        return self.protocol + self.chain_id.to_bytes(32, "big") + self.adjudicator


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Limits and timers of one connection (and of the listener, ``serve``)."""

    handshake_timeout: float = 5.0
    """Seconds for the whole handshake including both AUTH frames (LND uses 5 s)."""
    read_timeout: float = 30.0
    """Seconds for a message to arrive in full once its first byte has arrived."""
    keepalive_interval: float | None = None
    """If set to N: send an empty frame after N s without sending, and close after 3N s
    without receiving. Runs inside ``SecureChannel.receive``."""
    max_message_size: int = MAX_MESSAGE
    """Largest application message, both to send and to accept (reassembled size); the wire
    codec's limit by default."""
    rekey_interval: int = 1000
    """Rekey each direction after this many frames."""
    max_unauthenticated: int = 64
    """``serve`` only: connections still in the handshake; a new one beyond this closes the
    oldest (so silent connections cannot keep a real peer out)."""

    def __post_init__(self) -> None:
        for name in ("handshake_timeout", "read_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise InvalidField(f"{name} must be > 0")
        if self.keepalive_interval is not None and not self.keepalive_interval > 0:
            raise InvalidField("keepalive_interval must be > 0 or None")
        for name in ("max_message_size", "rekey_interval", "max_unauthenticated"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise InvalidField(f"{name} must be a positive int")


DEFAULT_CONFIG: Final = TransportConfig()


def auth_request(prologue: Prologue, role: int, handshake_hash: bytes) -> SignRequest:
    """What a side signs in its AUTH frame: the EIP-712 ``Login`` of this session and role, in
    the adjudicator's domain (docs/PROTOCOL.md section 12), so any typed-data wallet can sign it."""
    domain = eip712.Domain(prologue.chain_id, prologue.adjudicator)
    return SignRequest(domain, eip712.Login(role, handshake_hash))


def auth_digest(prologue: Prologue, role: int, handshake_hash: bytes) -> bytes:
    """The 32-byte digest a side signs in its AUTH frame."""
    return bytes(auth_request(prologue, role, handshake_hash).digest)


# Noise cipher with rekeying -------------------------------------------------------------------
class Cipher:
    """The two transport CipherStates of a finished handshake, with frame counters."""

    __slots__ = ("_noise", "_received", "_rekey_interval", "_sent")

    def __init__(self, noise: NoiseState, rekey_interval: int) -> None:
        self._noise = noise
        self._rekey_interval = rekey_interval
        self._sent = 0
        self._received = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        ciphertext = bytes(self._noise.encrypt(plaintext))
        self._sent += 1
        if self._sent == self._rekey_interval:
            self._noise.rekey_outbound_cipher()
            self._sent = 0
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            plaintext = bytes(self._noise.decrypt(ciphertext))
        except Exception as exc:  # noise raises its own and cryptography's errors
            raise BadFrame(
                "a frame failed authentication (tampered, replayed or reordered)"
            ) from exc
        self._received += 1
        if self._received == self._rekey_interval:
            self._noise.rekey_inbound_cipher()
            self._received = 0
        return plaintext


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def check_payload(payload: bytes, config: TransportConfig) -> None:
    """Refuse a message we must not send: not bytes, or above ``max_message_size``."""
    if type(payload) is not bytes:
        raise UnencodableMessage("a message must be bytes")
    if len(payload) > config.max_message_size:
        raise UnencodableMessage(
            f"message of {len(payload)} bytes is above max_message_size "
            f"({config.max_message_size})"
        )


def encrypt_message(cipher: Cipher, payload: bytes, parts: list[bytes]) -> None:
    """Append the encrypted frames of one message (chunks of up to MAX_CHUNK) to ``parts``."""
    view = memoryview(payload)
    offset = 0
    while True:
        chunk = view[offset : offset + MAX_CHUNK]
        offset += len(chunk)
        flag = FLAG_MORE if offset < len(payload) else FLAG_LAST
        parts.append(frame(cipher.encrypt(bytes((flag,)) + chunk)))
        if flag == FLAG_LAST:
            break


def keepalive_frame(cipher: Cipher) -> bytes:
    return frame(cipher.encrypt(b""))


class FrameReader:
    """Reassembles messages from received bytes: feed it what the stream gives, then take
    complete messages. Any bad frame raises (the caller closes the connection)."""

    __slots__ = ("_chunks", "_chunks_size", "_cipher", "_limit", "buffer")

    def __init__(self, cipher: Cipher, max_message_size: int, buffered: bytearray) -> None:
        self._cipher = cipher
        self._limit = max_message_size
        self.buffer = buffered
        self._chunks: list[bytes] = []
        self._chunks_size = 0

    @property
    def mid_message(self) -> bool:
        """Whether part of a message (a frame or a chunk) has arrived and the rest has not."""
        return bool(self.buffer or self._chunks)

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next_message(self) -> bytes | None:
        """Consume complete frames from the buffer; return a message once one is complete."""
        buf = self.buffer
        while len(buf) >= 2:
            length = int.from_bytes(buf[:2], "big")
            if length < TAG_LENGTH:
                raise BadFrame(f"a frame of {length} bytes is shorter than its tag")
            if len(buf) < 2 + length:
                return None
            plaintext = self._cipher.decrypt(bytes(buf[2 : 2 + length]))
            del buf[: 2 + length]
            if not plaintext:  # keepalive
                continue
            flag = plaintext[0]
            chunk = plaintext[1:]
            if flag == FLAG_MORE and not chunk:
                raise BadFrame("an empty continuation chunk")
            if flag not in (FLAG_LAST, FLAG_MORE):
                raise BadFrame(f"unknown frame flag {flag:#04x}")
            if self._chunks_size + len(chunk) > self._limit:
                raise FrameTooLarge(f"a message exceeds max_message_size ({self._limit} bytes)")
            self._chunks.append(chunk)
            self._chunks_size += len(chunk)
            if flag == FLAG_LAST:
                message = b"".join(self._chunks)
                self._chunks.clear()
                self._chunks_size = 0
                return message
        return None


# Handshake and login ------------------------------------------------------------------------------
def noise_step(noise: NoiseState, incoming: bytes | None, what: str) -> bytes:
    """One Noise handshake read (``incoming`` given) or write; any failure is a HandshakeError."""
    try:
        if incoming is None:
            return bytes(noise.write_message())
        if len(noise.read_message(incoming)) != 0:
            raise HandshakeError(f"{what}: unexpected handshake payload")
        return b""
    except HandshakeError:
        raise
    except Exception as exc:  # noise raises its own, cryptography's and ValueError on bad input
        raise HandshakeError(f"{what}: rejected ({type(exc).__name__})") from exc


def auth_plaintext(address: Address, signature: bytes) -> bytes:
    """Our AUTH plaintext: ``address ‖ signature`` (the signature over :func:`auth_request`;
    the shell gets it from the signer, which may be remote)."""
    return bytes(address) + signature


def check_auth(plaintext: bytes, prologue: Prologue, role: int, handshake_hash: bytes) -> Address:
    """The address a peer's AUTH plaintext proves, or :class:`PeerAuthError`."""
    if len(plaintext) != AUTH_LENGTH:
        raise PeerAuthError(f"AUTH must be {AUTH_LENGTH} bytes, got {len(plaintext)}")
    claimed, signature = plaintext[:20], plaintext[20:]
    try:
        signer = recover(auth_digest(prologue, role, handshake_hash), signature)
    except ChannelError as exc:
        raise PeerAuthError(f"AUTH signature is invalid: {exc}") from exc
    if signer != claimed:
        raise PeerAuthError("AUTH signature is not by the claimed address, or not for this session")
    return Address(claimed)


def open_auth(
    cipher: Cipher, body: bytes, prologue: Prologue, role: int, handshake_hash: bytes
) -> Address:
    """Decrypt and check the peer's AUTH frame body."""
    try:
        plaintext = cipher.decrypt(body)
    except BadFrame as exc:
        raise HandshakeError("AUTH frame failed authentication") from exc
    return check_auth(plaintext, prologue, role, handshake_hash)
