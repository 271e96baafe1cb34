"""A deposit names only a params hash and its asset (docs/PROTOCOL.md 3, issue 16).

The attack: someone deposits to a channel whose params are not yet known on chain (no deposit, no
close has shown them), with a worthless token, or ETH to a token channel, or names the channel id
itself where the params hash belongs. If the adjudicator keyed records by a hash it cannot tie to
the asset, the victim channel's record would count the worthless deposit as its own asset and pay
it out of the pool other channels share. The adjudicator derives the record key from the params
hash AND the asset actually moved, so none of these can reach the victim's record, and a state that
counts them is refused.
"""

from __future__ import annotations

import pytest

from adjudicator import errors, tokens
from adjudicator.transactions import TransactionSender
from channels.core.errors import IllegalCall

from .kit import Kit, artifact_abi, deploy_artifact

ERC20 = artifact_abi("TestERC20")


async def test_a_deposit_reaches_only_the_channel_of_its_asset(kit: Kit) -> None:
    eth, tok = kit.channel(), kit.channel(kit.env.token)
    carol: TransactionSender = kit.c.sender  # type: ignore[assignment]
    junk = await deploy_artifact(kit, "TestERC20", "Junk", "JUNK", 18)
    await carol.transact("0x" + junk.hex(), ERC20.encode_call("mint", kit.carol.address, 10**6),
                         timeout=30)
    await tokens.approve(kit.rpc, carol, junk, kit.env.adjudicator, 10**6)

    # before either channel's params were ever seen on chain
    await kit.c.transact("depositToken", eth.params.params_hash, junk, 0, 1000)
    await kit.c.transact("depositToken", tok.params.params_hash, junk, 1, 1000)
    await kit.c.transact("depositEth", tok.params.params_hash, 0, value=1000)
    await kit.c.transact("depositEth", eth.id, 0, value=1000)  # the id in place of the params hash
    for ch in (eth, tok):
        assert (await kit.a.channel(ch.id)).deposits == (0, 0)

    await kit.fund(eth, (60, 40))
    await kit.fund(tok, (60, 40))
    for ch in (eth, tok):
        assert (await kit.a.channel(ch.id)).deposits == (60, 40)
        with pytest.raises(errors.UnderfundedState):  # a state counting the junk is refused
            await kit.c.conclude(ch.params, ch.signed(1, balances=(1060, 40), final=True))

    before = await kit.eth_balance(kit.alice.address), await kit.eth_balance(kit.bob.address)
    await kit.c.conclude(eth.params, eth.signed(1, balances=(60, 40), final=True))
    after = await kit.eth_balance(kit.alice.address), await kit.eth_balance(kit.bob.address)
    assert (after[0] - before[0], after[1] - before[1]) == (60, 40)


async def test_a_deposit_names_its_participant_by_index(kit: Kit) -> None:
    """Anyone may fund either side; the index picks the side of the params the hash commits to."""
    ch = kit.channel()
    await kit.c.deposit(ch.params, 1, 7)
    assert (await kit.a.channel(ch.id)).deposits == (0, 7)
    with pytest.raises(errors.InvalidParticipantIndex):
        await kit.c.transact("depositEth", ch.params.params_hash, 2, value=1)


async def test_the_client_refuses_params_of_another_adjudicator(kit: Kit) -> None:
    """The adjudicator no longer checks params on a deposit; ours does, before sending anything."""
    ch = kit.channel(adjudicator=kit.env.adjudicator_b)
    nonce = await kit.rpc.get_transaction_count(kit.a.sender.address)  # type: ignore[union-attr]
    with pytest.raises(IllegalCall):
        await kit.a.deposit(ch.params, 0, 1)
    assert await kit.rpc.get_transaction_count(kit.a.sender.address) == nonce  # type: ignore[union-attr]
