"""The adjudicator caps a channel's deposits, both participants together, at 2**96 - 1 (its record
keeps every amount of a channel in 96 bits). The core refuses to open a channel beyond the cap,
on either side of the proposal; exactly at the cap it opens and funds."""

from __future__ import annotations

import pytest

from channels.core.errors import InvalidAmount
from channels.core.messages import OpenProposal
from channels.core.model import MAX_CHANNEL_DEPOSITS, check_channel_deposits
from channels.core.protocol import ChannelMachine, Phase

from .pair import Pair

CAP = 2**96 - 1


def test_the_cap_is_the_adjudicators() -> None:
    assert MAX_CHANNEL_DEPOSITS == CAP
    check_channel_deposits((CAP, 0))
    check_channel_deposits((CAP - 5, 5))
    with pytest.raises(InvalidAmount, match="2\\*\\*96"):
        check_channel_deposits((CAP, 1))
    with pytest.raises(InvalidAmount):
        check_channel_deposits((2**95, 2**95))


def test_a_channel_at_the_cap_opens_and_funds() -> None:
    pair = Pair(deposits=(CAP - 1, 1))
    for side in (pair.alice, pair.bob):
        assert side.machine.phase is Phase.OPEN
        assert side.machine.confirmed_deposits == (CAP - 1, 1)


def test_a_proposal_above_the_cap_is_refused_by_both_sides() -> None:
    pair = Pair(open_=False)
    with pytest.raises(InvalidAmount):
        ChannelMachine.initiate(pair.params, pair.alice.signer, pair.config, (CAP, 1))
    # a peer's proposal above the cap: refused before anything is signed
    ok, _ = ChannelMachine.initiate(pair.params, pair.alice.signer, pair.config, (1, 1))
    signature = ok.latest.signed.signatures[0]
    assert signature is not None
    forged = OpenProposal(pair.params, (CAP, 1), signature)
    with pytest.raises(InvalidAmount):
        ChannelMachine.accept_open(forged, pair.bob.signer, pair.config)
