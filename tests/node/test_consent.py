"""The attacks of issue 12 against a desk, over real TCP and anvil (docs/PROTOCOL.md: who decides).

Each test is one attack that worked against a default node before consent: a stranger made a desk
fund a channel, a peer got a value-moving update countersigned, strangers exhausted the desk's
connections. Now each is refused, the refusal names the rule, and the desk's wallet and channels
are untouched. A declared peer pushing the desk past each of its terms and risk limits (a tiny
deposit of its own, its own key as the oracle, a 60 s challenge period, ...):
tests/node/test_consent_terms_limits.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels.core.consent import Approved, Refusal, UpdateView, Verdict
from channels.core.model import Address, Amount, OptionKind, Position, PositionId, symbol
from channels.core.options import OpenOption
from channels.core.secure_session import TransportError
from channels.core.signing import LocalSigner
from channels.core.terms import AcceptTerms, AssetTerms, PeerTerms, RefuseTerms, TermsRefused
from channels.core.trust import ChannelProposal, Peer, Trust
from channels.runtime.node import UpdateRefusedError
from channels.transport import Prologue, connect

from ._helpers import PERIOD, WEEK, desk, open_channel, propose
from .conftest import Desks

DEPOSIT = 1_000_000


def bob_terms(desks: Desks, **changes: object) -> PeerTerms:
    terms = PeerTerms(
        assets={Address(desks.token): AssetTerms(max_deposit=DEPOSIT, max_total=2 * DEPOSIT)},
        oracles=frozenset({desks.oracle.address}),
        min_challenge_period=PERIOD,
        max_challenge_period=WEEK,
        max_channels=2,
    )
    return dataclasses.replace(terms, **changes)  # type: ignore[arg-type]


def bob_trust(desks: Desks, **changes: object) -> Trust:
    """Bob declares Alice with strict terms and no decision hook."""
    return Trust(peers=(Peer("alice", desks.alice.address, terms=bob_terms(desks, **changes)),))


def alice_trust(desks: Desks) -> Trust:
    return Trust(peers=(Peer("bob", desks.bob.address),))


async def wallet(desks: Desks, who: bytes) -> tuple[int, int]:
    async with open_rpc(desks.url) as rpc:
        return await balance_of(rpc, desks.token, who), await rpc.get_balance("0x" + who.hex())


async def test_a_stranger_cannot_connect_to_or_open_with_a_default_desk(
    desks: Desks, tmp_path: Path
) -> None:
    stranger = LocalSigner.generate()
    with trio.fail_after(60):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=Trust()) as bob:
            assert bob.listen_port is not None
            before = await wallet(desks, desks.bob.address)
            async with desk(desks, stranger, tmp_path / "s.sqlite", trust=Trust()) as mallory:
                # The attack: a key Bob never heard of proposes a channel and deposits nothing.
                with pytest.raises(TransportError):
                    await propose(mallory, desks, bob.listen_port, ask=DEPOSIT)
            assert bob.channels == []
            assert bob.gatekeeper.refused_connections >= 1
            assert await wallet(desks, desks.bob.address) == before


async def test_strangers_cannot_exhaust_the_desks_connections(desks: Desks, tmp_path: Path) -> None:
    """Even with a bot that admits every key, undeclared peers share a small cap: the 1,011
    authenticated strangers of issue 12 cannot starve a declared peer."""
    admit_all = dataclasses.replace(
        bob_trust(desks), admit=lambda _peer: True, max_undeclared_links=8
    )
    with trio.fail_after(120):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=admit_all) as bob:
            assert bob.listen_port is not None
            prologue = Prologue(desks.deployment.chain_id, Address(desks.adjudicator))
            held, refused = [], 0
            for _ in range(20):
                try:
                    held.append(
                        await connect(
                            "127.0.0.1",
                            bob.listen_port,
                            LocalSigner.generate(),
                            desks.bob.address,
                            prologue,
                            timeout=5,
                        )
                    )
                except TransportError:
                    refused += 1
            await trio.sleep(0.2)  # let Bob's side count every link it accepted
            assert bob.gatekeeper.link_count <= 8
            assert refused >= 12 or bob.gatekeeper.refused_connections >= 12
            # Alice, declared, still connects, opens and trades.
            async with desk(
                desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)
            ) as a:
                ch, bch = await open_channel(a, bob, desks, deposit=DEPOSIT)
                done = await ch.pay(1)
                await bch.wait_version(done.version)
            for link in held:
                await link.aclose()


async def test_the_accept_channel_callback_decides_and_can_only_lower(
    desks: Desks, tmp_path: Path
) -> None:
    seen: list[ChannelProposal] = []

    def half(proposal: ChannelProposal) -> AcceptTerms | RefuseTerms:
        seen.append(proposal)
        return AcceptTerms(proposal.asked_of_us // 2)  # a counter-offer, never more

    trust = dataclasses.replace(bob_trust(desks), accept_channel=half)
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=trust) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)) as alice,
        ):
            assert bob.listen_port is not None
            with pytest.raises(TermsRefused) as refused:
                await propose(alice, desks, bob.listen_port, ask=DEPOSIT)
            assert refused.value.rule == "DepositAboveTerms"
            assert f"at most {DEPOSIT // 2}" in refused.value.reason
            assert isinstance(seen[0].by_terms, AcceptTerms)  # our terms alone would accept


def _whole_balance_call(expiry: int, writer: int) -> Position:
    return Position(
        id=PositionId(1),
        underlying=symbol("ETH-USD"),
        kind=OptionKind.CALL,
        strike=1,  # 0.00000001: the holder takes the whole collateral at any price
        expiry=expiry,
        quantity=10**18,
        writer=writer,
        collateral=Amount(DEPOSIT),
    )


async def test_a_peer_cannot_get_a_value_moving_update_countersigned(
    desks: Desks, tmp_path: Path
) -> None:
    """Issue 12: Alice "buys" from Bob a call at a strike of almost nothing whose collateral is
    Bob's whole balance, for a premium of 1. Bob has no hook and no quote: he refuses."""
    with trio.fail_after(90):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=bob_trust(desks)) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)) as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks, deposit=DEPOSIT)
            state = bch.state
            attack = OpenOption(_whole_balance_call(alice.now() + WEEK, writer=1), Amount(1))
            with pytest.raises(UpdateRefusedError) as refused:
                await ch.trade(attack)
            assert refused.value.rule == "ConsentRequired"
            assert "we write an option" in refused.value.reason
            assert bch.state == state and ch.state == state
            # Bob asking Alice to pay him is refused by Alice the same way (she is the leader).
            with pytest.raises(UpdateRefusedError) as refused:
                await bch.trade(
                    dataclasses.replace(
                        attack, position=_whole_balance_call(alice.now() + WEEK, writer=0)
                    )
                )
            assert refused.value.rule == "ConsentRequired"
            # What costs Bob nothing still goes through on its own.
            done = await ch.pay(10)
            await bch.wait_version(done.version)
            assert bch.our_balance == DEPOSIT + 10


async def test_the_decision_hook_sees_the_peer_and_decides(desks: Desks, tmp_path: Path) -> None:
    views: list[UpdateView] = []

    def bob_decides(view: UpdateView) -> Verdict:
        views.append(view)
        trade = view.trades[0]
        if isinstance(trade, OpenOption) and trade.premium >= 1_000:
            return Approved("bob's pricer")
        return Refusal("PremiumTooLow", "bob writes for a premium of 1,000 or more")

    trust = dataclasses.replace(bob_trust(desks), decide=bob_decides)
    with trio.fail_after(90):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=trust) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)) as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks, deposit=DEPOSIT)
            position = dataclasses.replace(
                _whole_balance_call(alice.now() + WEEK, writer=1),
                strike=3000_00000000,
                collateral=Amount(100_000),
            )
            with pytest.raises(UpdateRefusedError) as refused:
                await ch.trade(OpenOption(position, Amount(999)))
            assert refused.value.rule == "PremiumTooLow"
            done = await ch.trade(OpenOption(position, Amount(1_000)))
            await bch.wait_version(done.version)
            assert bch.state.position_count == 1
            assert views[-1].peer == desks.alice.address and views[-1].channel_id == ch.id
            assert not views[-1].initiated_by_us
