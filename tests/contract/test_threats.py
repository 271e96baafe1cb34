"""docs/THREATS.md section 2 rows not covered elsewhere: C3/C4 (signature properties), C9
(re-entrancy through a hooked token and re-entrant receivers), C11 (amounts near the 2**96 cap /
2**256), C12 (double withdraw / conclude in one block), C15 (unfunded channel), C16 (no
caller-supplied history).

The single-case signature reverts (malleated twin, r = s = 0, 64 bytes, swapped signatures on
``register``), ERC-20 deposits with ETH and the separate-block double conclude are in
test_reverts.py; the conclude-payout re-entry in test_lifecycle.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicator import errors, tokens
from adjudicator.client import (
    ChannelStatus,
    both_signatures,
    params_tuple,
    signature_tuple,
    state_tuple,
    withdrawal_terms_tuple,
)
from adjudicator.rpc_errors import ExecutionReverted
from adjudicator.transactions import TransactionReverted, TransactionSender, revert_data_of
from channels.core import eip712
from channels.core.errors import BadSignature, IllegalCall, InvalidAmount, InvalidField
from channels.core.hashing import keccak256
from channels.core.model import Address, Params, State
from channels.core.signing import HALF_N, SECP256K1_N, LocalSigner, malleate, recover

from .kit import (
    PERIOD,
    UINT256_MAX,
    Channel,
    Env,
    Kit,
    SyncChain,
    artifact_abi,
    deploy_artifact,
    deploy_artifact_sync,
    key_bytes,
    sign_raw_state,
)

HARNESS = artifact_abi("Harness")
CAP = 2**96 - 1  # MAX_CHANNEL_DEPOSITS: a channel's deposits, both participants together
ADJ = artifact_abi("Adjudicator")
HOOK = artifact_abi("HookToken")
RECEIVER = artifact_abi("ReentrantReceiver")
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


# ---- C9: re-entrancy ----------------------------------------------------------------------------

# Trailing bytes the ABI decoder ignores: a re-entrant call stored with them needs more gas to load
# from storage (~32 more cold words) than a push gives its callee, so the push fails as a whole
# and is credited. (The call alone, ~0.6 kB with compact signatures, would fit in the allowance.)
LONG_TAIL = bytes(1024)


async def _view(kit: Kit, abi: Any, at: bytes, fn: str) -> Any:
    out = await kit.rpc.call({"to": "0x" + at.hex(), "data": abi.encode_call(fn)})
    return abi.decode_output(fn, out)[0]


async def _set_hook(kit: Kit, token: bytes, data: bytes) -> None:
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    await sender.transact("0x" + token.hex(),
                          HOOK.encode_call("setHook", kit.env.adjudicator, data), timeout=30)


async def _assert_hook_refused(kit: Kit, token: bytes, attempts: int) -> None:
    assert await _view(kit, HOOK, token, "attempts") == attempts
    assert await _view(kit, HOOK, token, "lastSuccess") is False
    ret = await _view(kit, HOOK, token, "lastReturnData")
    assert isinstance(errors.decode_revert(ret), errors.ReentrancyGuardReentrantCall)


async def test_hook_token_reentry_is_refused(kit: Kit) -> None:
    """C9: a token that calls back into the adjudicator from transferFrom (deposit) and transfer
    (credit pull, conclusion payouts): every inner call that runs hits the guard, deposits are
    credited once by the measured delta, and each side is paid exactly its entitlement."""
    token = await deploy_artifact(kit, "HookToken")
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    for who in (kit.alice.address, kit.bob.address):
        await sender.transact("0x" + token.hex(), HOOK.encode_call("mint", who, 1000), timeout=30)
    ch = kit.channel(token, decimals=18)
    p = params_tuple(ch.params)
    again = ADJ.encode_call("depositToken", ch.params.params_hash, token, 0, 1)
    await _set_hook(kit, token, again)  # double-credit attempt
    await kit.a.deposit(ch.params, 0, 100)
    await _assert_hook_refused(kit, token, 1)
    await _set_hook(kit, token, ADJ.encode_call("withdraw", token, kit.carol.address))
    await kit.b.deposit(ch.params, 1, 100)
    await _assert_hook_refused(kit, token, 2)
    assert (await kit.a.channel(ch.id)).deposits == (100, 100)
    assert await tokens.balance_of(kit.rpc, token, kit.env.adjudicator) == 200

    w, sigs = ch.withdrawal(1, 0, 30, kit.alice.address)
    await _set_hook(kit, token, ADJ.encode_call("withdrawPartial", p, withdrawal_terms_tuple(w),
                                                  *map(signature_tuple, sigs)) + LONG_TAIL)
    # The push gives the token 100k gas; loading the ~1.6 kB hook calldata from storage alone
    # needs more, so the transfer fails as a whole and the amount is credited to alice.
    r = await kit.c.withdraw_partial(ch.params, w, sigs)
    assert [e.name for e in kit.a.decode_receipt_events(r)] == ["PartialWithdrawal",
                                                               "PayoutCredited"]
    assert await _view(kit, HOOK, token, "attempts") == 2
    assert await kit.a.credits(token, kit.alice.address) == 30
    # The pull forwards all gas: the hook runs and its replay of the withdrawal is refused.
    await kit.a.withdraw(token, kit.alice.address)
    await _assert_hook_refused(kit, token, 3)
    assert (await kit.a.channel(ch.id)).withdrawn == (30, 0)
    assert await kit.a.credits(token, kit.alice.address) == 0

    final = ch.signed(2, balances=(50, 120), deposited=(100, 100), withdrawn=(30, 0), final=True)
    # a short hook (fits the push allowance): re-enter the pull of carol's (empty) credit
    await _set_hook(kit, token, ADJ.encode_call("withdraw", token, kit.carol.address))
    r = await kit.c.conclude(ch.params, final)
    assert [e.name for e in kit.a.decode_receipt_events(r)] == ["Concluded"]  # both pushed
    await _assert_hook_refused(kit, token, 5)  # one re-entry per payout
    assert await tokens.balance_of(kit.rpc, token, kit.alice.address) == 1000 - 100 + 30 + 50
    assert await tokens.balance_of(kit.rpc, token, kit.bob.address) == 1000 - 100 + 120
    assert await tokens.balance_of(kit.rpc, token, kit.env.adjudicator) == 0
    assert await kit.a.credits(token, kit.alice.address) == 0
    assert await kit.a.credits(token, kit.bob.address) == 0


async def test_reentrant_receiver_on_pull_withdraw_and_partial_withdrawal(kit: Kit) -> None:
    """C9: (2) a partial-withdrawal recipient whose receive() replays the withdrawal, or pulls a
    credit, is paid once (the long replay cannot even run in the push's gas allowance: the
    amount is credited to the participant instead); (1) a credited payee whose receive()
    re-enters ``withdraw`` during its own pull gets its credit exactly once."""
    ch = kit.channel()
    await kit.fund(ch, (1000, 1000))
    bob_hex = "0x" + kit.bob.address.hex()
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    rejecting = json.loads((tokens.BUILD_DIR / "RevertingReceiver.json").read_text())
    await kit.rpc.dev.set_code(bob_hex, bytes.fromhex(rejecting["deployedBytecode"][2:]))

    # (2) first, while the channel is open
    recipient = await deploy_artifact(kit, "ReentrantReceiver")
    w, sigs = ch.withdrawal(1, 1, 250, recipient)
    replay = ADJ.encode_call("withdrawPartial", params_tuple(ch.params), withdrawal_terms_tuple(w),
                             *map(signature_tuple, sigs)) + LONG_TAIL
    await sender.transact("0x" + recipient.hex(),
                          RECEIVER.encode_call("setReentry", kit.env.adjudicator, replay),
                          timeout=30)
    # Replaying needs the ~1.6 kB calldata loaded from storage: more than the push's 100k gas,
    # so the push fails and the amount is credited to the withdrawing participant (bob).
    r = await kit.a.withdraw_partial(ch.params, w, sigs)
    assert [e.name for e in kit.a.decode_receipt_events(r)] == ["PartialWithdrawal",
                                                               "PayoutCredited"]
    assert await kit.eth_balance(recipient) == 0
    assert await kit.a.credits(bytes(20), kit.bob.address) == 250
    # A short re-entry (pull someone's credit) fits the allowance: it runs and is refused.
    steal = ADJ.encode_call("withdraw", bytes(20), recipient)
    await sender.transact("0x" + recipient.hex(),
                          RECEIVER.encode_call("setReentry", kit.env.adjudicator, steal),
                          timeout=30)
    w2, sigs2 = ch.withdrawal(2, 1, 100, recipient)
    await kit.a.withdraw_partial(ch.params, w2, sigs2)
    assert await kit.eth_balance(recipient) == 100
    assert await _view(kit, RECEIVER, recipient, "attempts") == 1
    assert await _view(kit, RECEIVER, recipient, "lastSuccess") is False
    ret = await _view(kit, RECEIVER, recipient, "lastReturnData")
    assert isinstance(errors.decode_revert(ret), errors.ReentrancyGuardReentrantCall)
    assert (await kit.a.channel(ch.id)).withdrawn == (0, 350)

    # (1) bob's payout fails (his address rejects ETH), so it is credited too
    final = ch.signed(3, balances=(900, 750), deposited=(1000, 1000), withdrawn=(0, 350),
                      final=True)
    await kit.a.conclude(ch.params, final)
    assert await kit.a.credits(bytes(20), kit.bob.address) == 1000
    reentrant = json.loads((tokens.BUILD_DIR / "ReentrantReceiver.json").read_text())
    await kit.rpc.dev.set_code(bob_hex, bytes.fromhex(reentrant["deployedBytecode"][2:]))
    pull = ADJ.encode_call("withdraw", bytes(20), kit.bob.address)
    await sender.transact(bob_hex, RECEIVER.encode_call("setReentry", kit.env.adjudicator, pull),
                          timeout=30)
    b0 = await kit.eth_balance(kit.bob.address)
    held0 = await kit.eth_balance(kit.env.adjudicator)
    await sender.transact(bob_hex, RECEIVER.encode_call("execute", kit.env.adjudicator, pull),
                          timeout=30)
    assert await kit.eth_balance(kit.bob.address) - b0 == 1000
    assert held0 - await kit.eth_balance(kit.env.adjudicator) == 1000
    assert await kit.a.credits(bytes(20), kit.bob.address) == 0
    assert await _view(kit, RECEIVER, kit.bob.address, "attempts") == 1
    ret = await _view(kit, RECEIVER, kit.bob.address, "lastReturnData")
    assert isinstance(errors.decode_revert(ret), errors.ReentrancyGuardReentrantCall)


# ---- C11: amounts near the 2**96 cap / 2**256 ----------------------------------------------


async def _mint(kit: Kit, who: bytes, amount: int) -> None:
    await tokens.mint(kit.rpc, kit.c.sender, kit.env.token, who, amount)  # type: ignore[arg-type]


async def test_deposit_totals_above_the_channel_cap_revert(kit: Kit) -> None:
    """A channel's deposits, both participants together, stop at MAX_CHANNEL_DEPOSITS = 2**96 - 1
    (docs/PROTOCOL.md section 8): exactly the cap is accepted, one unit more from either side
    reverts AmountTooLarge, and so does any single amount above it (up to 2**255)."""
    ch = kit.channel(kit.env.token)
    await _mint(kit, kit.alice.address, 2**255)
    await _mint(kit, kit.bob.address, 2**129)
    assert (await kit.a.call("MAX_CHANNEL_DEPOSITS"))[0] == CAP
    held = await kit.token_balance(kit.env.adjudicator)
    for amount in (CAP + 1, 2**128, 2**255):
        with pytest.raises(errors.AmountTooLarge):
            await kit.a.deposit(ch.params, 0, amount)
    await kit.a.deposit(ch.params, 0, CAP - 10)
    with pytest.raises(errors.AmountTooLarge):  # the cap counts both participants together
        await kit.b.deposit(ch.params, 1, 11)
    await kit.b.deposit(ch.params, 1, 10)
    for client, who in ((kit.a, 0), (kit.b, 1)):
        with pytest.raises(errors.AmountTooLarge):
            await client.deposit(ch.params, who, 1)
    assert (await kit.a.channel(ch.id)).deposits == (CAP - 10, 10)
    assert await kit.token_balance(kit.env.adjudicator) - held == CAP


async def test_wrapping_states_violate_conservation(kit: Kit) -> None:
    """Field sums that would wrap modulo 2**256 (so a wrapped identity would hold) are refused
    by register, checkpoint and conclude; the core cannot even represent them."""
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    top = UINT256_MAX
    cases = [
        # balances                locked   deposited        withdrawn
        ((top, 1), 0, (0, 0), (0, 0)),  # balance0 + balance1 wraps to 0 == 0 - 0
        ((2**255, 0), 2**255, (0, 0), (0, 0)),  # + locked wraps
        ((0, 0), 0, (top, 1), (top, 1)),  # deposited and withdrawn both wrap to 0
        ((top, 0), 0, (0, 0), (1, 0)),  # 0 - 1 wraps to balance0
        ((100, 100 + 2**128), 0, (100, 100), (0, 0)),  # only off by 2**128 (uint128 wrap)
        ((400, 0), 2**256 - 200, (100, 100), (0, 0)),  # held + locked wraps to 200 == 200
    ]
    for balances, locked, deposited, withdrawn in cases:
        for final in (False, True):
            fields = (ch.id, 1, balances[0], balances[1], deposited[0], deposited[1],
                      withdrawn[0], withdrawn[1], locked, bytes(32), 0, final)
            sigs = sign_raw_state(ch, fields)
            fn = "conclude" if final and locked == 0 else "register"
            for name in {fn, "checkpoint"}:
                with pytest.raises(errors.ConservationViolated):
                    await kit.a.transact(name, params_tuple(ch.params), fields, *sigs)
            with pytest.raises((InvalidAmount, InvalidField)):
                State(ch.id, 1, balances, deposited, withdrawn, locked,  # type: ignore[arg-type]
                      bytes(32), 0, final)
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.OPEN and view.version == 0


async def test_huge_conserving_states_never_pay_more_than_held(kit: Kit) -> None:
    """A conserving state with amounts far above any deposit registers (register checks only
    signatures, version and conservation) but can never be paid out: UnderfundedState."""
    ch = kit.channel(kit.env.token, period=60)
    await kit.fund(ch, (100, 100))
    big = 2**200
    fields = (ch.id, 1, big, 0, big, 0, 0, 0, 0, bytes(32), 0, True)
    sigs = sign_raw_state(ch, fields)
    with pytest.raises(errors.UnderfundedState):
        await kit.a.transact("conclude", params_tuple(ch.params), fields, *sigs)
    await kit.a.transact("register", params_tuple(ch.params), fields, *sigs)
    await kit.warp(61)
    with pytest.raises(errors.UnderfundedState):
        await kit.c.transact("concludeAfterTimeout", params_tuple(ch.params), fields)
    assert (await kit.a.channel(ch.id)).status is ChannelStatus.DISPUTED
    assert await kit.token_balance(kit.env.adjudicator) >= 200


async def test_cap_boundaries_of_locked_payouts_and_withdrawals(kit: Kit) -> None:
    """The channel holds exactly the cap (2**96 - 1): withdrawals beyond the holdings or near
    2**256 revert (InsufficientHoldings / overflow panic), never wrap; a dispute that locks
    everything left concludes with the whole of it locked; a payout of everything is paid in
    full."""
    ch = kit.channel(kit.env.token, period=60)
    for account in (kit.alice.address, kit.bob.address):
        await _mint(kit, account, 2**129)
    half = CAP // 2
    await kit.fund(ch, (CAP - half, half))
    p = params_tuple(ch.params)
    total = CAP

    def w_call(version: int, who: int, amount: int) -> tuple[Any, ...]:
        w = (ch.id, version, who, amount, kit.carol.address)
        d = eip712.digest(ch.domain, keccak256(
            eip712.WITHDRAWAL_TYPEHASH
            + b"".join(x.rjust(32, b"\0") if isinstance(x, bytes) else x.to_bytes(32, "big")
                       for x in w)))
        return (p, w[1:], signature_tuple(ch.signers[0].sign_digest(d)),
                signature_tuple(ch.signers[1].sign_digest(d)))

    for amount in (total + 1, 2**128 + 5, UINT256_MAX):
        with pytest.raises(errors.InsufficientHoldings):
            await kit.a.transact("withdrawPartial", *w_call(1, 0, amount))
    await kit.a.transact("withdrawPartial", *w_call(1, 1, 1))
    for who in (0, 1):  # w0 + w1 (or w1 + amount) would exceed 2**256
        with pytest.raises((errors.PanicError, errors.InsufficientHoldings)) as info:
            await kit.a.transact("withdrawPartial", *w_call(2, who, UINT256_MAX))
        if isinstance(info.value, errors.PanicError):
            assert info.value.args_dict == {"code": 0x11}
    assert (await kit.a.channel(ch.id)).withdrawn == (0, 1)

    snap = await kit.rpc.dev.snapshot()
    locked = (ch.id, 2, 0, 0, CAP - half, half, 0, 1, total - 1, b"\x11" * 32, 1, False)
    await kit.a.transact("register", p, locked, *sign_raw_state(ch, locked))
    await kit.warp(61)
    await kit.c.transact("concludeAfterTimeout", p, locked)
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.CONCLUDED
    assert (view.locked_remaining, view.positions_root) == (total - 1, b"\x11" * 32)
    assert await kit.rpc.dev.revert(snap)
    # a cooperative final state paying everything left to one side
    final = (ch.id, 3, total - 1, 0, CAP - half, half, 0, 1, 0, bytes(32), 0, True)
    a0 = await kit.token_balance(kit.alice.address)
    await kit.b.transact("conclude", p, final, *sign_raw_state(ch, final))
    assert await kit.token_balance(kit.alice.address) - a0 == total - 1
    assert await kit.token_balance(kit.env.adjudicator) == 0


# ---- C12: twice in one block --------------------------------------------------------------------


async def _same_block(kit: Kit, sender: TransactionSender, calls: list[bytes]) -> list[Any]:
    """Send ``calls`` to the adjudicator from one account with automine off, mine one block;
    return the receipts (status 1) or the typed errors of the reverted ones."""
    await kit.rpc.dev.set_automine(False)
    try:
        sent = [await sender.send(kit.a.checksum_address, data, gas=1_000_000) for data in calls]
        await kit.rpc.dev.mine(1)
    finally:
        await kit.rpc.dev.set_automine(True)
    out: list[Any] = []
    blocks = set()
    for s in sent:
        receipt = await sender.wait_receipt(s, timeout=30, check_status=False)
        blocks.add(receipt.block_number)
        if receipt.status == 1:
            out.append(receipt)
        else:
            data = await revert_data_of(kit.rpc, receipt)
            assert data is not None
            out.append(errors.decode_revert(data))
    assert len(blocks) == 1, "expected one block"
    return out


async def test_double_pull_withdraw_in_one_block(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1000, 1000))
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    await tokens.set_blocked(kit.rpc, sender, kit.env.token, kit.bob.address, True)
    await kit.a.conclude(ch.params, ch.signed(1, balances=(300, 1700), deposited=(1000, 1000),
                                                  final=True))
    await tokens.set_blocked(kit.rpc, sender, kit.env.token, kit.bob.address, False)
    assert await kit.a.credits(kit.env.token, kit.bob.address) == 1700
    b0 = await kit.token_balance(kit.bob.address)
    pull = ADJ.encode_call("withdraw", kit.env.token, kit.bob.address)
    first, second = await _same_block(kit, kit.b.sender, [pull, pull])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.NothingToWithdraw)
    assert await kit.token_balance(kit.bob.address) - b0 == 1700
    assert await kit.a.credits(kit.env.token, kit.bob.address) == 0


async def test_double_partial_withdrawal_in_one_block(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1000, 1000))
    w, sigs = ch.withdrawal(1, 0, 400, kit.carol.address)
    data = ADJ.encode_call("withdrawPartial", params_tuple(ch.params), withdrawal_terms_tuple(w),
                           *map(signature_tuple, sigs))
    c0 = await kit.token_balance(kit.carol.address)
    first, second = await _same_block(kit, kit.a.sender, [data, data])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.WithdrawalNotNewer)
    assert await kit.token_balance(kit.carol.address) - c0 == 400
    assert (await kit.a.channel(ch.id)).withdrawn == (400, 0)


async def test_double_conclude_in_one_block(kit: Kit) -> None:
    """Twice the same final state, then a timeout conclusion racing a cooperative one: the
    second always reverts ChannelConcluded and only one outcome is paid."""
    ch = kit.channel(kit.env.token, period=60)
    await kit.fund(ch, (1000, 1000))
    final = ch.signed(2, balances=(600, 1400), deposited=(1000, 1000), final=True)
    s0, s1 = both_signatures(final)
    conclude = ADJ.encode_call("conclude", params_tuple(ch.params), state_tuple(final.state),
                               s0, s1)
    snap = await kit.rpc.dev.snapshot()
    a0, b0 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    first, second = await _same_block(kit, kit.c.sender, [conclude, conclude])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.ChannelConcluded)
    assert await kit.token_balance(kit.alice.address) - a0 == 600
    assert await kit.token_balance(kit.bob.address) - b0 == 1400
    assert len([e for e in kit.a.decode_receipt_events(first) if e.name == "Concluded"]) == 1
    assert await kit.rpc.dev.revert(snap)
    await kit.c.sender.sync_nonce()  # type: ignore[union-attr]  # the revert rewound its nonce

    v1 = ch.signed(1, balances=(1000, 1000))
    await kit.b.register(ch.params, v1)
    await kit.warp(61)
    timeout = ADJ.encode_call("concludeAfterTimeout", params_tuple(ch.params),
                              state_tuple(v1.state))
    first, second = await _same_block(kit, kit.c.sender, [timeout, conclude])  # type: ignore[arg-type]
    assert first.status == 1 and isinstance(second, errors.ChannelConcluded)
    assert await kit.token_balance(kit.alice.address) - a0 == 1000
    assert await kit.token_balance(kit.bob.address) - b0 == 1000
    assert (await kit.a.channel(ch.id)).version == 1


# ---- C15 / C16 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bob_deposit", [0, 499])
async def test_unfunded_channel_refunds_deposits(kit: Kit, bob_deposit: int) -> None:
    """C15: v0 credits nothing. Alice deposits 500, Bob never funds (or funds 1 short, so v1 is
    never signed); Alice registers v0, waits the period, concludes: each side gets back exactly
    what it deposited, and the adjudicator keeps nothing of the channel."""
    ch = kit.channel(kit.env.token, period=120)
    v0 = ch.signed(0)
    assert v0.state.balances == (0, 0) and v0.state.deposited == (0, 0)
    held = await kit.token_balance(kit.env.adjudicator)
    a0, b0 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    await kit.fund(ch, (500, bob_deposit))
    await kit.a.register(ch.params, v0)
    with pytest.raises(errors.ChallengeNotExpired):
        await kit.a.conclude_after_timeout(ch.params, v0.state)
    await kit.warp(121)
    r = await kit.a.conclude_after_timeout(ch.params, v0.state)
    (ev,) = [e for e in kit.a.decode_receipt_events(r) if e.name == "Concluded"]
    assert ev.args["payout0"] == 500 and ev.args["payout1"] == bob_deposit
    assert await kit.token_balance(kit.alice.address) == a0
    assert await kit.token_balance(kit.bob.address) == b0
    assert await kit.token_balance(kit.env.adjudicator) == held


async def test_register_ignores_calldata_garbage(kit: Kit) -> None:
    """C16: the adjudicator trusts no caller-supplied history: ``register`` takes only the
    params, the state and its two signatures, and checks just those (signatures, version,
    conservation). There is no proof list to omit or forge, and every argument is static (the
    signatures are compact): the only "unrelated" bytes a caller controls are trailing data.
    Filling those with garbage gives exactly the normal call's outcome (same record, event)."""
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    results = []
    for variant in ("canonical", "trailing"):
        snap = await kit.rpc.dev.snapshot()
        outcome = []
        first_ts = 0
        for version, balances in ((3, (60, 140)), (5, (20, 180))):
            signed = ch.signed(version, balances=balances)
            s0, s1 = both_signatures(signed)
            data = ADJ.encode_call("register", params_tuple(ch.params),
                                   state_tuple(signed.state), s0, s1)
            junk = os.urandom(200)
            if variant == "trailing":
                data += junk
            r = await sender.transact(kit.a.checksum_address, data, timeout=30)
            first_ts = first_ts or await kit.a.block_timestamp(r.block_number)
            view = await kit.a.channel(ch.id)
            (ev,) = kit.a.decode_receipt_events(r)
            # deadline relative to the first registration: PERIOD both times (never extended)
            outcome.append((view.status, view.version, view.state_hash, view.deposits,
                            view.deadline - first_ts, ev.name, ev.args["version"],
                            ev.args["stateHash"], ev.args["deadline"] - first_ts))
        # a stale state with garbage is still refused like the canonical call
        old = ch.signed(4, balances=(100, 100))
        o0, o1 = both_signatures(old)
        bad = ADJ.encode_call("register", params_tuple(ch.params), state_tuple(old.state), o0, o1)
        with pytest.raises(TransactionReverted) as info:
            sent = await sender.send(kit.a.checksum_address, bad + os.urandom(7), gas=500_000)
            await sender.wait_receipt(sent, timeout=30)
        assert isinstance(errors.from_chain_error(info.value), errors.NotNewerVersion)
        results.append(outcome)
        assert await kit.rpc.dev.revert(snap)
        await sender.sync_nonce()  # the revert rewound carol's nonce
    assert results[0][0][4] == results[0][1][4] == PERIOD
    assert results[0] == results[1]
