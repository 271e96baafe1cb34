"""Typed-data JSON text signed by eth-account, ethers 6 and eth-sig-util verifies on the contract,
for every message type at the largest values its fields may carry: the deployed adjudicator
computes the same digest, and the adjudicator's own signature rules (``Signatures.recover``,
exposed by ``Harness.recover``) recover the signer. The transport ``Login`` and the firm ``Quote``
have no contract function; their digests are composed on chain from the adjudicator's domain
separator."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from eth_account import Account

from adjudicator.client import (
    adjudicator_abi,
    attestation_tuple,
    signature_tuple,
    state_tuple,
    withdrawal_tuple,
)
from channels.core import eip712, model, quotes
from channels.core.hashing import keccak256
from channels.core.signing import LocalSigner, SignRequest, verify
from tests.core.js_wallets import LIBRARIES, available, sign_with_js

from .kit import Env, SyncChain, artifact_abi, deploy_artifact_sync

ADJUDICATOR = adjudicator_abi()
HARNESS = artifact_abi("Harness")
SECRET = keccak256(b"on-chain typed data")
SIGNER = LocalSigner(SECRET).address
U32, U64, U128, U256 = (2**b - 1 for b in (32, 64, 128, 256))


@pytest.fixture(scope="module")
def harness(env: Env) -> bytes:
    return deploy_artifact_sync(env, "Harness")


@pytest.fixture(scope="module")
def chain(env: Env) -> Iterator[SyncChain]:
    c = SyncChain(env.url)
    yield c
    c.close()


def _maxima() -> list[object]:
    top = model.ChannelId(b"\xff" * 32)
    return [
        model.State(
            channel_id=top,
            version=model.Version(U64),
            balances=(model.Amount(U128), model.Amount(U128)),
            deposited=(model.Amount(U128), model.Amount(U128)),
            withdrawn=(model.Amount(U128), model.Amount(U128)),
            locked=model.Amount(U128),
            positions_root=b"\xff" * 32,
            position_count=U32,
            is_final=True,
        ),
        model.Withdrawal(
            top, model.Version(U64), 1, model.Amount(U128), model.Address(b"\xff" * 20)
        ),
        model.Attestation(b"\xff" * 32, model.Timestamp(U64), model.Price(U256)),
        eip712.Login(255, b"\xff" * 32),
        quotes.Quote(
            quote_id=b"\xff" * 32,
            channel_id=top,
            quoter=SIGNER,
            request_id=U64,
            underlying=b"\xff" * 32,
            kind=model.OptionKind.PUT,
            strike=model.Price(U256),
            expiry=model.Timestamp(U64),
            quoter_writes=False,
            price=model.Amount(U128),
            collateral=model.Amount(U128),
            max_quantity=model.Quantity(U128),
            valid_until=model.Timestamp(U64),
            replaces=b"\xfe" * 32,
        ),
    ]


def _request(domain: eip712.Domain, message: object) -> SignRequest:
    if isinstance(message, quotes.Quote):
        digest = model.Digest(quotes.quote_digest(domain, message))
        return SignRequest(domain, message, digest, quotes.quote_typed_data)
    return SignRequest(domain, message)


def _contract_digest(chain: SyncChain, env: Env, harness: bytes, message: object) -> bytes:
    if isinstance(message, model.State):
        fn, arg = "stateDigest", state_tuple(message)
    elif isinstance(message, model.Withdrawal):
        fn, arg = "withdrawalDigest", withdrawal_tuple(message)
    elif isinstance(message, model.Attestation):
        fn, arg = "attestationDigest", attestation_tuple(message)
    else:
        assert isinstance(message, eip712.Login | quotes.Quote)
        struct_hash = (
            eip712.login_struct_hash(message)
            if isinstance(message, eip712.Login)
            else quotes.quote_struct_hash(message)
        )
        separator = ADJUDICATOR.decode_output(
            "domainSeparator",
            chain.call(env.adjudicator, ADJUDICATOR.encode_call("domainSeparator")),
        )[0]
        data = HARNESS.encode_call("typedDataDigest", bytes(separator), struct_hash)
        return bytes(HARNESS.decode_output("typedDataDigest", chain.call(harness, data))[0])
    out = chain.call(env.adjudicator, ADJUDICATOR.encode_call(fn, arg))
    return bytes(ADJUDICATOR.decode_output(fn, out)[0])


def _recover_on_chain(chain: SyncChain, harness: bytes, digest: bytes, signature: bytes) -> bytes:
    out = chain.call(harness, HARNESS.encode_call("recover", digest, signature_tuple(signature)))
    return model.address(HARNESS.decode_output("recover", out)[0])


def test_every_message_at_the_maxima_signed_as_text_verifies_on_chain(
    env: Env, chain: SyncChain, harness: bytes
) -> None:
    domain = eip712.Domain(env.chain_id, model.Address(env.adjudicator))
    requests = [_request(domain, m) for m in _maxima()]
    texts = [json.dumps(r.typed_data()) for r in requests]
    signatures: dict[str, list[bytes]] = {
        "eth-account": [
            bytes(Account.sign_typed_data(SECRET, full_message=json.loads(t)).signature)
            for t in texts
        ]
    }
    if available():
        js = sign_with_js(SECRET, texts)
        for library in LIBRARIES:
            assert all("error" not in r for r in js[library]), js[library]
            signatures[library] = [bytes.fromhex(r["signature"][2:]) for r in js[library]]
    for i, request in enumerate(requests):
        assert _contract_digest(chain, env, harness, request.message) == request.digest
        for library, sigs in signatures.items():
            verify(request.digest, sigs[i], SIGNER)
            assert _recover_on_chain(chain, harness, request.digest, sigs[i]) == SIGNER, library


def test_a_domain_at_the_maximum_chain_id_matches_the_harness(
    chain: SyncChain, harness: bytes
) -> None:
    domain = eip712.Domain(U256, model.Address(b"\xff" * 20))
    state = _maxima()[0]
    assert isinstance(state, model.State)
    request = SignRequest(domain, state)
    data = HARNESS.encode_call("stateDigest", U256, "0x" + "ff" * 20, state_tuple(state))
    assert (
        bytes(HARNESS.decode_output("stateDigest", chain.call(harness, data))[0]) == request.digest
    )
    signature = bytes(
        Account.sign_typed_data(
            SECRET, full_message=json.loads(json.dumps(request.typed_data()))
        ).signature
    )
    assert _recover_on_chain(chain, harness, request.digest, signature) == SIGNER
