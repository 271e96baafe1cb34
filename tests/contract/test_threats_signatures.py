"""docs/THREATS.md section 2, C3/C4: signature properties on chain (random blobs, malleated
twins, degenerate signatures) through the library and ``register`` / ``withdrawPartial``.

The single-case signature reverts (malleated twin, r = s = 0, 64 bytes, swapped signatures on
``register``) are in test_reverts.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicator import errors
from adjudicator.client import (
    both_signatures,
    params_tuple,
    signature_tuple,
    state_tuple,
    withdrawal_terms_tuple,
)
from adjudicator.rpc_errors import ExecutionReverted
from channels.core import eip712
from channels.core.errors import BadSignature, IllegalCall
from channels.core.model import Address, Params
from channels.core.signing import HALF_N, SECP256K1_N, LocalSigner, malleate, recover

from .kit import PERIOD, Channel, Env, Kit, SyncChain, artifact_abi, deploy_artifact_sync, key_bytes

HARNESS = artifact_abi("Harness")
ADJ = artifact_abi("Adjudicator")
SETTINGS = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def harness(env: Env) -> bytes:
    return deploy_artifact_sync(env, "Harness")


@pytest.fixture(scope="module")
def chain(env: Env) -> Iterator[SyncChain]:
    c = SyncChain(env.url)
    yield c
    c.close()


def sync_channel(env: Env, nonce: int) -> Channel:
    alice, bob, oracle = (LocalSigner(key_bytes(k)) for k in env.keys[1:4])
    params = Params(env.chain_id, Address(env.adjudicator), Address(bytes(20)), 18,
                    (alice.address, bob.address), PERIOD, oracle.address, nonce)
    return Channel(params, eip712.Domain(env.chain_id, Address(env.adjudicator)), (alice, bob))


# ---- C3 / C4: signature properties ------------------------------------------------------------

low_s_sig = st.builds(
    lambda r, s, v: r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]),
    st.integers(1, SECP256K1_N - 1), st.integers(1, HALF_N), st.sampled_from([27, 28]),
)
blobs = st.one_of(st.binary(min_size=65, max_size=65), low_s_sig)


def compact_or_none(sig: bytes) -> tuple[bytes, bytes] | None:
    """The adjudicator's compact form of ``sig``, or None where the client refuses to send it."""
    try:
        return signature_tuple(sig)
    except IllegalCall:
        return None


@SETTINGS
@given(digest=st.binary(min_size=32, max_size=32),
       sigs=st.lists(blobs, min_size=25, max_size=25))
def test_random_blobs_never_verify(chain: SyncChain, harness: bytes, env: Env, digest: bytes,
                                   sigs: list[bytes]) -> None:
    """C4 *prop*: random 65-byte blobs recover to nobody we know (or revert exactly when the
    core refuses them), and never pass ``register`` in either signature slot. A blob the
    compact form cannot carry (v not 27/28, s >= 2**255) is one the core refuses too."""
    ch = sync_channel(env, 1)
    parties = set(ch.params.participants)
    carried = []
    for sig in sigs:
        compact = compact_or_none(sig)
        if compact is None:
            with pytest.raises(BadSignature):
                recover(digest, sig)
        else:
            carried.append((sig, compact))
    outs = chain.call_many(harness, [HARNESS.encode_call("recover", digest, c) for _, c in carried])
    for (sig, _), out in zip(carried, outs, strict=True):
        try:
            expected: bytes | None = recover(digest, sig)
        except BadSignature:
            expected = None
        if expected is None:
            assert isinstance(out, errors.HighS | errors.InvalidSignature), (sig.hex(), out)
        else:
            assert isinstance(out, bytes), (sig.hex(), out)
            got = bytes.fromhex(HARNESS.decode_output("recover", out)[0][2:])
            assert got == expected and got not in parties and got != bytes(20)
    signed = ch.signed(1, balances=(10, 10))
    s0, s1 = both_signatures(signed)
    calls = []
    for _, sig in carried:
        calls.append(ADJ.encode_call("register", params_tuple(ch.params),
                                     state_tuple(signed.state), sig, s1))
        calls.append(ADJ.encode_call("register", params_tuple(ch.params),
                                     state_tuple(signed.state), s0, sig))
    for out in chain.call_many(env.adjudicator, calls, sender=ch.signers[0].address):
        assert isinstance(out, errors.HighS | errors.InvalidSignature | errors.WrongSigner), out


@SETTINGS
@given(digests=st.lists(st.binary(min_size=32, max_size=32), min_size=10, max_size=10),
       versions=st.lists(st.integers(0, 2**64 - 1), min_size=10, max_size=10))
def test_malleated_twins_are_refused(chain: SyncChain, harness: bytes, env: Env,
                                     digests: list[bytes], versions: list[int]) -> None:
    """C3 *prop*: for random digests and states, the high-s twin ``(r, n - s, 55 - v)`` still
    recovers the signer through the raw ``ecrecover`` precompile, but cannot even be sent: the
    compact form keeps the recovery bit in the top bit of s, which a high s has set (but for a
    ~2**-128 fraction), so the client refuses it. A high s that does fit (just above n / 2) is
    refused by ``Harness.recover`` and by ``register`` in either slot with HighS."""
    ch = sync_channel(env, 2)
    alice = ch.signers[0]
    twins = [malleate(alice.sign_digest(d)) for d in digests]
    pre = [d + bytes(31) + bytes([t[64]]) + t[:64] for d, t in zip(digests, twins, strict=True)]
    for out in chain.call_many(b"\x00" * 19 + b"\x01", pre):  # the precompile accepts the twin
        assert isinstance(out, bytes) and out[12:] == alice.address
    assert all(compact_or_none(t) is None for t in twins)
    high = (HALF_N + 1).to_bytes(32, "big")
    high_odd = bytes([high[0] | 0x80]) + high[1:]
    crafted = [(d, (t[:32], s))
               for d, t in zip(digests, twins, strict=True) for s in (high, high_odd)]
    outs = chain.call_many(harness, [HARNESS.encode_call("recover", d, c) for d, c in crafted])
    assert len(outs) == 20 and all(isinstance(o, errors.HighS) for o in outs), outs
    calls = []
    for v in versions:
        signed = ch.signed(v, balances=(5, 5))
        s0, s1 = both_signatures(signed)
        for pair in (((s0[0], high), s1), (s0, (s1[0], high_odd))):
            calls.append(ADJ.encode_call("register", params_tuple(ch.params),
                                         state_tuple(signed.state), *pair))
    outs = chain.call_many(env.adjudicator, calls)
    assert len(outs) == 20 and all(isinstance(o, errors.HighS) for o in outs), outs


async def test_degenerate_signatures_everywhere(kit: Kit, harness: bytes) -> None:
    """C4: 64/66/0-byte and v in {0, 1, 29} signatures cannot be sent (the client refuses them:
    the compact form has no room for them); r = 0, s = 0, r = s = 0 and r off the curve are
    refused by the library (``Harness.recover``) and, in either slot, by ``withdrawPartial``."""
    digest = os.urandom(32)
    good = kit.alice.sign_digest(digest)
    for unsendable in (bytes(65), good[:64], good + b"\x00", b"", good[:64] + b"\x00",
                       good[:64] + b"\x01", good[:64] + b"\x1d"):
        with pytest.raises(IllegalCall):
            signature_tuple(unsendable)
    r, y_parity_and_s = signature_tuple(good)
    bad = [(bytes(32), bytes(32)), (bytes(32), b"\x80" + bytes(31)), (r, bytes(32)),
           (r, b"\x80" + bytes(31)), (bytes(32), y_parity_and_s), (b"\xff" * 32, y_parity_and_s)]
    for sig in bad:
        with pytest.raises(ExecutionReverted) as info:
            await kit.a.rpc.call({"to": "0x" + harness.hex(),
                                  "data": HARNESS.encode_call("recover", digest, sig)})
        assert isinstance(errors.from_chain_error(info.value), errors.InvalidSignature)
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    w, sigs = ch.withdrawal(1, 0, 10, kit.alice.address)
    w0, w1 = map(signature_tuple, sigs)
    for sig in bad:
        for pair in ((sig, w1), (w0, sig)):
            with pytest.raises(errors.InvalidSignature):
                await kit.a.transact("withdrawPartial", params_tuple(ch.params),
                                     withdrawal_terms_tuple(w), *pair)
    assert (await kit.a.channel(ch.id)).withdrawn == (0, 0)
