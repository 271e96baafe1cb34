"""A refused channel proposal comes back with a typed counter-offer (docs/PROTOCOL.md 7.1), over
real TCP and anvil: the opener sees the terms as data and proposes again with them in one call;
a counter-offer that would hurt the opener is not proposed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from channels.core.terms import (
    AcceptTerms,
    BadCounterOffer,
    CounterOffer,
    RefuseTerms,
    TermsRefused,
)
from channels.core.trust import ChannelProposal
from channels.runtime.node import Node

from ._helpers import PERIOD, WEEK, desk
from .conftest import Desks
from .test_consent import DEPOSIT, alice_trust, bob_trust, wallet


async def propose(node: Node, desks: Desks, port: int, *, ask: int, period: int) -> None:
    await node.open_channel(
        peer=("127.0.0.1", port),
        peer_address=desks.bob.address,
        asset=desks.token,
        deposit=DEPOSIT,
        peer_deposit=ask,
        oracle=desks.oracle.address,
        challenge_period=period,
    )


@pytest.mark.parametrize(
    ("ask", "period", "rule", "counter"),
    [
        (3 * DEPOSIT, PERIOD, "DepositAboveTerms", CounterOffer(DEPOSIT, PERIOD)),
        (DEPOSIT, 2 * WEEK, "ChallengePeriodOutOfBounds", CounterOffer(DEPOSIT, WEEK)),
    ],
)
async def test_the_opener_gets_the_counter_offer_and_proposes_it_in_one_call(
    desks: Desks, tmp_path: Path, ask: int, period: int, rule: str, counter: CounterOffer
) -> None:
    with trio.fail_after(90):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=bob_trust(desks)) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)) as alice,
        ):
            assert bob.listen_port is not None
            with pytest.raises(TermsRefused) as refused:
                await propose(alice, desks, bob.listen_port, ask=ask, period=period)
            assert refused.value.rule == rule
            assert refused.value.counter == counter
            assert alice.channels == [] and bob.channels == []
            token_before, _ = await wallet(desks, desks.bob.address)
            channel = await alice.accept_counter_offer(refused.value)
            assert channel.deposits == (DEPOSIT, counter.deposit)
            assert channel.params.challenge_period == counter.challenge_period
            token_after, _ = await wallet(desks, desks.bob.address)
            assert token_before - token_after == counter.deposit


async def test_a_counter_offer_that_would_hurt_the_opener_is_not_proposed(
    desks: Desks, tmp_path: Path
) -> None:
    """A hostile peer counters with a challenge period too short to defend the channel."""

    def sixty_seconds(proposal: ChannelProposal) -> AcceptTerms | RefuseTerms:
        return RefuseTerms("DepositAboveTerms", "take it or leave it", CounterOffer(1, 60))

    trust = dataclasses.replace(bob_trust(desks), accept_channel=sixty_seconds)
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=trust) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)) as alice,
        ):
            assert bob.listen_port is not None
            with pytest.raises(TermsRefused) as refused:
                await propose(alice, desks, bob.listen_port, ask=DEPOSIT, period=PERIOD)
            assert refused.value.counter == CounterOffer(1, 60)
            with pytest.raises(BadCounterOffer):
                await alice.accept_counter_offer(refused.value)
            assert alice.channels == [] and bob.channels == []
