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
   adjudicator's domain (docs/PROTOCOL.md section 12), role ``1`` for the initiator and ``2`` for
   the responder, so a typed-data wallet or a remote signer can sign it. The handshake hash binds
   it to this session (a captured AUTH is useless elsewhere) and the role stops reflection (T1).
   Signatures are checked with :func:`channels.core.signing.recover` (65 bytes, v in {27, 28},
   low-s). The initiator sends its AUTH right behind handshake message 3 (no extra round trip)
   and requires the responder to be the address it dialled. The responder passes the recovered
   address to ``accept_peer`` and only then sends its own AUTH, so it never proves its identity
   to a refused peer.
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
from collections.abc import Sequence

import trio

from channels.core.errors import FrameTooLarge
from channels.core.model import Address
from channels.core.secure_session import (
    RECEIVE_SIZE,
    BadFrame,
    Cipher,
    ConnectionClosed,
    FrameReader,
    PeerTimeout,
    TransportConfig,
    TransportError,
    check_payload,
    encrypt_message,
    keepalive_frame,
)
from channels.transport.direct_socket import DirectSocketStream
from channels.transport.fastlock import FastLock

__all__ = ["SecureChannel"]

log = logging.getLogger(__name__)


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
        cipher: Cipher,
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
        self._reader = FrameReader(cipher, config.max_message_size, buffered)
        self._message_started: float | None = None
        now = trio.current_time()
        self._last_sent = now
        self._last_received = now
        self._closed: TransportError | None = None
        self._send_lock = FastLock()
        #: Ciphertext :meth:`send_now` encrypted but the socket did not take whole: it goes out
        #: before anything else (the frames' nonces follow the order on the wire).
        self._backlog = b""
        self._receive_lock = FastLock()

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

    @property
    def has_backlog(self) -> bool:
        """Whether bytes :meth:`send_now` took wait to be written (by :meth:`send_many`)."""
        return bool(self._backlog)

    def send_now(self, payloads: Sequence[bytes]) -> bool:
        """Encrypt ``payloads`` and hand them to the socket at once, without a wait, when this is
        a TCP link with no send under way and nothing left over; False (nothing done) otherwise.
        What the socket does not take now (or cannot take: a broken link) is kept and goes out
        first with the next :meth:`send_many` (``send_many([])`` just flushes it), which also
        meets any error the way a send always has."""
        stream = self._stream
        if (
            not isinstance(stream, DirectSocketStream)
            or self._send_lock.locked()
            or self._backlog
            or self._closed is not None
        ):
            return False
        limit = self._config.max_message_size
        if any(type(p) is not bytes or len(p) > limit for p in payloads):
            return False  # send_many refuses it, as always
        parts: list[bytes] = []
        for payload in payloads:
            encrypt_message(self._cipher, payload, parts)
        data = b"".join(parts)
        try:
            sent = stream.try_send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            sent = 0  # the flush meets the error and fails the link as send_many does
        self._backlog = data[sent:]
        self._last_sent = trio.current_time()
        return True

    async def send_many(self, payloads: Sequence[bytes]) -> None:
        """Send several messages, in order, with ONE write to the socket.

        Each message is framed and encrypted exactly as :meth:`send` does (the peer cannot tell
        the difference); only the syscalls are shared: under load a node has several messages
        waiting for one peer, and a ``send`` per message was a large share of its CPU.
        """
        for payload in payloads:
            check_payload(payload, self._config)
        if not payloads and not self._backlog:
            return
        async with self._send_lock:
            self._check_open()
            # Encrypt under the lock: the implicit nonces must follow the order on the wire.
            parts: list[bytes] = []
            for payload in payloads:
                encrypt_message(self._cipher, payload, parts)
            await self._send_raw(b"".join(parts))

    async def _send_raw(self, data: bytes) -> None:
        if self._backlog:  # encrypted before ``data``: it goes first
            data, self._backlog = self._backlog + data, b""
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
            await self._send_raw(keepalive_frame(self._cipher))

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
        reader = self._reader
        fed = False  # a read in this call completed no message (yet)
        while True:
            message = reader.next_message()
            if message is not None:
                self._message_started = None
                return message
            now = trio.current_time()
            if reader.mid_message:
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
            # A bare CancelScope (trio.move_on_at is a generator-based wrapper around one).
            with trio.CancelScope(deadline=min(body_deadline, ping_at, dead_at)):
                try:
                    if fed:
                        # The last read brought no whole message (keepalives, a message in small
                        # chunks): the direct stream does not yield while data keeps coming, so
                        # yield here, letting the rest of the node run and the deadlines act.
                        await trio.lowlevel.checkpoint()
                    data = bytes(await self._stream.receive_some(RECEIVE_SIZE))
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
                if reader.mid_message:
                    raise ConnectionClosed("the peer closed the connection mid-message")
                raise ConnectionClosed("the peer closed the connection")
            self._last_received = now
            reader.feed(data)
            fed = True
