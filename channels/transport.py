"""Authenticated, encrypted transport: "the peer is this Ethereum address", over any trio stream.

Design (docs/THREATS.md section 4, T1-T5, and section 6.1):

1. **Noise** ``Noise_XX_25519_ChaChaPoly_SHA256`` (the ``noiseprotocol`` package). The prologue
   ``b"optchan/1" ‖ chainId (32 B) ‖ adjudicator (20 B)`` is mixed into the handshake hash, so a
   peer on another protocol version, chain or deployment fails the handshake (T5). The X25519
   static key is fresh per connection: it carries no identity, the channel key does.
2. Three handshake messages, each ``len (2 B, big-endian) ‖ message``. Every payload is empty, so
   each message has one exact length (32, 96, 64 bytes) and any other length prefix aborts at once,
   before the body is read. The whole handshake, AUTH included, has one deadline (5 s by default).
   On any failure we close the stream without a reply (T2, §3.1).
3. **AUTH**, the first transport frame each way: ``address (20 B) ‖ signature (65 B)`` with the
   signature over the EIP-712 message ``Login(uint8 role, bytes32 handshakeHash)`` in the
   adjudicator's domain (chain id, adjudicator), role ``1`` for the initiator and ``2`` for the
   responder, so any typed-data wallet can sign it. The handshake hash binds it to this session
   (a captured AUTH is useless elsewhere) and the role stops reflection (T1). Signatures are
   checked with :func:`channels.core.signing.recover` (65 bytes, v in {27, 28}, low-s). The
   initiator sends its AUTH right behind handshake message 3 (no extra round trip) and requires
   the responder to be the address it dialled. The responder passes the recovered address to
   ``accept_peer`` and only then sends its own AUTH, so it never proves its identity to a refused
   peer.
4. **Frames**: ``len (2 B) ‖ ChaCha20-Poly1305 ciphertext`` (at most 65535 bytes, so a length
   prefix can never ask for more; nothing larger is ever allocated from a prefix). The plaintext
   is empty for a keepalive, else ``flag ‖ chunk`` with flag ``0x00`` (last chunk of a message) or
   ``0x01`` (more chunks follow); a message is the concatenation of its chunks, capped at
   ``max_message_size`` (1 MiB by default). Any decryption failure (flipped bit, replayed,
   duplicated or reordered frame: the Noise nonce is implicit) closes the connection (T3, T4).
   Each direction rekeys (Noise ``REKEY``) every ``rekey_interval`` frames, as BOLT 8 does.
5. **Timeouts**: once the first byte of a message has arrived, the whole message must arrive
   within ``read_timeout`` (slowloris on the body). With ``keepalive_interval = N`` set,
   :meth:`SecureChannel.receive` also sends an empty frame whenever we have sent nothing for N s
   and declares the peer dead after 3N s without a byte from it; both happen inside ``receive``
   (no background task), so they work while some task is waiting in ``receive``.

Transport authentication gives liveness, DoS resistance and confidentiality; safety still rests on
the domain-bound signatures carried by every state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import trio
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

from channels.core import eip712
from channels.core.errors import (
    BadFrame,
    ChannelError,
    ConnectionClosed,
    FrameTooLarge,
    HandshakeError,
    InvalidField,
    PeerAuthError,
    PeerTimeout,
    RemoteError,
    TransportError,
    UnencodableMessage,
)
from channels.core.model import Address
from channels.core.signing import SIGNATURE_LENGTH, Signer, SignRequest, recover
from channels.core.wire import MAX_MESSAGE
from channels.signers.calling import sign_async

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_CHUNK",
    "MAX_FRAME",
    "NOISE_PROTOCOL_NAME",
    "PROTOCOL_ID",
    "ROLE_INITIATOR",
    "ROLE_RESPONDER",
    "Prologue",
    "SecureChannel",
    "TransportConfig",
    "auth_digest",
    "auth_request",
    "connect",
    "initiate",
    "respond",
    "serve",
]

log = logging.getLogger(__name__)

NOISE_PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_SHA256"
PROTOCOL_ID: Final = b"optchan/1"
ROLE_INITIATOR: Final = 0x01
ROLE_RESPONDER: Final = 0x02

TAG_LENGTH: Final = 16
MAX_FRAME: Final = 0xFFFF  # ciphertext bytes behind one 2-byte length prefix
MAX_PLAINTEXT: Final = MAX_FRAME - TAG_LENGTH
MAX_CHUNK: Final = MAX_PLAINTEXT - 1  # one flag byte per chunk
_FLAG_LAST: Final = 0x00
_FLAG_MORE: Final = 0x01

_DH_LENGTH: Final = 32
# Exact lengths of the three XX messages with empty payloads: e | e, ee, s, es | s, se.
_ACT_LENGTHS: Final = (
    _DH_LENGTH,
    _DH_LENGTH + (_DH_LENGTH + TAG_LENGTH) + TAG_LENGTH,
    (_DH_LENGTH + TAG_LENGTH) + TAG_LENGTH,
)
_AUTH_LENGTH: Final = 20 + SIGNATURE_LENGTH
_RECEIVE_SIZE: Final = 2 + MAX_FRAME


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
    """Limits and timers of one connection (and of :func:`serve`)."""

    handshake_timeout: float = 5.0
    """Seconds for the whole handshake including both AUTH frames (LND uses 5 s)."""
    read_timeout: float = 30.0
    """Seconds for a message to arrive in full once its first byte has arrived."""
    keepalive_interval: float | None = None
    """If set to N: send an empty frame after N s without sending, and close after 3N s
    without receiving. Runs inside :meth:`SecureChannel.receive`."""
    max_message_size: int = MAX_MESSAGE
    """Largest application message, both to send and to accept (reassembled size); the wire
    codec's limit by default."""
    rekey_interval: int = 1000
    """Rekey each direction after this many frames."""
    max_unauthenticated: int = 64
    """:func:`serve` only: connections still in the handshake; any excess is closed at once."""

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
    """What a side signs in its AUTH frame: the EIP-712 ``Login`` of this session and role."""
    domain = eip712.Domain(prologue.chain_id, prologue.adjudicator)
    return SignRequest(domain, eip712.Login(role, handshake_hash))


def auth_digest(prologue: Prologue, role: int, handshake_hash: bytes) -> bytes:
    """The 32-byte digest a side signs in its AUTH frame."""
    return bytes(auth_request(prologue, role, handshake_hash).digest)


# Noise cipher with rekeying -------------------------------------------------------------------
class _Cipher:
    """The two transport CipherStates of a finished handshake, with frame counters."""

    __slots__ = ("_noise", "_received", "_rekey_interval", "_sent")

    def __init__(self, noise: NoiseConnection, rekey_interval: int) -> None:
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


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


# The channel ----------------------------------------------------------------------------------
class SecureChannel(trio.abc.AsyncResource):
    """An authenticated, encrypted message stream to :attr:`peer_address`.

    One task may send while another receives; concurrent senders (and receivers) are serialised.
    Every transport failure closes the connection and raises a :class:`TransportError` subclass
    (or :class:`FrameTooLarge`); later calls raise :class:`ConnectionClosed`. ``receive`` is
    cancellation-safe (a cancelled call loses nothing). A ``send`` cancelled part-way closes the
    connection, because part of a frame may already be on the wire.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        cipher: _Cipher,
        peer_address: Address,
        handshake_hash: bytes,
        buffered: bytearray,
        config: TransportConfig,
    ) -> None:
        self._stream = stream
        self._cipher = cipher
        self._peer = peer_address
        self._handshake_hash = handshake_hash
        self._config = config
        self._rbuf = buffered
        self._chunks: list[bytes] = []
        self._chunks_size = 0
        self._message_started: float | None = None
        now = trio.current_time()
        self._last_sent = now
        self._last_received = now
        self._closed: TransportError | None = None
        self._send_lock = trio.Lock()
        self._receive_lock = trio.Lock()

    @property
    def peer_address(self) -> Address:
        """The peer's Ethereum address, proven by its AUTH signature."""
        return self._peer

    @property
    def handshake_hash(self) -> bytes:
        """The Noise handshake hash: a unique, shared identifier of this session."""
        return self._handshake_hash

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def aclose(self) -> None:
        """Close the connection (idempotent). The peer sees EOF."""
        if self._closed is None:
            self._closed = ConnectionClosed("the connection was closed locally")
        await self._stream.aclose()

    async def _fail(self, error: TransportError) -> TransportError:
        if self._closed is None:
            self._closed = error
        await trio.aclose_forcefully(self._stream)
        return error

    def _check_open(self) -> None:
        if self._closed is not None:
            raise ConnectionClosed(f"the connection is closed ({self._closed})")

    # sending ----------------------------------------------------------------------------------
    async def send(self, payload: bytes) -> None:
        """Send one message of up to ``max_message_size`` bytes (split into chunks as needed)."""
        await self.send_many((payload,))

    async def send_many(self, payloads: Sequence[bytes]) -> None:
        """Send several messages, in order, with ONE write to the socket.

        Each message is framed and encrypted exactly as :meth:`send` does (the peer cannot tell
        the difference); only the syscalls are shared: under load a node has several messages
        waiting for one peer, and a ``send`` per message was a large share of its CPU.
        """
        for payload in payloads:
            self._check_payload(payload)
        if not payloads:
            return
        async with self._send_lock:
            self._check_open()
            # Encrypt under the lock: the implicit nonces must follow the order on the wire.
            parts: list[bytes] = []
            for payload in payloads:
                self._encrypt_into(parts, payload)
            await self._send_raw(b"".join(parts))

    def _check_payload(self, payload: bytes) -> None:
        if type(payload) is not bytes:
            raise UnencodableMessage("a message must be bytes")
        if len(payload) > self._config.max_message_size:
            raise UnencodableMessage(
                f"message of {len(payload)} bytes is above max_message_size "
                f"({self._config.max_message_size})"
            )

    def _encrypt_into(self, parts: list[bytes], payload: bytes) -> None:
        """Append the encrypted frames of one message (chunks of up to MAX_CHUNK) to ``parts``."""
        view = memoryview(payload)
        offset = 0
        while True:
            chunk = view[offset : offset + MAX_CHUNK]
            offset += len(chunk)
            flag = _FLAG_MORE if offset < len(payload) else _FLAG_LAST
            parts.append(_frame(self._cipher.encrypt(bytes((flag,)) + chunk)))
            if flag == _FLAG_LAST:
                break

    async def _send_raw(self, data: bytes) -> None:
        sent = False
        try:
            await self._stream.send_all(data)
            sent = True
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise await self._fail(ConnectionClosed("the connection broke while sending")) from exc
        finally:
            if not sent and self._closed is None:  # cancelled part-way: the stream is unusable
                await self._fail(ConnectionClosed("a send was interrupted part-way"))
        self._last_sent = trio.current_time()

    async def _send_keepalive(self) -> None:
        if self._send_lock.locked():  # a send is under way: that is traffic enough
            self._last_sent = trio.current_time()
            return
        async with self._send_lock:
            self._check_open()
            await self._send_raw(_frame(self._cipher.encrypt(b"")))

    # receiving --------------------------------------------------------------------------------
    async def receive(self) -> bytes:
        """The next message. Raises :class:`ConnectionClosed` on EOF (a partial message is
        dropped), :class:`PeerTimeout`, :class:`BadFrame` or :class:`FrameTooLarge`; each closes
        the connection."""
        async with self._receive_lock:
            self._check_open()
            try:
                return await self._receive()
            except (TransportError, FrameTooLarge) as exc:
                await self._fail(exc if isinstance(exc, TransportError) else BadFrame(str(exc)))
                raise

    async def _receive(self) -> bytes:
        config = self._config
        keepalive = config.keepalive_interval
        while True:
            message = self._parse()
            if message is not None:
                return message
            now = trio.current_time()
            if self._rbuf or self._chunks:
                if self._message_started is None:
                    self._message_started = now
                body_deadline = self._message_started + config.read_timeout
            else:
                self._message_started = None
                body_deadline = math.inf
            ping_at = dead_at = math.inf
            if keepalive is not None:
                ping_at = self._last_sent + keepalive
                dead_at = self._last_received + 3 * keepalive
            data: bytes | None = None
            with trio.move_on_at(min(body_deadline, ping_at, dead_at)):
                try:
                    data = bytes(await self._stream.receive_some(_RECEIVE_SIZE))
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise ConnectionClosed("the connection broke while receiving") from exc
            now = trio.current_time()
            if data is None:  # a timer fired
                if now >= body_deadline:
                    raise PeerTimeout(f"a message took longer than {config.read_timeout} s")
                if now >= dead_at:
                    raise PeerTimeout(f"nothing received for {now - self._last_received:.1f} s")
                if now >= ping_at:
                    await self._send_keepalive()
                continue
            if not data:
                if self._rbuf or self._chunks:
                    raise ConnectionClosed("the peer closed the connection mid-message")
                raise ConnectionClosed("the peer closed the connection")
            self._last_received = now
            self._rbuf += data

    def _parse(self) -> bytes | None:
        """Consume complete frames from the buffer; return a message once one is complete."""
        buf = self._rbuf
        limit = self._config.max_message_size
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
            if flag == _FLAG_MORE and not chunk:
                raise BadFrame("an empty continuation chunk")
            if flag not in (_FLAG_LAST, _FLAG_MORE):
                raise BadFrame(f"unknown frame flag {flag:#04x}")
            if self._chunks_size + len(chunk) > limit:
                raise FrameTooLarge(f"a message exceeds max_message_size ({limit} bytes)")
            self._chunks.append(chunk)
            self._chunks_size += len(chunk)
            if flag == _FLAG_LAST:
                message = b"".join(self._chunks)
                self._chunks.clear()
                self._chunks_size = 0
                self._message_started = None
                return message
        return None


# Handshake ------------------------------------------------------------------------------------
class _HandshakeIO:
    """Length-prefixed reads and writes on the raw stream during the handshake."""

    __slots__ = ("buffer", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HandshakeError("the connection broke during the handshake") from exc
        if not data:
            raise HandshakeError("the peer closed the connection during the handshake")
        self.buffer += data

    async def read(self, expected_length: int, what: str) -> bytes:
        while len(self.buffer) < 2:
            await self._fill()
        length = int.from_bytes(self.buffer[:2], "big")
        if length != expected_length:
            raise HandshakeError(f"{what}: length {length}, expected {expected_length}")
        while len(self.buffer) < 2 + length:
            await self._fill()
        body = bytes(self.buffer[2 : 2 + length])
        del self.buffer[: 2 + length]
        return body

    async def write(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HandshakeError("the connection broke during the handshake") from exc


def _noise_step(noise: NoiseConnection, incoming: bytes | None, what: str) -> bytes:
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


async def _make_auth(signer: Signer, prologue: Prologue, role: int, handshake_hash: bytes) -> bytes:
    signature = await sign_async(signer, auth_request(prologue, role, handshake_hash))
    return bytes(signer.address) + signature


def _check_auth(plaintext: bytes, prologue: Prologue, role: int, handshake_hash: bytes) -> Address:
    if len(plaintext) != _AUTH_LENGTH:
        raise PeerAuthError(f"AUTH must be {_AUTH_LENGTH} bytes, got {len(plaintext)}")
    claimed, signature = plaintext[:20], plaintext[20:]
    try:
        signer = recover(auth_digest(prologue, role, handshake_hash), signature)
    except ChannelError as exc:
        raise PeerAuthError(f"AUTH signature is invalid: {exc}") from exc
    if signer != claimed:
        raise PeerAuthError("AUTH signature is not by the claimed address, or not for this session")
    return Address(claimed)


async def _handshake(
    stream: trio.abc.Stream,
    signer: Signer,
    prologue: Prologue,
    config: TransportConfig,
    *,
    expected_address: Address | None,
    accept_peer: Callable[[Address], bool] | None,
) -> SecureChannel:
    initiator = expected_address is not None
    noise = NoiseConnection.from_name(NOISE_PROTOCOL_NAME)
    noise.set_prologue(prologue.to_bytes())
    noise.set_keypair_from_private_bytes(
        Keypair.STATIC, X25519PrivateKey.generate().private_bytes_raw()
    )
    if initiator:
        noise.set_as_initiator()
    else:
        noise.set_as_responder()
    noise.start_handshake()
    io = _HandshakeIO(stream)
    cipher = _Cipher(noise, config.rekey_interval)

    async def read_auth(role: int, handshake_hash: bytes) -> Address:
        body = await io.read(_AUTH_LENGTH + TAG_LENGTH, "AUTH frame")
        try:
            plaintext = cipher.decrypt(body)
        except BadFrame as exc:
            raise HandshakeError("AUTH frame failed authentication") from exc
        return _check_auth(plaintext, prologue, role, handshake_hash)

    if initiator:
        await io.write(_frame(_noise_step(noise, None, "message 1")))
        _noise_step(noise, await io.read(_ACT_LENGTHS[1], "message 2"), "message 2")
        act3 = _noise_step(noise, None, "message 3")
        handshake_hash = bytes(noise.get_handshake_hash())
        auth = await _make_auth(signer, prologue, ROLE_INITIATOR, handshake_hash)
        await io.write(_frame(act3) + _frame(cipher.encrypt(auth)))
        peer = await read_auth(ROLE_RESPONDER, handshake_hash)
        if peer != expected_address:
            raise PeerAuthError(
                f"dialled 0x{bytes(expected_address or b'').hex()} but the peer is 0x{peer.hex()}"
            )
    else:
        assert accept_peer is not None
        _noise_step(noise, await io.read(_ACT_LENGTHS[0], "message 1"), "message 1")
        await io.write(_frame(_noise_step(noise, None, "message 2")))
        _noise_step(noise, await io.read(_ACT_LENGTHS[2], "message 3"), "message 3")
        handshake_hash = bytes(noise.get_handshake_hash())
        peer = await read_auth(ROLE_INITIATOR, handshake_hash)
        if not accept_peer(peer):
            raise PeerAuthError(f"peer 0x{peer.hex()} is not accepted")
        auth = await _make_auth(signer, prologue, ROLE_RESPONDER, handshake_hash)
        await io.write(_frame(cipher.encrypt(auth)))
    return SecureChannel(stream, cipher, peer, handshake_hash, io.buffer, config)


async def _handshake_until(
    deadline: float,
    stream: trio.abc.Stream,
    signer: Signer,
    prologue: Prologue,
    config: TransportConfig,
    *,
    expected_address: Address | None,
    accept_peer: Callable[[Address], bool] | None,
) -> SecureChannel:
    """Run the handshake with a deadline; on any failure close ``stream`` (no reply) and raise."""
    try:
        with trio.move_on_at(deadline) as scope:
            return await _handshake(
                stream,
                signer,
                prologue,
                config,
                expected_address=expected_address,
                accept_peer=accept_peer,
            )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    assert scope.cancelled_caught
    await trio.aclose_forcefully(stream)
    raise HandshakeError("the handshake did not finish before its deadline")


async def initiate(
    stream: trio.abc.Stream,
    signer: Signer,
    expected_address: Address,
    prologue: Prologue,
    *,
    config: TransportConfig = DEFAULT_CONFIG,
) -> SecureChannel:
    """Handshake as the initiator on ``stream`` (which it then owns) with the peer we expect.

    Raises :class:`HandshakeError` or :class:`PeerAuthError` (the stream is closed then).
    """
    if type(expected_address) is not bytes or len(expected_address) != 20:
        raise InvalidField("expected_address must be 20 raw bytes")
    deadline = trio.current_time() + config.handshake_timeout
    return await _handshake_until(
        deadline,
        stream,
        signer,
        prologue,
        config,
        expected_address=expected_address,
        accept_peer=None,
    )


async def respond(
    stream: trio.abc.Stream,
    signer: Signer,
    prologue: Prologue,
    accept_peer: Callable[[Address], bool],
    *,
    config: TransportConfig = DEFAULT_CONFIG,
) -> SecureChannel:
    """Handshake as the responder on ``stream`` (which it then owns).

    ``accept_peer`` gets the proven address of the initiator and says whether to talk to it.
    Raises :class:`HandshakeError` or :class:`PeerAuthError` (the stream is closed then).
    """
    deadline = trio.current_time() + config.handshake_timeout
    return await _handshake_until(
        deadline, stream, signer, prologue, config, expected_address=None, accept_peer=accept_peer
    )


# TCP ------------------------------------------------------------------------------------------
async def connect(
    host: str,
    port: int,
    signer: Signer,
    expected_address: Address,
    prologue: Prologue,
    *,
    timeout: float | None = None,
    config: TransportConfig = DEFAULT_CONFIG,
) -> SecureChannel:
    """Dial ``host:port`` and handshake; ``timeout`` (default ``config.handshake_timeout``)
    covers the TCP connect and the handshake. Raises :class:`HandshakeError` (also on timeout),
    :class:`PeerAuthError`, or :class:`OSError` if the TCP connection cannot be made."""
    deadline = trio.current_time() + (config.handshake_timeout if timeout is None else timeout)
    with trio.move_on_at(deadline):
        stream = await trio.open_tcp_stream(host, port)
        return await _handshake_until(
            deadline,
            stream,
            signer,
            prologue,
            config,
            expected_address=expected_address,
            accept_peer=None,
        )
    raise HandshakeError(f"connecting to {host}:{port} and the handshake took too long")


async def serve(
    host: str | None,
    port: int,
    signer: Signer,
    prologue: Prologue,
    accept_peer: Callable[[Address], bool],
    handler: Callable[[SecureChannel], Awaitable[None]],
    *,
    config: TransportConfig = DEFAULT_CONFIG,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and run ``await handler(channel)`` for each authenticated peer.

    ``task_status.started(port)`` reports the bound port (pass 0 to pick a free one; with several
    listeners, e.g. ``host=None``, it is the first one's). At most ``config.max_unauthenticated``
    connections may be in the handshake at once; any excess is closed at once. A connection whose
    handshake or AUTH fails is closed and logged, and so is one whose handler raises a
    :class:`RemoteError` (the peer's fault); the server keeps serving. Any other
    exception from ``handler`` or ``accept_peer`` is a bug and propagates. The channel is closed
    when ``handler`` returns. Runs until cancelled.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port: int = listeners[0].socket.getsockname()[1]
    in_handshake = 0

    async def on_connection(stream: trio.SocketStream) -> None:
        nonlocal in_handshake
        if in_handshake >= config.max_unauthenticated:
            log.warning("closing a connection: %d handshakes already under way", in_handshake)
            await trio.aclose_forcefully(stream)
            return
        in_handshake += 1
        try:
            channel = await respond(stream, signer, prologue, accept_peer, config=config)
        except TransportError as exc:
            log.info("handshake failed: %s: %s", type(exc).__name__, exc)
            return
        finally:
            in_handshake -= 1
        async with channel:
            try:
                await handler(channel)
            except RemoteError as exc:
                log.info(
                    "closing the connection to 0x%s: %s: %s",
                    channel.peer_address.hex(),
                    type(exc).__name__,
                    exc,
                )

    task_status.started(bound_port)
    await trio.serve_listeners(on_connection, listeners)
