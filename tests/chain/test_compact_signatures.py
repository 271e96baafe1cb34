"""The compact (EIP-2098) calldata form of signatures: a lossless round trip for every signature
the core accepts, and a typed refusal, before anything is sent, of what the form cannot carry."""

from __future__ import annotations

import pytest

from adjudicator.calldata import signature_from_tuple, signature_tuple
from channels.core.errors import IllegalCall
from channels.core.signing import LocalSigner, malleate, recover


def test_round_trip_keeps_every_signature_and_its_signer() -> None:
    signer = LocalSigner(bytes(31) + b"\x07")
    parities = set()
    for i in range(40):
        digest = i.to_bytes(32, "big")
        sig = signer.sign_digest(digest)
        r, y_parity_and_s = signature_tuple(sig)
        assert r == sig[:32] and len(y_parity_and_s) == 32
        assert y_parity_and_s[0] >> 7 == sig[64] - 27  # the recovery bit is s's top bit
        parities.add(sig[64])
        assert signature_from_tuple((r, y_parity_and_s)) == sig
        assert recover(digest, signature_from_tuple((r, y_parity_and_s))) == signer.address
    assert parities == {27, 28}  # both recovery bits exercised


@pytest.mark.parametrize(
    "why, mangle",
    [
        ("64 bytes", lambda s: s[:64]),
        ("66 bytes", lambda s: s + b"\x00"),
        ("empty", lambda s: b""),
        ("v = 0", lambda s: s[:64] + b"\x00"),
        ("v = 1", lambda s: s[:64] + b"\x01"),
        ("v = 29", lambda s: s[:64] + b"\x1d"),
        ("high-s twin (top bit of s set)", malleate),
    ],
)
def test_what_the_compact_form_cannot_carry_is_refused(why: str, mangle: object) -> None:
    sig = LocalSigner(bytes(31) + b"\x07").sign_digest(bytes(32))
    assert callable(mangle)
    with pytest.raises(IllegalCall, match="65 bytes r"):
        signature_tuple(mangle(sig))
