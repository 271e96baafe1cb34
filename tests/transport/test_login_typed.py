"""The transport login is an EIP-712 ``Login`` message: typed-data-only signers can log in, and a
login signed for another deployment, or in the old ad-hoc format, is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from eth_account import Account

from channels.core.errors import BadSignature
from channels.core.hashing import keccak256
from channels.core.model import Address
from channels.core.secure_session import HandshakeError, PeerAuthError
from channels.transport import ROLE_INITIATOR, ROLE_RESPONDER, Prologue, initiate, respond

from ._helpers import ADJUDICATOR, ALICE, BOB, CHAIN_ID, PROLOGUE, RawPeer, accept_all, both

ALICE_KEY = bytes.fromhex("a1" * 32)
BOB_KEY = bytes.fromhex("b0" * 32)


class TypedOnly:
    """A wallet that signs eth_signTypedData_v4 JSON text only (never a bare digest)."""

    def __init__(self, secret: bytes) -> None:
        self._account = Account.from_key(secret)
        self.seen: list[dict[str, Any]] = []

    @property
    def address(self) -> Address:
        return Address(bytes.fromhex(self._account.address[2:]))

    def sign_typed_data(self, typed_data: dict[str, Any], digest: bytes) -> bytes:
        self.seen.append(typed_data)
        text = json.dumps(typed_data)  # what goes over the wire to a wallet
        signed = self._account.sign_typed_data(full_message=json.loads(text))
        return bytes(signed.signature)


async def test_typed_data_only_signers_log_in_both_ways() -> None:
    alice, bob = TypedOnly(ALICE_KEY), TypedOnly(BOB_KEY)
    sa, sb = trio.testing.memory_stream_pair()
    ra, rb = await both(
        lambda: initiate(sa, alice, BOB.address, PROLOGUE),
        lambda: respond(sb, bob, PROLOGUE, accept_all),
    )
    a, b = ra.unwrap(), rb.unwrap()
    assert a.peer_address == BOB.address and b.peer_address == ALICE.address
    (login,) = alice.seen
    assert login["primaryType"] == "Login"
    assert login["message"] == {"role": "1", "handshakeHash": "0x" + a.handshake_hash.hex()}
    assert login["domain"]["chainId"] == str(CHAIN_ID)
    assert login["domain"]["verifyingContract"].lower() == "0x" + ADJUDICATOR.hex()
    assert bob.seen[0]["message"]["role"] == "2"


async def test_a_signer_that_signs_with_another_key_is_caught_before_sending() -> None:
    class WrongKey(TypedOnly):
        @property
        def address(self) -> Address:
            return ALICE.address  # claims Alice, signs with Bob's key

    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def responder() -> None:
        with pytest.raises(EOFError):  # message 3 never comes: nothing signed is sent
            await mallory.handshake()

    ra, rm = await both(lambda: initiate(sa, WrongKey(BOB_KEY), BOB.address, PROLOGUE), responder)
    with pytest.raises(BadSignature, match="not valid for its address"):
        ra.unwrap()
    rm.unwrap()


@pytest.mark.parametrize(
    "make_auth",
    [
        pytest.param(
            lambda p: p.auth(BOB, prologue=Prologue(CHAIN_ID + 1, ADJUDICATOR)),  # type: ignore[arg-type]
            id="login-for-another-chain",
        ),
        pytest.param(
            lambda p: p.auth(BOB, prologue=Prologue(CHAIN_ID, bytes(19) + b"\x07")),  # type: ignore[arg-type]
            id="login-for-another-adjudicator",
        ),
        pytest.param(
            lambda p: p.auth(
                BOB,
                digest=keccak256(
                    b"\x19optchan-auth-v1" + bytes((ROLE_RESPONDER,)) + p.handshake_hash
                ),
            ),
            id="old-ad-hoc-login",
        ),
        pytest.param(lambda p: p.auth(BOB, role=ROLE_INITIATOR), id="reflected-role"),
    ],
)
async def test_logins_not_for_this_session_and_deployment_are_refused(make_auth: Any) -> None:
    sa, sm = trio.testing.memory_stream_pair()
    mallory = RawPeer(sm, initiator=False)

    async def mallory_side() -> None:
        await mallory.handshake()
        await mallory.read_frame()
        await mallory.send_encrypted(make_auth(mallory))

    ra, _ = await both(lambda: initiate(sa, ALICE, BOB.address, PROLOGUE), mallory_side)
    with pytest.raises((PeerAuthError, HandshakeError)):
        ra.unwrap()
