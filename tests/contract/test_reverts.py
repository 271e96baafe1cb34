"""Every reachable custom error surfaces as its Python class, before anything is mined."""

import dataclasses

import pytest

from adjudicator import errors, tokens
from adjudicator.client import both_signatures, params_tuple, signature_tuple, state_tuple
from adjudicator.transactions import TransactionReverted, TransactionSender
from channels.core.errors import IllegalCall
from channels.core.model import ChannelId, SignedState
from channels.core.signing import HALF_N, malleate

from .kit import Kit


def with_sigs(signed: SignedState, sig0: bytes | None = None,
              sig1: bytes | None = None) -> SignedState:
    s0, s1 = signed.signatures
    return SignedState(signed.state, (sig0 if sig0 is not None else s0,
                                      sig1 if sig1 is not None else s1))


async def test_reverts_are_simulated_not_sent(kit: Kit) -> None:
    ch = kit.channel()
    sender: TransactionSender = kit.a.sender  # type: ignore[assignment]
    nonce = await kit.rpc.get_transaction_count(sender.address)
    with pytest.raises(errors.NotFinal) as info:
        await kit.a.conclude(ch.params, ch.signed(1))
    assert info.value.tx_hash is None and info.value.revert_data[:4] == errors.NotFinal.selector()
    assert await kit.rpc.get_transaction_count(sender.address) == nonce


async def test_mined_revert_maps_too(kit: Kit) -> None:
    ch = kit.channel()
    sender: TransactionSender = kit.a.sender  # type: ignore[assignment]
    data = kit.a.abi.encode_call("depositEth", ch.params.params_hash, 0)
    sent = await sender.send(kit.a.checksum_address, data, gas=200_000)
    with pytest.raises(TransactionReverted) as info:
        await sender.wait_receipt(sent, timeout=30)
    mapped = errors.from_chain_error(info.value)
    assert isinstance(mapped, errors.ZeroAmount) and mapped.tx_hash == sent.hash


async def test_deposit_errors(kit: Kit) -> None:
    eth, tok = kit.channel(), kit.channel(kit.env.token)
    with pytest.raises(errors.ZeroAmount):
        await kit.a.deposit(eth.params, 0, 0)
    with pytest.raises(errors.ZeroAddress):  # a token deposit must name its token
        await kit.a.transact("depositToken", eth.params.params_hash, eth.params.asset, 0, 100)
    await tokens.approve(kit.rpc, kit.a.sender, kit.env.token, kit.env.adjudicator, 100)  # type: ignore[arg-type]
    with pytest.raises(errors.UnexpectedEther):
        await kit.a.transact(
            "depositToken", tok.params.params_hash, tok.params.asset, 0, 100, value=1
        )
    with pytest.raises(errors.InvalidParticipantIndex):
        await kit.a.deposit(eth.params, 2, 1)
    with pytest.raises(errors.TransferFailed):  # no allowance for a raw call
        await kit.b.transact("depositToken", tok.params.params_hash, tok.params.asset, 1, 100)
    with pytest.raises(errors.InvalidParticipantIndex):
        await kit.a.transact("depositEth", eth.params.params_hash, 2, value=1)
    await kit.rpc.dev.set_balance("0x" + kit.alice.address.hex(), 2**129)
    await kit.a.deposit(eth.params, 0, 2**95)
    with pytest.raises(errors.AmountTooLarge):  # the channel's deposits would reach 2**96
        await kit.a.deposit(eth.params, 1, 2**95)


async def test_signature_errors(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (10, 10))
    good = ch.signed(1, balances=(10, 10))
    with pytest.raises(IllegalCall):  # a high-s twin has no compact form: never sent
        await kit.a.register(ch.params, with_sigs(good, sig0=malleate(good.signatures[0])))  # type: ignore[arg-type]
    sig0, sig1 = both_signatures(good)
    high_s = (HALF_N + 1).to_bytes(32, "big")
    with pytest.raises(errors.HighS):  # a high s that fits the compact form
        await kit.a.transact("register", params_tuple(ch.params), state_tuple(good.state),
                             (sig0[0], high_s), sig1)
    with pytest.raises(errors.InvalidSignature):  # r = s = 0
        await kit.a.register(ch.params, with_sigs(good, sig1=bytes(64) + b"\x1b"))
    with pytest.raises(IllegalCall):  # 64 bytes: never sent
        await kit.a.register(ch.params, with_sigs(good, sig1=good.signatures[1][:64]))  # type: ignore[index]
    with pytest.raises(errors.WrongSigner) as info:  # signatures swapped
        await kit.a.register(ch.params, with_sigs(good, good.signatures[1], good.signatures[0]))
    assert info.value.args_dict["expected"] == kit.alice.address
    assert info.value.args_dict["recovered"] == kit.bob.address


async def test_replay_across_channels_chains_and_deployments(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (10, 10))
    signed = ch.signed(1, balances=(10, 10))
    # the same participants' next channel (nonce + 1)
    other = kit.channel(nonce=ch.params.nonce + 1)
    with pytest.raises(errors.WrongChannelId):
        await kit.a.register(other.params, signed)
    relabelled = dataclasses.replace(signed.state, channel_id=ChannelId(other.id))
    with pytest.raises(errors.WrongSigner):  # THREATS: a signature never moves to another channel
        await kit.a.register(other.params, SignedState(relabelled, signed.signatures))
    # another chain id
    wrong_chain = kit.channel(chain_id=kit.env.chain_id + 1)
    with pytest.raises(errors.WrongChainId):
        await kit.a.register(wrong_chain.params, wrong_chain.signed(1))
    # signed for deployment A, submitted to deployment B (C2)
    with pytest.raises(errors.WrongAdjudicator):
        await kit.a_on_b.register(ch.params, signed)
    with pytest.raises(IllegalCall):  # a deposit sends no params: the client checks them
        await kit.a_on_b.deposit(ch.params, 0, 1)
    on_b = kit.channel(adjudicator=kit.env.adjudicator_b, nonce=ch.params.nonce)
    moved = dataclasses.replace(signed.state, channel_id=ChannelId(on_b.id))
    with pytest.raises(errors.WrongSigner):  # domain A's signature is worthless on B
        await kit.a_on_b.register(on_b.params, SignedState(moved, signed.signatures))


async def test_state_errors(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    with pytest.raises(errors.NotFinal):
        await kit.a.conclude(ch.params, ch.signed(1, balances=(100, 100)))
    with pytest.raises(errors.PositionsInFinalState):
        await kit.a.conclude(ch.params, ch.signed(1, balances=(100, 90), deposited=(100, 100),
                                                  locked=10, count=1, final=True))
    with pytest.raises(errors.ConservationViolated):
        await kit.a.register(ch.params, ch.signed(1, balances=(100, 101),
                                                  deposited=(100, 100)))
    with pytest.raises(errors.UnderfundedState):
        await kit.a.conclude(ch.params, ch.signed(1, balances=(101, 100), final=True))
    with pytest.raises(errors.NotDisputed):
        await kit.a.conclude_after_timeout(ch.params, ch.state(1, balances=(100, 100)))
    with pytest.raises(IllegalCall):  # not fully signed: refused locally
        await kit.a.register(ch.params, SignedState(ch.state(1), (b"x" * 65, None)))


async def test_dispute_errors(kit: Kit) -> None:
    ch = kit.channel(period=600)
    await kit.fund(ch, (100, 100))
    s5 = ch.signed(5, balances=(100, 100))
    await kit.a.register(ch.params, s5)
    with pytest.raises(errors.NotNewerVersion) as info:
        await kit.b.register(ch.params, ch.signed(4, balances=(50, 150)))
    assert info.value.args_dict == {"recorded": 5, "given": 4}
    with pytest.raises(errors.EquivocatingState):
        await kit.b.register(ch.params, ch.signed(5, balances=(50, 150)))
    with pytest.raises(errors.NotNewerVersion):
        await kit.b.checkpoint(ch.params, ch.signed(5, balances=(100, 100)))
    with pytest.raises(errors.ChallengeNotExpired):
        await kit.b.conclude_after_timeout(ch.params, s5.state)
    with pytest.raises(errors.ChallengeOngoing):
        w, sigs = ch.withdrawal(6, 0, 1, kit.alice.address)
        await kit.a.withdraw_partial(ch.params, w, sigs)
    await kit.warp(601)
    with pytest.raises(errors.ChallengeExpired):
        await kit.b.register(ch.params, ch.signed(6, balances=(50, 150)))
    with pytest.raises(errors.ChallengeExpired):
        await kit.b.checkpoint(ch.params, ch.signed(6, balances=(50, 150)))
    with pytest.raises(errors.NotRegisteredState):
        await kit.b.conclude_after_timeout(ch.params, ch.state(5, balances=(50, 150)))
    await kit.b.conclude_after_timeout(ch.params, s5.state)
    with pytest.raises(errors.ChannelConcluded):
        await kit.b.conclude_after_timeout(ch.params, s5.state)
    with pytest.raises(errors.ChannelConcluded):
        await kit.a.register(ch.params, ch.signed(9, balances=(100, 100)))
    with pytest.raises(errors.ChannelConcluded):
        await kit.a.deposit(ch.params, 0, 1)


async def test_double_conclude(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    final = ch.signed(1, balances=(100, 100), final=True)
    await kit.a.conclude(ch.params, final)
    with pytest.raises(errors.ChannelConcluded):
        await kit.b.conclude(ch.params, final)


async def test_withdrawal_errors(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    w, sigs = ch.withdrawal(3, 0, 40, kit.carol.address)
    await kit.a.withdraw_partial(ch.params, w, sigs)
    with pytest.raises(errors.WithdrawalNotNewer) as info:  # replay
        await kit.b.withdraw_partial(ch.params, w, sigs)
    assert info.value.args_dict == {"lastExecuted": 3, "given": 3}
    with pytest.raises(errors.StateBeforeWithdrawal):
        await kit.a.register(ch.params, ch.signed(2, balances=(100, 100)))
    with pytest.raises(errors.StateBeforeWithdrawal):
        await kit.a.conclude(ch.params, ch.signed(2, balances=(100, 100), final=True))
    with pytest.raises(errors.StateBeforeWithdrawal):  # newer, but does not debit it
        await kit.a.conclude(ch.params, ch.signed(4, balances=(100, 100), final=True))
    big, big_sigs = ch.withdrawal(4, 1, 161, kit.carol.address)
    with pytest.raises(errors.InsufficientHoldings):
        await kit.a.withdraw_partial(ch.params, big, big_sigs)
    _, raw_sigs = ch.withdrawal(4, 1, 1, kit.carol.address)
    zero_sigs = [signature_tuple(s) for s in raw_sigs]
    with pytest.raises(errors.ZeroAmount):
        await kit.a.transact("withdrawPartial", params_tuple(ch.params),
                             (4, 1, 0, kit.carol.address), *zero_sigs)
    with pytest.raises(errors.ZeroAddress):
        await kit.a.transact("withdrawPartial", params_tuple(ch.params),
                             (4, 1, 1, bytes(20)), *zero_sigs)
    with pytest.raises(errors.WrongSigner):  # signatures over another amount
        await kit.a.transact("withdrawPartial", params_tuple(ch.params),
                             (4, 1, 2, kit.carol.address), *zero_sigs)
    # the channel id is not sent: it is the id of the params, and the signatures must cover it
    _, other_sigs = kit.channel(nonce=ch.params.nonce + 1).withdrawal(4, 1, 1, kit.carol.address)
    with pytest.raises(errors.WrongSigner):  # the same terms, signed for the next channel
        await kit.a.transact("withdrawPartial", params_tuple(ch.params),
                             (4, 1, 1, kit.carol.address), *map(signature_tuple, other_sigs))
    with pytest.raises(errors.NothingToWithdraw):
        await kit.a.withdraw(bytes(20), kit.alice.address)
    with pytest.raises(errors.ZeroAddress):
        await kit.a.withdraw(bytes(20), bytes(20))
    assert state_tuple(ch.state(0))[0] == ch.id
