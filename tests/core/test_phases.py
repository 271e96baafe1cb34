"""The one phase table and the role data of the machine (channels/core/protocol)."""

from __future__ import annotations

import pytest

from channels.core.errors import IllegalCall, UnexpectedMessage
from channels.core.protocol.phases import TABLE, Phase, Step, allows, expect, next_phase
from channels.core.protocol.roles import FOLLOWER, LEADER, ROLES, PeerStep


def test_trading_only_while_funding_or_open() -> None:
    assert {p for p in Phase if allows(p, Step.TRADE)} == {Phase.FUNDING, Phase.OPEN}


def test_who_asked_decides_the_error() -> None:
    with pytest.raises(IllegalCall, match="cannot trade while the channel is closed"):
        expect(Phase.CLOSED, Step.TRADE, ours=True, what="cannot trade")
    with pytest.raises(UnexpectedMessage, match="a proposal while the channel is disputed"):
        expect(Phase.DISPUTED, Step.TRADE, ours=False, what="a proposal")
    assert expect(Phase.OPENING, Step.OPEN_ACCEPTED, ours=False) is Phase.FUNDING


def test_closed_is_final_and_every_live_phase_can_be_disputed_and_concluded() -> None:
    assert {step for (phase, step) in TABLE if phase is Phase.CLOSED} == {Step.RESYNC}
    for phase in Phase:
        if phase is not Phase.CLOSED:
            assert next_phase(phase, Step.CONCLUDED) is Phase.CLOSED
        if phase not in (Phase.DISPUTED, Phase.CLOSED):
            assert next_phase(phase, Step.DISPUTE) is Phase.DISPUTED


def test_a_dispute_resumes_only_from_disputed() -> None:
    for step in (Step.RESUME_FUNDING, Step.RESUME_OPEN, Step.RESUME_FINAL):
        assert {p for p in Phase if allows(p, step)} == {Phase.DISPUTED}


def test_roles_split_the_role_dependent_messages() -> None:
    assert LEADER.receives.isdisjoint(FOLLOWER.receives)
    assert LEADER.receives | FOLLOWER.receives == set(PeerStep)
    assert [r.index for r in ROLES] == [0, 1]
    assert LEADER.proposes and not FOLLOWER.proposes
