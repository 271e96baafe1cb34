"""The daily premium limit survives a restart (issue 12, risk limits): a peer that can make the
desk restart must not get a second day's allowance. Over real TCP and anvil, with the desk's node
stopped and started again on its own store and port."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from channels.core.consent import Approved
from channels.core.model import Amount, PositionId
from channels.core.options import OpenOption
from channels.core.risk import RiskLimits
from channels.core.trust import Peer, Trust
from channels.runtime.node import UpdateRefusedError

from ._helpers import WEEK, desk, linked, open_channel
from .conftest import Desks
from .test_consent import DEPOSIT, _whole_balance_call, alice_trust, bob_terms

PER_DAY = 10_000


def bob_trust(desks: Desks) -> Trust:
    """Bob's bot buys every option Alice offers, within a premium of PER_DAY a day."""
    limits = RiskLimits(max_premium_per_day=PER_DAY)
    peer = Peer("alice", desks.alice.address, terms=bob_terms(desks), limits=limits)
    return Trust(peers=(peer,), decide=lambda _view: Approved("bob buys everything"))


async def test_a_restart_does_not_reset_the_daily_premium_limit(
    desks: Desks, tmp_path: Path
) -> None:
    bob_store = tmp_path / "b.sqlite"
    with trio.fail_after(120):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", trust=alice_trust(desks)) as a:
            async with desk(desks, desks.bob, bob_store, listen=0, trust=bob_trust(desks)) as bob:
                port = bob.listen_port
                assert port is not None
                ch, bch = await open_channel(a, bob, desks, deposit=DEPOSIT)
                # Alice writes, Bob holds: Bob pays each premium.
                call = dataclasses.replace(
                    _whole_balance_call(a.now() + WEEK, writer=0),
                    strike=3000_00000000,
                    collateral=Amount(1_000),
                )
                done = await ch.trade(OpenOption(call, Amount(6_000)))
                await bch.wait_version(done.version)
                second = dataclasses.replace(call, id=PositionId(2))
                with pytest.raises(UpdateRefusedError) as refused:  # 12,000 in a day
                    await ch.trade(OpenOption(second, Amount(6_000)))
                assert refused.value.rule == "LimitExceeded"
            # The attack: Bob's node goes down and comes back on its store and port.
            async with desk(
                desks, desks.bob, bob_store, listen=port, trust=bob_trust(desks)
            ) as bob2:
                bch2 = bob2.channel(ch.id)
                await linked(a, ch, bob2, bch2)
                with pytest.raises(UpdateRefusedError) as refused:
                    await ch.trade(OpenOption(second, Amount(6_000)))
                assert refused.value.rule == "LimitExceeded"
                assert "premium paid in 24h" in refused.value.reason, refused.value
                done = await ch.trade(OpenOption(second, Amount(4_000)))  # what is left today
                await bch2.wait_version(done.version)
                assert bch2.state.position_count == 2
