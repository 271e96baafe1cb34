"""Keys, honest pairs, a hand-driven Noise peer (for malicious behaviour) and a frame relay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import outcome
import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

from channels.core.signing import LocalSigner
from channels.transport import (
    DEFAULT_CONFIG,
    NOISE_PROTOCOL_NAME,
    ROLE_INITIATOR,
    ROLE_RESPONDER,
    Prologue,
    SecureChannel,
    TransportConfig,
    auth_digest,
    initiate,
    respond,
)

ALICE = LocalSigner(bytes.fromhex("a1" * 32))
BOB = LocalSigner(bytes.fromhex("b0" * 32))
CAROL = LocalSigner(bytes.fromhex("c0" * 32))
MALLORY = LocalSigner(bytes.fromhex("dd" * 32))

CHAIN_ID = 31337
ADJUDICATOR = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
PROLOGUE = Prologue(CHAIN_ID, ADJUDICATOR)  # type: ignore[arg-type]


def accept_all(_address: bytes) -> bool:
    return True


async def both(
    first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]]
) -> tuple[outcome.Outcome, outcome.Outcome]:
    """Run two coroutines concurrently and capture each one's result or exception."""
    results: list[Any] = [None, None]

    async def run(index: int, fn: Callable[[], Awaitable[Any]]) -> None:
        results[index] = await outcome.acapture(fn)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, 0, first)
        nursery.start_soon(run, 1, second)
    return results[0], results[1]


async def honest_pair(
    stream_a: trio.abc.Stream | None = None,
    stream_b: trio.abc.Stream | None = None,
    *,
    config_a: TransportConfig = DEFAULT_CONFIG,
    config_b: TransportConfig = DEFAULT_CONFIG,
) -> tuple[SecureChannel, SecureChannel]:
    """Alice (initiator) and Bob (responder) over a memory stream pair (or the given streams)."""
    if stream_a is None or stream_b is None:
        stream_a, stream_b = trio.testing.memory_stream_pair()
    sa, sb = stream_a, stream_b
    a, b = await both(
        lambda: initiate(sa, ALICE, BOB.address, PROLOGUE, config=config_a),
        lambda: respond(sb, BOB, PROLOGUE, accept_all, config=config_b),
    )
    return a.unwrap(), b.unwrap()


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


class RawPeer:
    """Noise XX driven by hand over a stream, so a test can misbehave at any step."""

    def __init__(
        self, stream: trio.abc.Stream, *, initiator: bool, prologue: bytes | None = None
    ) -> None:
        self.stream = stream
        self.initiator = initiator
        self.buffer = bytearray()
        self.noise = NoiseConnection.from_name(NOISE_PROTOCOL_NAME)
        self.noise.set_prologue(PROLOGUE.to_bytes() if prologue is None else prologue)
        self.noise.set_keypair_from_private_bytes(
            Keypair.STATIC, X25519PrivateKey.generate().private_bytes_raw()
        )
        if initiator:
            self.noise.set_as_initiator()
        else:
            self.noise.set_as_responder()
        self.noise.start_handshake()
        self.handshake_hash = b""

    async def read_frame(self) -> bytes:
        while True:
            if len(self.buffer) >= 2:
                n = int.from_bytes(self.buffer[:2], "big")
                if len(self.buffer) >= 2 + n:
                    body = bytes(self.buffer[2 : 2 + n])
                    del self.buffer[: 2 + n]
                    return body
            data = await self.stream.receive_some(65537)
            if not data:
                raise EOFError
            self.buffer += data

    async def read_all(self) -> bytes:
        """Everything until EOF (buffered bytes included)."""
        out = bytes(self.buffer)
        self.buffer.clear()
        while data := await self.stream.receive_some(65537):
            out += data
        return out

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def handshake(self) -> bytes:
        """Run the three Noise messages (no AUTH); returns the handshake hash."""
        if self.initiator:
            await self.send(frame(bytes(self.noise.write_message())))
            self.noise.read_message(await self.read_frame())
            await self.send(frame(bytes(self.noise.write_message())))
        else:
            self.noise.read_message(await self.read_frame())
            await self.send(frame(bytes(self.noise.write_message())))
            self.noise.read_message(await self.read_frame())
        self.handshake_hash = bytes(self.noise.get_handshake_hash())
        return self.handshake_hash

    @property
    def role(self) -> int:
        return ROLE_INITIATOR if self.initiator else ROLE_RESPONDER

    def auth(
        self,
        signer: LocalSigner,
        *,
        role: int | None = None,
        claimed: bytes | None = None,
        prologue: Prologue = PROLOGUE,
        digest: bytes | None = None,
    ):
        if digest is None:
            digest = auth_digest(prologue, self.role if role is None else role, self.handshake_hash)
        sig = signer.sign_digest(digest)
        return (signer.address if claimed is None else claimed) + sig

    def encrypt(self, plaintext: bytes) -> bytes:
        return bytes(self.noise.encrypt(plaintext))

    def decrypt(self, ciphertext: bytes) -> bytes:
        return bytes(self.noise.decrypt(ciphertext))

    async def send_encrypted(self, plaintext: bytes) -> None:
        await self.send(frame(self.encrypt(plaintext)))

    async def read_decrypted(self) -> bytes:
        return self.decrypt(await self.read_frame())


Tamper = Callable[[int, bytes], list[bytes]]


def _identity(_index: int, data: bytes) -> list[bytes]:
    return [data]


async def relay(src: trio.abc.Stream, dst: trio.abc.Stream, tamper: Tamper = _identity) -> None:
    """Forward length-prefixed frames from src to dst; ``tamper(index, frame)`` (frame with its
    prefix) returns what to forward instead. On EOF or error, close dst."""
    buffer = bytearray()
    index = 0
    try:
        while True:
            data = await src.receive_some(65537)
            if not data:
                break
            buffer += data
            while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                n = 2 + int.from_bytes(buffer[:2], "big")
                whole = bytes(buffer[:n])
                del buffer[:n]
                for out in tamper(index, whole):
                    await dst.send_all(out)
                index += 1
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(dst)


class SegmentingStream(trio.abc.Stream):
    """Wraps a stream; each receive_some returns at most the next size from ``sizes`` and each
    send_all is cut into pieces of the next sizes (a checkpoint between pieces)."""

    def __init__(self, inner: trio.abc.Stream, sizes: Iterator[int]) -> None:
        self.inner = inner
        self.sizes = sizes
        self.pending = bytearray()
        self.eof = False

    def _next(self) -> int:
        return max(1, next(self.sizes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = bytes(data)
        while view:
            n = self._next()
            await self.inner.send_all(view[:n])
            view = view[n:]
            await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self.pending and not self.eof:
            data = await self.inner.receive_some()
            if data:
                self.pending += data
            else:
                self.eof = True
        n = min(self._next(), len(self.pending), max_bytes or len(self.pending))
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    async def aclose(self) -> None:
        await self.inner.aclose()
