"""Signatures against eth-account, and every malformed signature the contract refuses
(docs/PROTOCOL.md section 6; docs/THREATS.md C3, C4 and 6.3)."""

from __future__ import annotations

import coincurve
import pytest
from coincurve import ecdsa
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.core import eip712, model
from channels.core.errors import BadSignature, InvalidField, NonCanonicalSignature
from channels.core.signing import (
    HALF_N,
    SECP256K1_N,
    LocalSigner,
    check_signature_shape,
    malleate,
    recover,
    verify,
)

from ._strategies import ALICE, BOB, DOMAIN, MALLORY, secret, states

FAST = settings(max_examples=200, deadline=None)

secrets = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
digests = st.binary(min_size=32, max_size=32)


def _eth_sign(secret_key: bytes, digest: bytes) -> tuple[int, int, int, bytes]:
    signed = Account.unsafe_sign_hash(digest, secret_key)
    return signed.v, signed.r, signed.s, bytes(signed.signature)


@FAST
@given(secrets, digests)
def test_signature_equals_eth_account(secret_key: bytes, digest: bytes) -> None:
    signer = LocalSigner(secret_key)
    sig = signer.sign_digest(digest)
    v, r, s, raw = _eth_sign(secret_key, digest)
    assert sig == raw
    assert (sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")) == (
        v,
        r,
        s,
    )
    assert signer.address == bytes.fromhex(Account.from_key(secret_key).address[2:])
    assert 0 < s <= HALF_N
    assert recover(digest, sig) == signer.address
    verify(digest, sig, signer.address)


@FAST
@given(secrets, digests)
def test_eth_account_recovers_our_signatures(secret_key: bytes, digest: bytes) -> None:
    signer = LocalSigner(secret_key)
    sig = signer.sign_digest(digest)
    assert Account._recover_hash(digest, signature=sig) == model.to_checksum(signer.address)


@FAST
@given(states)
def test_state_signature_round_trip(s: model.State) -> None:
    digest = eip712.state_digest(DOMAIN, s)
    sig = ALICE.sign_digest(digest)
    assert recover(digest, sig) == ALICE.address
    with pytest.raises(BadSignature):
        verify(digest, sig, BOB.address)


@FAST
@given(secrets, digests)
def test_malleated_twin_is_refused(secret_key: bytes, digest: bytes) -> None:
    sig = LocalSigner(secret_key).sign_digest(digest)
    twin = malleate(sig)
    assert twin != sig
    assert twin[64] in (27, 28) and twin[64] != sig[64]
    # The twin is a valid signature for raw ecrecover (eth-account checks only s < n) ...
    assert Account._recover_hash(digest, vrs=(twin[64], *_rs(twin))) == model.to_checksum(
        LocalSigner(secret_key).address
    )
    # ... and we refuse it, as the contract does.
    with pytest.raises(NonCanonicalSignature):
        recover(digest, twin)
    with pytest.raises(NonCanonicalSignature):
        verify(digest, twin, LocalSigner(secret_key).address)
    assert malleate(twin) == sig


def _rs(sig: bytes) -> tuple[int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")


def _sig(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))


DIGEST = bytes(range(32))
GOOD = ALICE.sign_digest(DIGEST)
GOOD_R, GOOD_S = _rs(GOOD)


@pytest.mark.parametrize("v", [0, 1, 2, 26, 29, 30, 35, 36, 255])
def test_bad_v_is_refused(v: int) -> None:
    with pytest.raises(BadSignature):
        recover(DIGEST, GOOD[:64] + bytes((v,)))


def test_flipped_v_is_refused_though_r_s_verify() -> None:
    """The other parity of v (27 <-> 28) keeps r and s, which a plain ECDSA verification against
    the signer's key accepts; ecrecover on chain gives another address for it, so we must too
    (why verify() recovers instead of verifying against a cached key)."""
    flipped = GOOD[:64] + bytes((55 - GOOD[64],))
    raw = ecdsa.deserialize_recoverable(flipped[:64] + bytes((flipped[64] - 27,)))
    der = ecdsa.cdata_to_der(ecdsa.recoverable_convert(raw))
    alice_key = coincurve.PublicKey.from_signature_and_message(
        GOOD[:64] + bytes((GOOD[64] - 27,)), DIGEST, hasher=None
    )
    assert alice_key.verify(der, DIGEST, hasher=None)  # r and s alone: "valid"
    assert recover(DIGEST, flipped) != ALICE.address  # what ecrecover gives on chain
    with pytest.raises(BadSignature):
        verify(DIGEST, flipped, ALICE.address)


@pytest.mark.parametrize(
    ("r", "s"),
    [
        (0, GOOD_S),
        (GOOD_R, 0),
        (0, 0),
        (SECP256K1_N, GOOD_S),
        (SECP256K1_N + 1, GOOD_S),
        (2**256 - 1, GOOD_S),
        (GOOD_R, SECP256K1_N),
        (GOOD_R, 2**256 - 1),
    ],
)
def test_r_s_out_of_range_refused(r: int, s: int) -> None:
    for v in (27, 28):
        with pytest.raises(BadSignature):
            recover(DIGEST, _sig(r, s, v))


def test_high_s_in_range_is_non_canonical() -> None:
    with pytest.raises(NonCanonicalSignature):
        check_signature_shape(_sig(GOOD_R, HALF_N + 1, 27))
    check_signature_shape(_sig(GOOD_R, HALF_N, 27))  # the boundary itself is low-s


@pytest.mark.parametrize(
    "sig",
    [
        GOOD[:64],
        GOOD + b"\x00",
        GOOD[:64] + b"\x00" + bytes((GOOD[64],)),
        b"",
        bytes(65),
        bytearray(GOOD),
        GOOD.hex(),
        memoryview(GOOD),
        None,
        int.from_bytes(GOOD, "big"),
    ],
    ids=[
        "64",
        "66",
        "66-padded",
        "empty",
        "zeros",
        "bytearray",
        "hex",
        "memoryview",
        "None",
        "int",
    ],
)
def test_malformed_signature_refused(sig: object) -> None:
    with pytest.raises(BadSignature):
        recover(DIGEST, sig)  # type: ignore[arg-type]
    with pytest.raises(BadSignature):
        verify(DIGEST, sig, ALICE.address)  # type: ignore[arg-type]


def test_hexbytes_subclass_refused() -> None:
    from hexbytes import HexBytes

    with pytest.raises(BadSignature):
        recover(DIGEST, HexBytes(GOOD))  # type: ignore[arg-type]


def test_r_not_on_curve_refused() -> None:
    # x = 5 is not the x coordinate of a secp256k1 point (5**3 + 7 = 132 is a non-residue mod p).
    for v in (27, 28):
        with pytest.raises(BadSignature):
            recover(DIGEST, _sig(5, GOOD_S, v))


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=65, max_size=65), digests)
def test_random_blobs_never_verify(blob: bytes, digest: bytes) -> None:
    for who in (ALICE, BOB):
        with pytest.raises(BadSignature):
            verify(digest, blob, who.address)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, HALF_N).map(lambda x: x.to_bytes(32, "big")),
    st.integers(1, HALF_N).map(lambda x: x.to_bytes(32, "big")),
    st.sampled_from([27, 28]),
    digests,
)
def test_well_shaped_random_signatures_never_verify(
    r: bytes, s: bytes, v: int, digest: bytes
) -> None:
    """Even a signature that passes every shape check recovers to somebody else."""
    sig = r + s + bytes((v,))
    try:
        signer = recover(digest, sig)
    except BadSignature:
        return
    assert signer not in (ALICE.address, BOB.address, model.ZERO_ADDRESS)


def test_wrong_key_refused() -> None:
    sig = MALLORY.sign_digest(DIGEST)
    assert recover(DIGEST, sig) == MALLORY.address
    with pytest.raises(BadSignature):
        verify(DIGEST, sig, ALICE.address)


def test_signature_for_another_digest_refused() -> None:
    other = bytes(reversed(DIGEST))
    with pytest.raises(BadSignature):
        verify(other, GOOD, ALICE.address)


def test_signature_over_another_domain_refused() -> None:
    s = model.State(bytes(32), 1, (1, 2), (3, 0), (0, 0), 0, bytes(32), 0, False)
    other_domain = eip712.Domain(1, DOMAIN.verifying_contract)
    sig = ALICE.sign_digest(eip712.state_digest(other_domain, s))
    with pytest.raises(BadSignature):
        verify(eip712.state_digest(DOMAIN, s), sig, ALICE.address)


def test_signature_of_one_type_not_valid_for_another() -> None:
    """C5: a State signature is not a Withdrawal authorisation with the same words."""
    cid = bytes(range(32))
    s = model.State(cid, 3, (0, 10), (10, 0), (0, 0), 0, bytes(32), 0, False)
    w = model.Withdrawal(cid, 3, 0, 10, ALICE.address)
    sig = ALICE.sign_digest(eip712.state_digest(DOMAIN, s))
    with pytest.raises(BadSignature):
        verify(eip712.withdrawal_digest(DOMAIN, w), sig, ALICE.address)


def test_digest_must_be_32_bytes() -> None:
    with pytest.raises(InvalidField):
        ALICE.sign_digest(DIGEST[:31])
    with pytest.raises(InvalidField):
        recover(DIGEST + b"\x00", GOOD)


@pytest.mark.parametrize(
    "bad",
    [bytes(32), SECP256K1_N.to_bytes(32, "big"), (2**256 - 1).to_bytes(32, "big")],
)
def test_invalid_private_key_refused(bad: bytes) -> None:
    with pytest.raises(BadSignature):
        LocalSigner(bad)


def test_private_key_shape_and_repr() -> None:
    with pytest.raises(InvalidField):
        LocalSigner(secret("alice")[:31])
    k = LocalSigner.from_hex("0x" + secret("alice").hex())
    assert k.address == ALICE.address
    assert secret("alice").hex() not in repr(k)
    with pytest.raises(BadSignature):
        LocalSigner.from_hex("0xzz")


def test_signing_is_deterministic() -> None:
    assert ALICE.sign_digest(DIGEST) == ALICE.sign_digest(DIGEST)
    fresh = LocalSigner.generate()
    assert recover(DIGEST, fresh.sign_digest(DIGEST)) == fresh.address


# Participants -------------------------------------------------------------------------------------


def _params(**kw: object) -> model.Params:
    base: dict[str, object] = {
        "chain_id": 31337,
        "adjudicator": DOMAIN.verifying_contract,
        "asset": model.ZERO_ADDRESS,
        "asset_decimals": 18,
        "participants": (ALICE.address, BOB.address),
        "challenge_period": 3600,
        "oracle": MALLORY.address,
        "nonce": 0,
    }
    base.update(kw)
    return model.Params(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [
        {"participants": (model.ZERO_ADDRESS, BOB.address)},
        {"participants": (ALICE.address, model.ZERO_ADDRESS)},
        {"participants": (ALICE.address, ALICE.address)},
        {"participants": [ALICE.address, BOB.address]},
        {"participants": (ALICE.address,)},
        {"participants": (ALICE.address, BOB.address[:19])},
        {"oracle": model.ZERO_ADDRESS},
        {"challenge_period": model.CONTRACT_MIN_CHALLENGE_PERIOD - 1},
        {"challenge_period": model.MAX_CHALLENGE_PERIOD + 1},
        {"asset_decimals": 37},
    ],
)
def test_params_refuse_bad_participants_and_periods(kw: dict[str, object]) -> None:
    with pytest.raises(InvalidField):
        _params(**kw)


def test_params_index_of() -> None:
    p = _params()
    assert p.index_of(ALICE.address) == 0
    assert p.index_of(BOB.address) == 1
    with pytest.raises(InvalidField):
        p.index_of(MALLORY.address)
