"""A channel's ``asset_decimals`` come from the chain, never from the opener (docs/THREATS.md X11).

Everything a desk scales by a channel's decimals (the quote table in asset units, the risk
limits and notional figures, amounts typed as ``1.5``, payoff displays) would follow a false
figure in the opener's favour: 0 decimals for the 6-decimal test token makes "40" forty smallest
units, a million times cheaper. So a declared peer proposing the token with 0 or 18 decimals
(or ETH with 6) is refused with ``WrongAssetDecimals`` naming the asset, the claimed and the
true decimals, before anything is signed or funded; an asset whose ``decimals()`` answers
nothing usable is refused with ``AssetDecimalsUnknown``; our own ``open_channel`` refuses a wrong
figure with a ``LocalError`` before it sends anything; the right figure (given or read) opens.

The attacker is Alice's real key over a real TCP link to Bob's node (one anvil for the module):
an honest node can no longer build such a proposal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels.core import eip712
from channels.core.errors import LocalError
from channels.core.messages import Message, OpenAccept, OpenProposal, Reject
from channels.core.model import Address, Params
from channels.core.options import opening_state
from channels.core.protocol import Phase
from channels.core.signing import LocalSigner
from channels.core.terms import AcceptTerms, TermsDecision, WrongAssetDecimals
from channels.core.trust import ChannelProposal, Trust
from channels.core.wire import decode_message, encode_message
from channels.runtime.channel import Channel
from channels.runtime.node import Node
from channels.transport import Prologue, SecureChannel, connect
from tests.partners import partners

from ._helpers import PERIOD, desk
from .conftest import Desks

ETH = Address(bytes(20))
TOKEN_DECIMALS = 6  # the module's test token: a USDC-like asset
ASK = 1_000


def bob_trust(desks: Desks, no_code: bytes) -> Trust:
    """Alice may open channels in the token, in ETH and in an "asset" with no code at all."""
    return partners(
        desks.alice.address, assets=[desks.token, ETH, no_code], oracles=[desks.oracle.address]
    )


def proposal(bob: Node, desks: Desks, asset: bytes, decimals: int, nonce: int) -> OpenProposal:
    """Alice's channel proposal to Bob, signed by her real key, claiming ``decimals``."""
    params = Params(
        chain_id=bob.chain_id,
        adjudicator=Address(bob.chain.address),
        asset=Address(asset),
        asset_decimals=decimals,
        participants=(desks.alice.address, desks.bob.address),
        challenge_period=PERIOD,
        oracle=desks.oracle.address,
        nonce=nonce,
    )
    domain = eip712.Domain(params.chain_id, params.adjudicator)
    signature = desks.alice.sign_digest(eip712.state_digest(domain, opening_state(params)))
    return OpenProposal(params, (ASK, ASK), signature)


async def answer(link: SecureChannel, proposal: OpenProposal) -> Message:
    """Send ``proposal``; Bob's answer to it."""
    await link.send(encode_message(proposal))
    with trio.fail_after(20):
        while True:
            message = decode_message(await link.receive())
            if getattr(message, "channel_id", None) == proposal.params.channel_id:
                return message


async def wallets(desks: Desks) -> list[int]:
    """Token and ETH balances of Alice and Bob, and Bob's transaction count."""
    async with open_rpc(desks.url) as rpc:
        alice, bob = "0x" + desks.alice.address.hex(), "0x" + desks.bob.address.hex()
        return [
            await balance_of(rpc, desks.token, desks.alice.address),
            await balance_of(rpc, desks.token, desks.bob.address),
            await rpc.get_balance(alice),
            await rpc.get_balance(bob),
            await rpc.get_transaction_count(bob),
        ]


async def test_a_peer_claiming_false_decimals_is_refused_and_nothing_is_funded(
    desks: Desks, tmp_path: Path
) -> None:
    no_code = LocalSigner.generate().address  # an account nobody deployed anything to
    with trio.fail_after(180):
        async with desk(
            desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=bob_trust(desks, no_code)
        ) as bob:
            port = bob.listen_port
            assert port is not None
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect("127.0.0.1", port, desks.alice, desks.bob.address, prologue)
            before = await wallets(desks)
            bad0 = bob.bad_messages

            async def refused(asset: bytes, claimed: int, rule: str, nonce: int) -> str:
                reply = await answer(link, proposal(bob, desks, asset, claimed, nonce))
                assert isinstance(reply, Reject), reply
                assert (reply.version, reply.request_id, reply.rule) == (None, None, rule)
                # Nothing signed, stored, deposited or sent on chain by either side.
                assert bob.channels == []
                assert await bob.store.run(lambda s: s.channel_ids()) == []
                assert await wallets(desks) == before
                return reply.reason

            token = "0x" + desks.token.hex()
            for nonce, claimed in enumerate((0, 18, 5, 36)):
                reason = await refused(desks.token, claimed, "WrongAssetDecimals", nonce)
                assert reason == (
                    f"asset {token} has {TOKEN_DECIMALS} decimals on chain, the channel claims "
                    f"{claimed}"
                )
            reason = await refused(ETH, TOKEN_DECIMALS, "WrongAssetDecimals", 10)
            assert reason == f"asset 0x{'00' * 20} has 18 decimals on chain, the channel claims 6"
            # decimals() of an address without code answers nothing: it cannot be checked.
            reason = await refused(no_code, 0, "AssetDecimalsUnknown", 11)
            assert reason == (
                f"could not read the decimals of asset 0x{no_code.hex()} from the chain "
                "(BadTokenDecimals)"
            )
            assert bob.bad_messages == bad0  # refusals, not protocol faults: the link lives

            # The same link, the true figure: Bob accepts (his signature on version 0).
            good = proposal(bob, desks, desks.token, TOKEN_DECIMALS, 12)
            assert isinstance(await answer(link, good), OpenAccept)
            assert [c.params.asset_decimals for c in bob.channels] == [TOKEN_DECIMALS]
            await link.aclose()


async def test_our_own_open_takes_the_chains_decimals(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(180):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
        ):
            port = bob.listen_port
            assert port is not None
            before = await wallets(desks)

            async def open_with(decimals: int | None) -> Channel:
                return await alice.open_channel(
                    peer=("127.0.0.1", port),
                    peer_address=desks.bob.address,
                    asset=desks.token,
                    deposit=ASK,
                    peer_deposit=ASK,
                    oracle=desks.oracle.address,
                    challenge_period=PERIOD,
                    asset_decimals=decimals,
                )

            for claimed in (0, 18):
                with pytest.raises(WrongAssetDecimals) as info:
                    await open_with(claimed)
                assert isinstance(info.value, LocalError)
                assert (info.value.asset, info.value.claimed, info.value.true) == (
                    desks.token,
                    claimed,
                    TOKEN_DECIMALS,
                )
                # Refused before anything was signed, stored, sent or deposited.
                assert alice.channels == [] and bob.channels == []
                assert await alice.store.run(lambda s: s.channel_ids()) == []
                assert not alice.is_connected(desks.bob.address)
                assert await wallets(desks) == before

            # The true figure, given or read from the chain, opens and funds.
            for decimals in (TOKEN_DECIMALS, None):
                ch = await open_with(decimals)
                assert ch.phase is Phase.OPEN
                assert ch.params.asset_decimals == TOKEN_DECIMALS
                assert bob.channel(ch.id).params.asset_decimals == TOKEN_DECIMALS
            token_alice, token_bob = (await wallets(desks))[:2]
            assert (token_alice, token_bob) == (before[0] - 2 * ASK, before[1] - 2 * ASK)


async def test_the_accept_channel_callback_never_sees_false_decimals(
    desks: Desks, tmp_path: Path
) -> None:
    seen: list[ChannelProposal] = []

    def accept_all(proposal: ChannelProposal) -> TermsDecision:
        seen.append(proposal)
        return AcceptTerms(proposal.asked_of_us)

    trust = Trust(admit=lambda _peer: True, accept_channel=accept_all)
    with trio.fail_after(120):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=trust) as bob:
            port = bob.listen_port
            assert port is not None
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect("127.0.0.1", port, desks.alice, desks.bob.address, prologue)
            reply = await answer(link, proposal(bob, desks, desks.token, 0, 1))
            assert isinstance(reply, Reject) and reply.rule == "WrongAssetDecimals"
            assert seen == [] and bob.channels == []
            good = proposal(bob, desks, desks.token, TOKEN_DECIMALS, 2)
            assert isinstance(await answer(link, good), OpenAccept)
            assert [p.params.asset_decimals for p in seen] == [TOKEN_DECIMALS]
            await link.aclose()
