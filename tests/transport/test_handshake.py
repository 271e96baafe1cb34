"""Handshake and AUTH over trio memory streams: happy path, impersonation, replay, reflection,
prologue mismatch, garbage, slowloris (docs/THREATS.md T1, T2, T5 and section 6.1)."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from channels.core.errors import InvalidField
from channels.core.signing import malleate
from channels.transport import (
    MAX_CHUNK,
    ROLE_INITIATOR,
    ROLE_RESPONDER,
    ConnectionClosed,
    HandshakeError,
    PeerAuthError,
    Prologue,
    TransportConfig,
    TransportError,
    initiate,
    respond,
)

from ._helpers import (
    ADJUDICATOR,
    ALICE,
    BOB,
    CAROL,
    CHAIN_ID,
    MALLORY,
    PROLOGUE,
    RawPeer,
    accept_all,
    both,
    frame,
    honest_pair,
)

SIZES = [0, 1, 300, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 3 * MAX_CHUNK + 7, 1 << 20]


async def test_happy_path_both_directions_large_payloads() -> None:
    a, b = await honest_pair()
    assert a.peer_address == BOB.address
    assert b.peer_address == ALICE.address
    assert a.handshake_hash == b.handshake_hash and len(a.handshake_hash) == 32
    payloads = [os.urandom(n) for n in SIZES]

    async def send_all(channel: object) -> None:
        for p in payloads:
            await channel.send(p)  # type: ignore[attr-defined]

    for sender, receiver in ((a, b), (b, a)):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all, sender)
            for p in payloads:
                assert await receiver.receive() == p
    # Both directions at once.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_all, a)
        nursery.start_soon(send_all, b)
        for p in payloads:
            assert await a.receive() == p
            assert await b.receive() == p
    await a.aclose()
    with pytest.raises(ConnectionClosed):
        await b.receive()
    with pytest.raises(ConnectionClosed):
        await a.send(b"after close")


async def test_responder_can_send_first_right_after_handshake() -> None:
    """Bytes that arrive together with the last handshake frame are not lost."""
    sa, sb = trio.testing.memory_stream_pair()

    async def bob() -> bytes:
        channel = await respond(sb, BOB, PROLOGUE, accept_all)
        await channel.send(b"hello from bob")
        return await channel.receive()

    async def alice() -> bytes:
        await trio.sleep(0.01)  # let Bob's AUTH and first message queue up together
        channel = await initiate(sa, ALICE, BOB.address, PROLOGUE)
        got = await channel.receive()
        await channel.send(b"hello from alice")
        return got

    ra, rb = await both(alice, bob)
    assert ra.unwrap() == b"hello from bob"
    assert rb.unwrap() == b"hello from alice"


async def test_wrong_address_initiator_expects_bob_talks_to_carol() -> None:
    sa, sb = trio.testing.memory_stream_pair()
    ra, rc = await both(
        lambda: initiate(sa, ALICE, BOB.address, PROLOGUE),
        lambda: respond(sb, CAROL, PROLOGUE, accept_all),
    )
    with pytest.raises(PeerAuthError, match="dialled"):
        ra.unwrap()
    carol = rc.unwrap()  # Carol's handshake finished, but Alice hung up: no traffic ever flows
    with pytest.raises(ConnectionClosed):
        await carol.receive()


async def test_accept_peer_refuses_and_responder_never_proves_its_identity() -> None:
    sa, sb = trio.testing.memory_stream_pair()
    seen: list[bytes] = []

    def only_carol(address: bytes) -> bool:
        seen.append(address)
        return address == CAROL.address

    mallory = RawPeer(sa, initiator=True)

    async def mallory_side() -> bytes:
        await mallory.handshake()
        await mallory.send_encrypted(mallory.auth(ALICE))  # a genuine AUTH from Alice's key
        return await mallory.read_all()

    rm, rb = await both(mallory_side, lambda: respond(sb, BOB, PROLOGUE, only_carol))
    with pytest.raises(PeerAuthError, match="not accepted"):
        rb.unwrap()
    assert seen == [ALICE.address]
    assert rm.unwrap() == b""  # no AUTH from Bob, just EOF


async def test_accept_peer_refuses_honest_initiator_sees_handshake_error() -> None:
    sa, sb = trio.testing.memory_stream_pair()
    ra, rb = await both(
        lambda: initiate(sa, ALICE, BOB.address, PROLOGUE),
        lambda: respond(sb, BOB, PROLOGUE, lambda _addr: False),
    )
    with pytest.raises(HandshakeError, match="closed"):
        ra.unwrap()
    with pytest.raises(PeerAuthError):
        rb.unwrap()


async def _capture_bob_auth() -> bytes:
    """Session 1: Mallory is a legitimate peer of Bob and decrypts Bob's AUTH."""
    sm, sb = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=True)

    async def mallory_side() -> bytes:
        await mallory.handshake()
        await mallory.send_encrypted(mallory.auth(MALLORY))
        return await mallory.read_decrypted()

    rm, rb = await both(mallory_side, lambda: respond(sb, BOB, PROLOGUE, accept_all))
    rb.unwrap()
    captured = rm.unwrap()
    assert captured[:20] == BOB.address
    return captured


async def test_auth_replayed_from_another_session_is_refused_by_initiator() -> None:
    captured = await _capture_bob_auth()
    # Session 2: Alice dials Bob; Mallory answers and replays Bob's AUTH of session 1.
    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def mallory_side() -> None:
        await mallory.handshake()
        await mallory.read_frame()  # Alice's AUTH
        await mallory.send_encrypted(captured)

    ra, _rm = await both(lambda: initiate(sa, ALICE, BOB.address, PROLOGUE), mallory_side)
    with pytest.raises(PeerAuthError, match="not by the claimed address"):
        ra.unwrap()
    assert mallory.handshake_hash != b""


async def test_auth_replayed_from_another_session_is_refused_by_responder() -> None:
    # Session 1: Alice dials Mallory (a real peer of hers); Mallory keeps Alice's AUTH.
    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def mallory_keeps() -> bytes:
        await mallory.handshake()
        alice_auth = await mallory.read_decrypted()
        await mallory.send_encrypted(mallory.auth(MALLORY))
        return alice_auth

    ra, rm = await both(lambda: initiate(sa, ALICE, MALLORY.address, PROLOGUE), mallory_keeps)
    ra.unwrap()
    alice_auth = rm.unwrap()
    # Session 2: Mallory dials Bob pretending to be Alice with the captured AUTH.
    sm2, sb = trio.testing.memory_stream_pair()
    mallory2 = RawPeer(sm2, initiator=True)
    asked: list[bytes] = []

    async def mallory_replays() -> bytes:
        await mallory2.handshake()
        await mallory2.send_encrypted(alice_auth)
        return await mallory2.read_all()

    rm2, rb = await both(
        mallory_replays, lambda: respond(sb, BOB, PROLOGUE, lambda x: asked.append(x) or True)
    )
    with pytest.raises(PeerAuthError):
        rb.unwrap()
    assert asked == []  # no lookup happens for an unproven address
    assert rm2.unwrap() == b""


async def test_reflection_responder_presents_initiator_role_signature() -> None:
    """Bob's key signs this very session's hash, but for role 0x01: refused."""
    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def mallory_side() -> None:
        await mallory.handshake()
        await mallory.read_frame()
        await mallory.send_encrypted(mallory.auth(BOB, role=ROLE_INITIATOR))

    ra, _ = await both(lambda: initiate(sa, ALICE, BOB.address, PROLOGUE), mallory_side)
    with pytest.raises(PeerAuthError):
        ra.unwrap()


async def test_reflection_initiator_presents_responder_role_signature() -> None:
    sm, sb = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=True)

    async def mallory_side() -> None:
        await mallory.handshake()
        await mallory.send_encrypted(mallory.auth(ALICE, role=ROLE_RESPONDER))

    _, rb = await both(mallory_side, lambda: respond(sb, BOB, PROLOGUE, accept_all))
    with pytest.raises(PeerAuthError):
        rb.unwrap()


async def test_reflection_echo_of_own_auth() -> None:
    """Alice dials her own address (say, a misconfigured peer list); Mallory echoes Alice's own
    AUTH back (same session hash, re-encrypted): the role byte makes it fail."""
    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def mallory_side() -> None:
        await mallory.handshake()
        echoed = await mallory.read_decrypted()
        assert echoed[:20] == ALICE.address
        await mallory.send_encrypted(echoed)

    ra, rm = await both(lambda: initiate(sa, ALICE, ALICE.address, PROLOGUE), mallory_side)
    rm.unwrap()
    with pytest.raises(PeerAuthError):
        ra.unwrap()


@pytest.mark.parametrize(
    "bad_auth",
    [
        pytest.param(lambda p: p.auth(MALLORY, claimed=BOB.address), id="claims-bob-signs-mallory"),
        pytest.param(lambda p: p.auth(BOB)[:-1], id="short"),
        pytest.param(lambda p: p.auth(BOB) + b"\x00", id="long"),
        pytest.param(lambda p: p.auth(BOB)[:20] + malleate(p.auth(BOB)[20:]), id="high-s"),
        pytest.param(lambda p: p.auth(BOB)[:84] + b"\x01", id="v=1"),
        pytest.param(lambda p: BOB.address + bytes(65), id="zero-sig"),
    ],
)
async def test_malformed_or_foreign_auth_is_refused(bad_auth: object) -> None:
    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def mallory_side() -> None:
        await mallory.handshake()
        await mallory.read_frame()
        # A wrong-length AUTH frame is refused from its length prefix already (HandshakeError).
        await mallory.send_encrypted(bad_auth(mallory))  # type: ignore[operator]

    ra, _ = await both(lambda: initiate(sa, ALICE, BOB.address, PROLOGUE), mallory_side)
    with pytest.raises((PeerAuthError, HandshakeError)):
        ra.unwrap()


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(Prologue(CHAIN_ID + 1, ADJUDICATOR), id="chain-id"),  # type: ignore[arg-type]
        pytest.param(Prologue(CHAIN_ID, bytes(19) + b"\x01"), id="adjudicator"),  # type: ignore[arg-type]
        pytest.param(Prologue(CHAIN_ID, ADJUDICATOR, b"optchan/2"), id="optchan/2"),  # type: ignore[arg-type]
    ],
)
async def test_prologue_mismatch_fails_the_handshake(other: Prologue) -> None:
    assert other.to_bytes() != PROLOGUE.to_bytes()
    sa, sb = trio.testing.memory_stream_pair()
    ra, rb = await both(
        lambda: initiate(sa, ALICE, BOB.address, PROLOGUE),
        lambda: respond(sb, BOB, other, accept_all),
    )
    with pytest.raises(HandshakeError):
        ra.unwrap()
    with pytest.raises(HandshakeError):
        rb.unwrap()


def test_prologue_validation() -> None:
    assert PROLOGUE.to_bytes() == b"optchan/1" + CHAIN_ID.to_bytes(32, "big") + ADJUDICATOR
    with pytest.raises(InvalidField):
        Prologue(-1, ADJUDICATOR)  # type: ignore[arg-type]
    with pytest.raises(InvalidField):
        Prologue(1, bytes(19))  # type: ignore[arg-type]
    with pytest.raises(InvalidField):
        Prologue(1, ADJUDICATOR, b"")  # type: ignore[arg-type]
    with pytest.raises(InvalidField):
        TransportConfig(rekey_interval=0)
    with pytest.raises(InvalidField):
        TransportConfig(keepalive_interval=0)


async def _bob_against(raw: bytes, *, keep_open: bool = False) -> tuple[BaseException, bytes]:
    """Feed ``raw`` to a responder; return its error and every byte it wrote back."""
    sm, sb = trio.testing.memory_stream_pair()
    config = TransportConfig(handshake_timeout=0.5)

    async def attacker() -> bytes:
        await sm.send_all(raw)
        if not keep_open:
            await sm.send_eof()
        out = b""
        while data := await sm.receive_some():
            out += data
        return out

    rm, rb = await both(attacker, lambda: respond(sb, BOB, PROLOGUE, accept_all, config=config))
    with pytest.raises(TransportError) as info:
        rb.unwrap()
    return info.value, rm.unwrap()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(os.urandom(200), id="random-200"),
        pytest.param(b"\xff\xff" + os.urandom(100), id="huge-prefix"),
        pytest.param(frame(os.urandom(31)), id="act1-short"),
        pytest.param(frame(os.urandom(33)), id="act1-long"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_random_bytes_as_act_one_fail_without_reply(raw: bytes) -> None:
    error, reply = await _bob_against(raw)
    assert isinstance(error, HandshakeError)
    assert reply == b""


async def test_random_act_three_fails_without_further_reply() -> None:
    """XX message 1 carries no MAC, so a well-sized random message 1 gets message 2 back (XX
    cannot avoid that; it reveals only a fresh X25519 key). A random message 3 then fails and
    nothing follows message 2."""
    sm, sb = trio.testing.memory_stream_pair()

    async def attacker() -> bytes:
        await sm.send_all(frame(os.urandom(32)))
        act2 = await sm.receive_some()
        assert len(act2) == 2 + 96
        await sm.send_all(frame(os.urandom(64)) + frame(os.urandom(101)))
        out = b""
        while data := await sm.receive_some():
            out += data
        return out

    rm, rb = await both(attacker, lambda: respond(sb, BOB, PROLOGUE, accept_all))
    with pytest.raises(HandshakeError, match="message 3"):
        rb.unwrap()
    assert rm.unwrap() == b""


async def test_random_act_two_fails_initiator_without_reply() -> None:
    sa, sm = trio.testing.memory_stream_pair()

    async def attacker() -> bytes:
        act1 = await sm.receive_some()
        assert len(act1) == 2 + 32
        await sm.send_all(frame(os.urandom(96)))
        out = b""
        while data := await sm.receive_some():
            out += data
        return out

    ra, rm = await both(lambda: initiate(sa, ALICE, BOB.address, PROLOGUE), attacker)
    with pytest.raises(HandshakeError, match="message 2"):
        ra.unwrap()
    assert rm.unwrap() == b""  # no message 3, no AUTH: Alice's identity was not revealed


async def test_slowloris_handshake_closed_at_deadline(autojump_clock: object) -> None:
    """A valid message 1, one byte per second: closed at the handshake deadline (0.5 s)."""
    sm, sb = trio.testing.memory_stream_pair()
    config = TransportConfig(handshake_timeout=0.5)
    payload = frame(RawPeer(sm, initiator=True).noise.write_message())
    start = trio.current_time()
    closed_at: list[float] = []

    async def slow() -> None:
        try:
            for byte in payload:
                await sm.send_all(bytes((byte,)))
                await trio.sleep(1)
        except trio.BrokenResourceError:
            closed_at.append(trio.current_time())

    _rm, rb = await both(slow, lambda: respond(sb, BOB, PROLOGUE, accept_all, config=config))
    with pytest.raises(HandshakeError, match="deadline"):
        rb.unwrap()
    assert closed_at and closed_at[0] - start <= 1.0 + 1e-9


async def test_silent_responder_initiator_times_out(autojump_clock: object) -> None:
    sa, _sm = trio.testing.memory_stream_pair()
    start = trio.current_time()
    with pytest.raises(HandshakeError, match="deadline"):
        await initiate(
            sa, ALICE, BOB.address, PROLOGUE, config=TransportConfig(handshake_timeout=5)
        )
    assert trio.current_time() - start == pytest.approx(5.0)


async def test_signer_sees_only_auth_digests() -> None:
    """Each side signs exactly one digest, bound to its own role and the session hash."""
    from channels.transport import auth_digest

    class Recording:
        def __init__(self, inner: object) -> None:
            self.inner = inner
            self.digests: list[bytes] = []

        @property
        def address(self) -> bytes:
            return self.inner.address  # type: ignore[attr-defined, no-any-return]

        def sign_digest(self, digest: bytes) -> bytes:
            self.digests.append(digest)
            return self.inner.sign_digest(digest)  # type: ignore[attr-defined, no-any-return]

    ra_signer, rb_signer = Recording(ALICE), Recording(BOB)
    sa, sb = trio.testing.memory_stream_pair()
    ra, rb = await both(
        lambda: initiate(sa, ra_signer, BOB.address, PROLOGUE),  # type: ignore[arg-type]
        lambda: respond(sb, rb_signer, PROLOGUE, accept_all),  # type: ignore[arg-type]
    )
    h = ra.unwrap().handshake_hash
    assert rb.unwrap().handshake_hash == h
    assert ra_signer.digests == [auth_digest(PROLOGUE, ROLE_INITIATOR, h)]
    assert rb_signer.digests == [auth_digest(PROLOGUE, ROLE_RESPONDER, h)]
