"""A malicious peer against a real node (TCP on 127.0.0.1, real anvil).

The attacker dials the victim (Bob, the follower) with :func:`channels.transport.connect` using the
REAL counterparty's key (Alice's), so it is authenticated as the peer of an existing channel, while
Alice's own node is down. After every bad input the universal post-condition of docs/THREATS.md
section 6 holds (``assert_unchanged``: latest fully signed state hash/version/signatures, staged
state, the store's ``signed_versions`` and history, locked collateral and book, no new channel, no
chain transaction from the victim, no new signature sent). At the end Alice's real node comes back
on its store and a real trade still works.

THREATS rows covered (by test):

* ``test_malicious_counterparty_changes_nothing``: §3.2 (not msgpack, wrong schema, unsupported
  version, unknown type), §3.3 / C3 (bad signature, wrong signer, high-s twin), P2 / §3.4 (stale
  version replay, re-signed old version, idempotent replay of the latest), §3.4 (version gap, base
  gap, a state that does not follow from its trades / breaks conservation -> StateMismatch),
  §3.5 / P7 (expiry too soon), P9 / C2 (OpenProposal for another chain id or adjudicator), a
  channel proposal that does not name the victim, T1-adjacent Reestablish with forged or
  malleated signatures (no adoption of an unsigned "newer" state), a replayed old fully signed
  Reestablish (ignored).
* ``test_unknown_channel_flood_is_bounded``: P3 / §3.2 last row (10k messages for random channel
  ids: counted, nothing stored, memory bounded under tracemalloc).
* ``test_wrong_identity_and_wrong_prologue``: T1 (a key that is no counterparty can connect but
  cannot touch the channel; dialling with the wrong expected address fails), T5 (another chain
  id in the prologue fails the handshake).
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import msgpack
import pytest
import trio

from channels.core import eip712
from channels.core.messages import (
    Accept,
    Message,
    OpenProposal,
    Proposal,
    Reestablish,
    Reject,
    UpdateRequest,
)
from channels.core.model import (
    Address,
    Amount,
    ChannelId,
    OptionKind,
    Params,
    Position,
    PositionId,
    Price,
    Quantity,
    State,
    Timestamp,
    Version,
    symbol,
)
from channels.core.options import Context, OpenOption, Pay, Trade, apply_trades, opening_state
from channels.core.positions import PositionBook
from channels.core.protocol import Phase
from channels.core.signing import LocalSigner, malleate
from channels.core.wire import decode_message, encode_message
from channels.runtime.node import Node
from channels.transport import HandshakeError, PeerAuthError, Prologue, SecureChannel, connect

from ._helpers import (
    WEEK,
    assert_unchanged,
    desk,
    linked,
    open_channel,
    snapshot,
    wait_until,
)
from ._helpers import open_door as open_door_for
from .conftest import Desks


class Attacker:
    """An authenticated connection plus the counters of the victim to wait on."""

    def __init__(self, link: SecureChannel, victim: Node, desks: Desks, cid: ChannelId) -> None:
        self.link = link
        self.victim = victim
        self.desks = desks
        self.cid = cid
        self.received: list[Message] = []

    async def drain(self, seconds: float = 0.05) -> list[Message]:
        got: list[Message] = []
        with trio.move_on_after(seconds):
            while True:
                got.append(decode_message(await self.link.receive()))
        self.received += got
        return got

    async def send(
        self,
        payload: bytes,
        *,
        bad: int = 0,
        unknown: int = 0,
        reject: str | None = None,
    ) -> list[Message]:
        """Send one payload and wait until the victim has visibly dealt with it."""
        v = self.victim
        bad0, unknown0 = v.bad_messages, v.unknown_channel_messages
        await self.link.send(payload)
        replies: list[Message] = []
        if reject is not None:
            with trio.fail_after(5):
                while not any(isinstance(m, Reject) for m in replies):
                    replies.append(decode_message(await self.link.receive()))
            (rej,) = [m for m in replies if isinstance(m, Reject)]
            assert rej.rule == reject, rej
        else:
            await wait_until(
                lambda: (
                    (v.bad_messages - bad0, v.unknown_channel_messages - unknown0) == (bad, unknown)
                ),
                timeout=5,
            )
        replies += await self.drain()
        self.received += replies
        # Whatever the victim says, it never sends a new signature for a bad input.
        assert not any(isinstance(m, Accept | Proposal | OpenProposal) for m in replies), replies
        return replies


def _next_state(node: Node, cid: ChannelId, trades: tuple[Trade, ...], version: int) -> State:
    """What ``trades`` make of the victim's latest state (computed on a copy of its book)."""
    ch = node.channel(cid)
    book = PositionBook.from_snapshot(ch.book_snapshot())
    ctx = Context(
        params=ch.params,
        domain=ch.domain,
        now=Timestamp(node.now()),
        confirmed_deposits=ch.confirmed_deposits,
        limits=node.config.limits,
    )
    return apply_trades(ch.state, book, trades, ctx, Version(version))


def _proposal(
    signer: LocalSigner,
    domain: eip712.Domain,
    state: State,
    trades: tuple[Trade, ...],
    base: int,
) -> Proposal:
    sig = signer.sign_digest(eip712.state_digest(domain, state))
    return Proposal(state.channel_id, Version(base), trades, state, sig)


async def _setup(alice: Node, bob: Node, desks: Desks):  # type: ignore[no-untyped-def]
    ch, bch = await open_channel(alice, bob, desks)
    await ch.pay(1_000)
    await bch.pay(300)
    await ch.write_option(
        kind="call",
        underlying="ETH-USD",
        strike=3000 * 10**8,
        expiry=alice.now() + WEEK,
        quantity=10**18,
        premium=2_500,
        collateral=50_000,
    )
    await bch.wait_version(ch.version)
    assert bch.state.locked == 50_000
    return ch, bch


async def test_malicious_counterparty_changes_nothing(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                ch, _bch = await _setup(alice, bob, desks)
                cid = ch.id
            # Alice's node is down; Bob has no link. The attacker holds Alice's key.
            await bob.wait_connected(desks.alice.address, connected=False)
            before = await snapshot(bob, desks, cid)
            m = bob.channel(cid)
            domain = m.domain
            latest = m.state
            history = await bob.store.history(cid)
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect(
                "127.0.0.1", bob.listen_port or 0, desks.alice, desks.bob.address, prologue
            )
            atk = Attacker(link, bob, desks, cid)
            # Bob opens with his side of the reestablish: his latest, nothing new.
            with trio.fail_after(5):
                first = decode_message(await link.receive())
            assert isinstance(first, Reestablish) and first.state == latest
            await assert_unchanged(bob, desks, cid, before)

            async def check() -> None:
                await assert_unchanged(bob, desks, cid, before)
                assert bob.channel(cid).phase is Phase.OPEN

            # §3.2: not msgpack, trailing bytes, wrong schema, unsupported version, unknown type.
            await atk.send(b"\xc1\x00garbage", bad=1)
            await check()
            await atk.send(encode_message(Accept(cid, latest.version, bytes(65))) + b"\x00", bad=1)
            await check()
            await atk.send(msgpack.packb([1, 4, {"channel_id": cid}]), bad=1)
            await check()
            await atk.send(msgpack.packb([1, 4, {"channel_id": cid, "version": 1.5}]), bad=1)
            await check()
            await atk.send(msgpack.packb([99, 5, {}]), bad=1)
            await check()
            await atk.send(msgpack.packb([1, 77, {}]), bad=1)
            await check()
            await atk.send(os.urandom(300), bad=1)
            await check()

            pay = (Pay(0, Amount(10)),)
            good_next = _next_state(bob, cid, pay, latest.version + 1)

            # §3.3: a valid next state signed by a third key; the leader's high-s twin.
            stranger = LocalSigner.generate()
            wrong = _proposal(stranger, domain, good_next, pay, latest.version)
            await atk.send(encode_message(wrong), bad=1)
            await check()
            real = _proposal(desks.alice, domain, good_next, pay, latest.version)
            twin = Proposal(cid, real.base_version, pay, good_next, malleate(real.signature))
            await atk.send(encode_message(twin), bad=1)
            await check()
            for junk in (bytes(65), b"\x01" * 64 + b"\x1b", real.signature[:64] + b"\x00"):
                await atk.send(
                    encode_message(Proposal(cid, real.base_version, pay, good_next, junk)), bad=1
                )
                await check()

            # P2: replays of old versions (recorded ones, and an old version re-signed with
            # other contents) are refused; a replay of the latest is idempotent (same signature).
            old = history[-3]
            replay = Proposal(
                cid,
                Version(old.signed.state.version - 1),
                old.trades,
                old.signed.state,
                old.signed.signatures[0] or b"",
            )
            await atk.send(encode_message(replay), bad=1)
            await check()
            resigned = State(
                cid,
                old.signed.state.version,
                (Amount(latest.funding - latest.locked), Amount(0)),
                old.signed.state.deposited,
                old.signed.state.withdrawn,
                Amount(latest.locked),
                latest.positions_root,
                latest.position_count,
                False,
            )
            await atk.send(
                encode_message(_proposal(desks.alice, domain, resigned, pay, resigned.version - 1)),
                bad=1,
            )
            await check()
            same = Proposal(
                cid,
                Version(latest.version - 1),
                (),
                latest,
                history[-1].signed.signatures[0] or b"",
            )
            await atk.link.send(encode_message(same))
            with trio.fail_after(5):
                echo = decode_message(await link.receive())
            assert isinstance(echo, Accept) and echo.version == latest.version
            assert echo.signature == history[-1].signed.signatures[1]  # the stored one, not new
            await check()

            # The attacker now finishes the reestablish (it echoes Bob's latest, which Alice's
            # key also signed): until then Bob refuses every new proposal as one that crossed
            # the reconnection, and the rules below would never be reached.
            await atk.link.send(encode_message(first))
            await check()

            # §3.4: a version gap (wrong base; too far ahead) and a state that does not follow
            # from its trades (conservation broken) are refused with Reject, nothing signed.
            gap_base = _proposal(desks.alice, domain, good_next, pay, latest.version + 2)
            await atk.send(encode_message(gap_base), reject="VersionGap")
            await check()
            far = _next_state(bob, cid, pay, latest.version + 5_000)
            await atk.send(
                encode_message(_proposal(desks.alice, domain, far, pay, latest.version)),
                reject="VersionGap",
            )
            await check()
            b0, b1 = good_next.balances
            inflated = State(
                cid,
                good_next.version,
                (Amount(b0 + 1_000), Amount(b1)),
                good_next.deposited,
                good_next.withdrawn,
                good_next.locked,
                good_next.positions_root,
                good_next.position_count,
                False,
            )
            assert not inflated.conserves()
            await atk.send(
                encode_message(_proposal(desks.alice, domain, inflated, pay, latest.version)),
                reject="StateMismatch",
            )
            await check()
            shifted = State(
                cid,
                good_next.version,
                (Amount(b0 - 5_000), Amount(b1 + 5_000)),
                *(good_next.deposited, good_next.withdrawn, good_next.locked),
                good_next.positions_root,
                good_next.position_count,
                False,
            )
            await atk.send(
                encode_message(_proposal(desks.alice, domain, shifted, pay, latest.version)),
                reject="StateMismatch",
            )
            await check()
            # A bigger payment than Alice holds.
            overdraw = (Pay(0, Amount(latest.balances[0] + 1)),)
            await atk.send(
                encode_message(_proposal(desks.alice, domain, good_next, overdraw, latest.version)),
                reject="InsufficientFunds",
            )
            await check()

            # §3.5 / P7: an option that expires before a full dispute could settle it.
            soon = Position(
                id=PositionId(77),
                underlying=symbol("ETH-USD"),
                kind=OptionKind.CALL,
                strike=Price(3000 * 10**8),
                expiry=Timestamp(bob.now() + 10),
                quantity=Quantity(10**18),
                writer=0,
                collateral=Amount(1_000),
            )
            early = (OpenOption(soon, Amount(10)),)
            bogus = State(
                cid,
                Version(latest.version + 1),
                latest.balances,
                latest.deposited,
                latest.withdrawn,
                latest.locked,
                latest.positions_root,
                latest.position_count,
                False,
            )
            await atk.send(
                encode_message(_proposal(desks.alice, domain, bogus, early, latest.version)),
                reject="ExpiryTooSoon",
            )
            await check()

            # The leader only gets update requests; a follower never answers them.
            await atk.send(encode_message(UpdateRequest(cid, 1, pay)), bad=1)
            await check()

            # Reestablish with forged signatures: a "newer" state the victim never signed.
            richer = _next_state(bob, cid, (Pay(1, Amount(b1 // 2)),), latest.version + 3)
            digest = eip712.state_digest(domain, richer)
            alice_sig = desks.alice.sign_digest(digest)
            book = m.book_snapshot()
            for forged in (
                stranger.sign_digest(digest),  # someone else's key in Bob's slot
                alice_sig,  # Alice's signature twice
                malleate(history[-1].signed.signatures[1] or b""),  # Bob's old sig, high-s
                history[-1].signed.signatures[1] or b"",  # Bob's real sig on another state
            ):
                await atk.send(
                    encode_message(Reestablish(cid, richer, (alice_sig, forged), book)), bad=1
                )
                await check()
            # A replayed old fully signed state (both real signatures): ignored, not adopted.
            sigs = old.signed.signatures
            assert sigs[0] is not None and sigs[1] is not None
            old_book = PositionBook().snapshot()
            await atk.link.send(
                encode_message(Reestablish(cid, old.signed.state, (sigs[0], sigs[1]), old_book))
            )
            await atk.drain(0.2)
            await check()

            # P9 / C2: a channel proposal for another chain or adjudicator, or not naming Bob.
            for chain_id, adjudicator, peer in (
                (1, m.params.adjudicator, desks.bob.address),
                (bob.chain_id, Address(b"\x11" * 20), desks.bob.address),
                (bob.chain_id, m.params.adjudicator, stranger.address),
            ):
                params = Params(
                    chain_id=chain_id,
                    adjudicator=adjudicator,
                    asset=m.params.asset,
                    asset_decimals=m.params.asset_decimals,
                    participants=(desks.alice.address, peer),
                    challenge_period=3600,
                    oracle=m.params.oracle,
                    nonce=12345,
                )
                v0 = opening_state(params)
                sig = desks.alice.sign_digest(
                    eip712.state_digest(eip712.Domain(chain_id, adjudicator), v0)
                )
                await atk.send(encode_message(OpenProposal(params, (1_000, 1_000), sig)), bad=1)
                await check()
                assert len(bob.channels) == 1

            await link.aclose()
            assert not any(isinstance(x, Accept) and x is not echo for x in atk.received)
            await bob.wait_connected(desks.alice.address, connected=False)
            await assert_unchanged(bob, desks, cid, before)

            # The honest Alice comes back on her store: reestablish, then a real trade works.
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                ach = alice.channel(cid)
                await linked(alice, ach, bob, bob.channel(cid))
                done = await ach.pay(42)
                await bob.channel(cid).wait_version(done.version)
                assert bob.channel(cid).state == ach.state == done
                assert done.version > latest.version
                assert done.balances[1] == latest.balances[1] + 42


async def test_unknown_channel_flood_is_bounded(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                ch, _ = await _setup(alice, bob, desks)
                cid = ch.id
            await bob.wait_connected(desks.alice.address, connected=False)
            before = await snapshot(bob, desks, cid)
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect(
                "127.0.0.1", bob.listen_port or 0, desks.alice, desks.bob.address, prologue
            )
            atk = Attacker(link, bob, desks, cid)
            await atk.drain(0.2)  # Bob's reestablish
            latest = bob.channel(cid).state
            count0 = bob.unknown_channel_messages
            sig = desks.alice.sign_digest(bytes(32))

            def messages(n: int) -> list[bytes]:
                out: list[bytes] = []
                for i in range(n):
                    other = ChannelId(os.urandom(32))
                    msg: Message
                    if i % 10 < 8:
                        msg = Accept(other, Version(i), sig)
                    elif i % 10 == 8:
                        msg = Reject(other, Version(i), None, "X", "y" * 100)
                    else:
                        state = State(other, *_fields_of(latest))
                        msg = Proposal(other, Version(latest.version), (), state, sig)
                    out.append(encode_message(msg))
                return out

            async def flood(payloads: list[bytes]) -> None:
                for payload in payloads:
                    await link.send(payload)

            warm, payloads = messages(500), messages(10_000)
            await flood(warm)  # warm up caches and lazy imports before measuring
            await wait_until(lambda: bob.unknown_channel_messages == count0 + 500, timeout=20)
            tracemalloc.start()
            try:
                base, _ = tracemalloc.get_traced_memory()
                await flood(payloads)
                await wait_until(
                    lambda: bob.unknown_channel_messages == count0 + 10_500, timeout=40
                )
                current, _peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            grown = current - base
            # 10k messages of ~100-300 bytes are ~2 MB on the wire; little may stay behind.
            assert grown < 512 * 1024, f"memory grew by {grown} bytes"
            assert not await atk.drain(0.1)  # nothing is answered
            await assert_unchanged(bob, desks, cid, before)
            assert len(bob.channels) == 1
            await link.aclose()


def _fields_of(s: State) -> tuple[object, ...]:
    return (
        s.version,
        s.balances,
        s.deposited,
        s.withdrawn,
        s.locked,
        s.positions_root,
        s.position_count,
        s.is_final,
    )


async def test_wrong_identity_and_wrong_prologue(desks: Desks, tmp_path: Path) -> None:
    # Bob's bot admits any key that dials in (strangers are refused by default: see
    # tests/node/test_consent.py), so a stranger's messages reach the channel code.
    open_door = open_door_for(desks, desks.bob)
    with trio.fail_after(60):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=open_door) as bob:
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                ch, bch = await _setup(alice, bob, desks)
                cid = ch.id
                before = await snapshot(bob, desks, cid)
                prologue = Prologue(bob.chain_id, Address(bob.chain.address))
                port = bob.listen_port or 0
                # T5: another chain id (or protocol) in the prologue: the handshake fails.
                for bad_prologue in (
                    Prologue(1, Address(bob.chain.address)),
                    Prologue(bob.chain_id, Address(bob.chain.address), b"optchan/2"),
                ):
                    with pytest.raises(HandshakeError):
                        await connect(
                            "127.0.0.1", port, desks.alice, desks.bob.address, bad_prologue
                        )
                # T1: dialling Bob but expecting someone else: we refuse him. (A stranger's key:
                # with Alice's key Bob would take the connection as Alice's newest link.)
                stranger = LocalSigner.generate()
                with pytest.raises(PeerAuthError):
                    await connect("127.0.0.1", port, stranger, desks.alice.address, prologue)
                # A key that is no counterparty is let in (Bob's bot admits it) but cannot touch
                # the channel, and does not disturb Alice's live link.
                link = await connect("127.0.0.1", port, stranger, desks.bob.address, prologue)
                atk = Attacker(link, bob, desks, cid)
                assert not await atk.drain(0.1)  # no reestablish for a stranger
                pay = (Pay(0, Amount(10)),)
                nxt = _next_state(bob, cid, pay, bch.version + 1)
                m = bob.channel(cid)
                for who in (stranger, desks.alice):  # even with Alice's real signature
                    await atk.send(
                        encode_message(_proposal(who, m.domain, nxt, pay, bch.version)), unknown=1
                    )
                    await assert_unchanged(bob, desks, cid, before)
                sigs = m.latest.signatures
                assert sigs[0] is not None and sigs[1] is not None
                await atk.send(
                    encode_message(
                        Reestablish(cid, m.state, (sigs[0], sigs[1]), m.book_snapshot())
                    ),
                    unknown=1,
                )
                await atk.send(encode_message(UpdateRequest(cid, 1, pay)), unknown=1)
                await assert_unchanged(bob, desks, cid, before)
                assert bob.is_connected(desks.alice.address)
                await link.aclose()
                # Alice's link was never disturbed: trading goes on.
                done = await ch.pay(7)
                await bch.wait_version(done.version)
                assert bch.state == ch.state
