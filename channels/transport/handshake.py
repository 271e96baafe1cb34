"""Opening a :class:`~channels.transport.secure_channel.SecureChannel`: the handshake with its
deadline, as initiator or responder, and the TCP dialler and listener around it (the wire format
is described in :mod:`channels.transport.secure_channel`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

from channels.core.errors import InvalidField, RemoteError
from channels.core.model import Address
from channels.core.secure_session import (
    ACT_LENGTHS,
    AUTH_LENGTH,
    DEFAULT_CONFIG,
    NOISE_PROTOCOL_NAME,
    RECEIVE_SIZE,
    ROLE_INITIATOR,
    ROLE_RESPONDER,
    TAG_LENGTH,
    Cipher,
    HandshakeError,
    PeerAuthError,
    Prologue,
    TransportConfig,
    TransportError,
    auth_plaintext,
    auth_request,
    frame,
    noise_step,
    open_auth,
)
from channels.core.signing import Signer
from channels.signers.calling import sign_async
from channels.transport.direct_socket import DirectSocketStream
from channels.transport.secure_channel import SecureChannel

__all__ = ["connect", "initiate", "respond", "serve"]

log = logging.getLogger(__name__)


def new_noise(prologue: Prologue, initiator: bool) -> NoiseConnection:
    """A Noise XX state ready to start, with a fresh static key (it carries no identity)."""
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
    return noise


# Handshake ------------------------------------------------------------------------------------
class _HandshakeIO:
    """Length-prefixed reads and writes on the raw stream during the handshake."""

    __slots__ = ("buffer", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
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


async def _make_auth(signer: Signer, prologue: Prologue, role: int, handshake_hash: bytes) -> bytes:
    """Our AUTH plaintext; the signer may be remote (then it is asked from a worker thread)."""
    signature = await sign_async(signer, auth_request(prologue, role, handshake_hash))
    return auth_plaintext(signer.address, signature)


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
    noise = new_noise(prologue, initiator)
    io = _HandshakeIO(stream)
    cipher = Cipher(noise, config.rekey_interval)

    async def read_auth(role: int, handshake_hash: bytes) -> Address:
        body = await io.read(AUTH_LENGTH + TAG_LENGTH, "AUTH frame")
        return open_auth(cipher, body, prologue, role, handshake_hash)

    if initiator:
        await io.write(frame(noise_step(noise, None, "message 1")))
        noise_step(noise, await io.read(ACT_LENGTHS[1], "message 2"), "message 2")
        act3 = noise_step(noise, None, "message 3")
        handshake_hash = bytes(noise.get_handshake_hash())
        auth = await _make_auth(signer, prologue, ROLE_INITIATOR, handshake_hash)
        await io.write(frame(act3) + frame(cipher.encrypt(auth)))
        peer = await read_auth(ROLE_RESPONDER, handshake_hash)
        if peer != expected_address:
            raise PeerAuthError(
                f"dialled 0x{bytes(expected_address or b'').hex()} but the peer is 0x{peer.hex()}"
            )
    else:
        assert accept_peer is not None
        noise_step(noise, await io.read(ACT_LENGTHS[0], "message 1"), "message 1")
        await io.write(frame(noise_step(noise, None, "message 2")))
        noise_step(noise, await io.read(ACT_LENGTHS[2], "message 3"), "message 3")
        handshake_hash = bytes(noise.get_handshake_hash())
        peer = await read_auth(ROLE_INITIATOR, handshake_hash)
        if not accept_peer(peer):
            raise PeerAuthError(f"peer 0x{peer.hex()} is not accepted")
        auth = await _make_auth(signer, prologue, ROLE_RESPONDER, handshake_hash)
        await io.write(frame(cipher.encrypt(auth)))
    if isinstance(stream, trio.SocketStream):  # TCP: reads and writes skip the scheduler
        stream = DirectSocketStream(stream)
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
    connections may be in the handshake at once; when they all are, a new connection closes the
    oldest of them, so a stranger holding connections open without a word cannot keep the door
    shut: to keep a peer out it must open that many connections within the peer's handshake. A
    connection whose handshake or AUTH fails is closed and logged, and so is one whose handler
    raises a :class:`RemoteError` (the peer's fault); the server keeps serving. Any other
    exception from ``handler`` or ``accept_peer`` is a bug and propagates. The channel is closed
    when ``handler`` returns. Runs until cancelled.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port: int = listeners[0].socket.getsockname()[1]
    #: The connections in their handshake, oldest first (dicts keep insertion order).
    in_handshake: dict[trio.CancelScope, None] = {}

    async def on_connection(stream: trio.SocketStream) -> None:
        if len(in_handshake) >= config.max_unauthenticated:
            oldest = next(iter(in_handshake))
            del in_handshake[oldest]
            oldest.cancel()
            log.warning("%d handshakes under way: closing the oldest", config.max_unauthenticated)
        scope = trio.CancelScope()
        in_handshake[scope] = None
        channel: SecureChannel | None = None
        try:
            with scope:
                channel = await respond(stream, signer, prologue, accept_peer, config=config)
        except TransportError as exc:
            log.info("handshake failed: %s: %s", type(exc).__name__, exc)
            return
        finally:
            in_handshake.pop(scope, None)
        if channel is None:  # closed (by respond) to make room for a newer connection
            return
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
