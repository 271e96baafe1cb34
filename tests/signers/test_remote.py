"""The JSON-RPC remote signer against a separate signer process over real HTTP: every message
type signs and verifies; every kind of hostile reply ends in one typed error, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from eth_account import Account

from adjudicator.tx_signing import check_signed_transaction, sign_transaction
from channels.core import eip712, model, quotes
from channels.core.errors import BadSignature, ChannelError
from channels.core.signing import LocalSigner, SignRequest, sign
from channels.signers.calling import sign_async
from channels.signers.errors import BadSignerReply, KeySourceError, SignerUnavailable
from channels.signers.remote import RemoteSigner

from .conftest import SECRET
from .server_process import signer_server

ADDRESS = LocalSigner(SECRET).address
DOMAIN = eip712.Domain(31337, model.Address(b"\x5f" * 20))
U128 = 2**128 - 1
TX = {
    "type": 2,
    "chainId": 31337,
    "nonce": 7,
    "gas": 100_000,
    "maxFeePerGas": 3 * 10**9,
    "maxPriorityFeePerGas": 10**9,
    "value": 5,
    "data": b"\x01\x02\x03",
    "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
}


def _messages() -> list[eip712.SignedMessage]:
    cid = model.ChannelId(b"\xff" * 32)
    state = model.State(
        channel_id=cid,
        version=model.Version(2**64 - 1),
        balances=(model.Amount(U128), model.Amount(U128)),
        deposited=(model.Amount(U128), model.Amount(U128)),
        withdrawn=(model.Amount(U128), model.Amount(U128)),
        locked=model.Amount(U128),
        positions_root=b"\xff" * 32,
        position_count=2**32 - 1,
        is_final=True,
    )
    return [
        state,
        model.Withdrawal(cid, model.Version(3), 0, model.Amount(U128), ADDRESS),
        model.Attestation(b"\x01" * 32, model.Timestamp(2**64 - 1), model.Price(2**256 - 1)),
        eip712.Login(2, b"\xab" * 32),
    ]


def test_connect_picks_the_only_account_and_every_message_type_verifies(honest_url: str) -> None:
    signer = RemoteSigner.connect(honest_url)
    try:
        assert signer.address == ADDRESS
        for message in _messages():
            request = SignRequest(DOMAIN, message)
            signature = sign(signer, request)  # checked against the digest and our address
            assert signature == LocalSigner(SECRET).sign_digest(request.digest)
    finally:
        signer.close()


def test_connect_refuses_an_address_the_signer_does_not_hold(honest_url: str) -> None:
    with pytest.raises(KeySourceError, match="does not hold"):
        RemoteSigner.connect(honest_url, model.Address(b"\x01" * 20))


def test_connect_refuses_a_bad_url() -> None:
    with pytest.raises(KeySourceError, match="http"):
        RemoteSigner("file:///etc/passwd", ADDRESS)


def test_unreachable_endpoint_is_signer_unavailable(tmp_path: Path) -> None:
    with signer_server(SECRET, tmp_path) as url:
        pass  # the process is dead now: nothing listens on its port
    with pytest.raises(SignerUnavailable, match="did not answer"):
        RemoteSigner.connect(url, timeout=2.0)


async def test_a_transaction_signed_remotely_is_exactly_the_one_asked(honest_url: str) -> None:
    signer = RemoteSigner.connect(honest_url)
    try:
        raw, tx_hash = await sign_transaction(signer, TX)
        assert Account.recover_transaction(raw) == Account.from_key(SECRET).address
        assert check_signed_transaction(raw, TX, bytes(ADDRESS)) == tx_hash
        deploy = {k: v for k, v in TX.items() if k != "to"}
        raw, _ = await sign_transaction(signer, deploy)
        with pytest.raises(BadSignerReply, match="recipient or calldata"):
            check_signed_transaction(raw, TX, bytes(ADDRESS))
    finally:
        signer.close()


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("huge", BadSignerReply, "exceeds"),
        ("garbage", BadSignerReply, "not JSON"),
        ("deep", BadSignerReply, "nests too deeply"),
        ("wrong-id", BadSignerReply, "not the JSON-RPC answer"),
        ("refuse", SignerUnavailable, "User rejected"),
        ("short-signature", BadSignerReply, "65-byte"),
        ("wrong-key", BadSignature, "not valid for its address"),
        ("other-digest", BadSignature, "not valid for its address"),
        ("http-500", SignerUnavailable, "HTTP 500"),
        ("slow", SignerUnavailable, "did not answer|too slow"),
    ],
)
def test_hostile_typed_data_replies_are_refused(
    tmp_path: Path, mode: str, error: type[ChannelError], match: str
) -> None:
    with signer_server(SECRET, tmp_path, misbehave=mode) as url:
        # a short timeout only where the signer is slow on purpose (a loaded machine is slow too)
        signer = RemoteSigner.connect(url, timeout=1.0 if mode == "slow" else 30.0)
        try:
            with pytest.raises(error, match=match):
                sign(signer, SignRequest(DOMAIN, _messages()[0]))
        finally:
            signer.close()


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("changed-tx", "changed the transaction's nonce"),
        ("wrong-key", "signed by another account"),
        ("garbage", "not JSON"),
        ("huge", "exceeds"),
    ],
)
async def test_hostile_transaction_replies_are_refused(
    tmp_path: Path, mode: str, match: str
) -> None:
    with signer_server(SECRET, tmp_path, misbehave=mode) as url:
        signer = RemoteSigner.connect(url, timeout=30.0)
        try:
            with pytest.raises(BadSignerReply, match=match):
                await sign_transaction(signer, TX)
        finally:
            signer.close()


async def test_the_trio_loop_keeps_running_while_a_remote_signer_works(tmp_path: Path) -> None:
    """A slow remote signature (the server takes its time) runs in a worker thread: another
    task makes progress meanwhile. Were the call made on the loop, the ticker would never run
    before the signature was done."""
    with signer_server(SECRET, tmp_path, misbehave="slow") as url:
        signer = RemoteSigner.connect(url, timeout=20.0)
        ticks = 0
        done = trio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await trio.sleep(0.05)

        async def signing() -> None:
            try:
                await sign_async(signer, SignRequest(DOMAIN, _messages()[3]))
            finally:
                done.set()

        ticks_when_done = -1

        async def signing_then_count() -> None:
            nonlocal ticks_when_done
            await signing()
            ticks_when_done = ticks

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(signing_then_count)
                nursery.start_soon(ticker)
        finally:
            signer.close()
        assert ticks_when_done > 1


def test_typed_data_is_sent_as_json_text(honest_url: str) -> None:
    """eth_signTypedData_v4 takes the typed data as a JSON string: uints stay exact."""
    signer = RemoteSigner.connect(honest_url)
    try:
        request = SignRequest(DOMAIN, _messages()[0])
        text = json.dumps(request.typed_data())
        assert '"balance0": "340282366920938463463374607431768211455"' in text
        sign(signer, request)
    finally:
        signer.close()


def test_a_firm_quote_is_signed_remotely_as_typed_data(honest_url: str) -> None:
    signer = RemoteSigner.connect(honest_url)
    try:
        quote = quotes.Quote(
            quote_id=b"\x01" * 32,
            channel_id=model.ChannelId(b"\x02" * 32),
            quoter=ADDRESS,
            request_id=2**64 - 1,
            underlying=model.symbol("ETH-USD"),
            kind=model.OptionKind.CALL,
            strike=model.Price(2**256 - 1),
            expiry=model.Timestamp(2**64 - 1),
            quoter_writes=True,
            price=model.Amount(U128),
            collateral=model.Amount(U128),
            max_quantity=model.Quantity(U128),
            valid_until=model.Timestamp(2**64 - 1),
        )
        signed = quotes.sign_quote(signer, DOMAIN, quote)
        quotes.verify_quote(DOMAIN, signed)
    finally:
        signer.close()
