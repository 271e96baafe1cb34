"""docs/THREATS.md section 2, C9: re-entrancy through a hooked token and re-entrant receivers.

The conclude-payout re-entry is in test_lifecycle.py.
"""

from __future__ import annotations

import json
from typing import Any

from adjudicator import errors, tokens
from adjudicator.client import params_tuple, signature_tuple, withdrawal_terms_tuple
from adjudicator.transactions import TransactionSender

from .kit import Kit, artifact_abi, deploy_artifact

ADJ = artifact_abi("Adjudicator")
HOOK = artifact_abi("HookToken")
RECEIVER = artifact_abi("ReentrantReceiver")

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
