"""The channel state machine across a link cut: the reestablish after a reconnect completes or
abandons what was in flight, adopts a newer verified state after data loss, and refuses forged or
equivocating data and messages from the old link. Two wired machines, no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from channels.core import eip712
from channels.core.errors import BadSignature, Equivocation
from channels.core.messages import Reestablish
from channels.core.options import OpenOption, Pay
from channels.core.positions import PositionBook
from channels.core.protocol import (
    ChannelMachine,
    DataLossRecovered,
    Received,
    Reconnected,
)

from .pair import Pair, make_signer
from .test_machine import option, snapshot


def reconnect(pair: Pair) -> None:
    pair.cut_and_relink()
    pair.deliver_all()


def test_reconnect_when_the_accept_was_lost_completes_the_update() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 10))
    pair.deliver_one(pair.bob)  # Bob signs and stores v2; his accept is lost
    pair.alice.inbox.clear()
    reconnect(pair)
    assert pair.alice.m.state == pair.bob.m.state
    assert pair.alice.m.state.version == 2
    assert pair.alice.applied[-1].update.signed.state.version == 2
    pair.request(pair.bob, Pay(1, 1))
    pair.deliver_all()
    assert pair.alice.m.state.version == 3
    pair.assert_invariants()


def test_reconnect_when_the_proposal_was_lost_abandons_it() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 10))
    pair.request(pair.bob, Pay(1, 3))
    reconnect(pair)
    assert pair.alice.m.state.version == 1
    assert {r.rule for r in pair.alice.refused} == {"NotCountersigned"}
    assert {r.rule for r in pair.bob.refused} == {"Disconnected"}
    pair.request(pair.alice, Pay(0, 10))
    pair.deliver_all()
    assert pair.bob.m.state.version == 3  # v2 was burned
    pair.assert_invariants()


def test_data_loss_peer_adopts_newer_verified_state() -> None:
    pair = Pair()
    pair.request(pair.bob, OpenOption(option(1), premium=1_000))
    pair.deliver_all()
    old = ChannelMachine.restore(
        pair.params,
        pair.alice.signer,
        pair.config,
        pair.deposits,
        pair.alice.m.latest,
        PositionBook.from_snapshot(pair.alice.m.book.snapshot()),
        pair.alice.m.highest_signed,
        pair.alice.m.phase,
    )
    for _ in range(5):
        pair.request(pair.alice, Pay(0, 7))
    pair.request(pair.bob, OpenOption(option(2), premium=1_000))
    pair.deliver_all()
    newest = pair.alice.m.state
    pair.alice.machine = old  # Alice's disk was restored from a backup
    reconnect(pair)
    assert pair.alice.m.state == newest
    assert any(isinstance(e, DataLossRecovered) for e in pair.alice.events)
    assert pair.alice.m.book.root == newest.positions_root
    pair.request(pair.alice, Pay(0, 1))
    pair.deliver_all()
    assert pair.bob.m.state.version == newest.version + 1


def test_reestablish_with_forged_or_mismatched_data_changes_nothing() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 10))
    pair.deliver_all()
    st = pair.bob.m.state
    sigs = pair.bob.m.latest.signed.signatures
    assert sigs[0] is not None and sigs[1] is not None
    newer = dataclasses.replace(st, version=st.version + 5, balances=(0, 2_000_000))
    digest = eip712.state_digest(pair.domain, newer)
    forged = Reestablish(
        pair.params.channel_id,
        newer,
        (make_signer("mallory").sign_digest(digest), pair.bob.signer.sign_digest(digest)),
        pair.bob.m.book.snapshot(),
    )
    before = snapshot(pair)
    with pytest.raises(BadSignature):
        pair.handle(pair.alice, Received(forged))
    # Same version, different content, both signatures valid only if Alice equivocated: here the
    # signatures are over the other state, so the check fails on the signatures first.
    same_version = dataclasses.replace(st, balances=(st.balances[0] - 1, st.balances[1] + 1))
    with pytest.raises(BadSignature):
        pair.handle(
            pair.alice,
            Received(
                Reestablish(
                    pair.params.channel_id,
                    same_version,
                    (sigs[0], sigs[1]),
                    pair.bob.m.book.snapshot(),
                )
            ),
        )
    assert snapshot(pair) == before


def test_equivocation_is_detected_on_reestablish() -> None:
    pair = Pair()
    st = pair.bob.m.state
    other = dataclasses.replace(st, balances=(st.balances[0] - 1, st.balances[1] + 1))
    digest = eip712.state_digest(pair.domain, other)
    # Only possible if both keys signed twice: simulate a compromised peer holding both.
    msg = Reestablish(
        pair.params.channel_id,
        other,
        (pair.alice.signer.sign_digest(digest), pair.bob.signer.sign_digest(digest)),
        pair.bob.m.book.snapshot(),
    )
    before = snapshot(pair)
    with pytest.raises(Equivocation):
        pair.handle(pair.alice, Received(msg))
    assert snapshot(pair) == before


def test_proposal_from_the_old_link_after_the_reestablish_is_not_signed() -> None:
    """The race behind a stalled channel after a link cut: the new link comes up (each side
    sends its Reestablish) while a proposal from before the cut is still on its way. Had the
    follower countersigned it after its Reestablish left, that Reestablish would name the older
    state: the leader abandons the proposal on reading it, refuses the late Accept, and the two
    sides hold different latest states (every later proposal fails with VersionGap)."""
    pair = Pair()
    start = pair.alice.m.state.version
    pair.request(pair.alice, Pay(0, 10))  # the proposal is queued to Bob, not delivered yet
    for side in (pair.alice, pair.bob):
        pair.handle(side, Reconnected())  # the new link replaced the old one
    pair.deliver_one(pair.bob)  # the old proposal reaches Bob before Alice's Reestablish
    pair.deliver_all()
    assert pair.alice.m.state == pair.bob.m.state
    assert pair.bob.m.state.version == start  # never countersigned
    assert {r.rule for r in pair.alice.refused} == {"NotCountersigned"}
    pair.request(pair.alice, Pay(0, 7))
    pair.deliver_all()
    assert pair.bob.m.state.version == start + 2  # trading goes on (the refused version burned)
    assert pair.alice.m.state == pair.bob.m.state
    pair.assert_invariants()


def test_a_resynchronising_leader_proposes_nothing_for_a_request_from_the_old_link() -> None:
    """Bob's request left on the old link; the new link replaced it before Alice read it. Bob
    refused that request to his caller when he reconnected, so a proposal for it can only be
    refused (a burnt version and a wasted round): Alice, still resynchronising, proposes nothing."""
    pair = Pair()
    start = pair.alice.m.state.version
    signed_before = pair.alice.m.highest_signed
    pair.request(pair.bob, Pay(1, 3))  # queued to Alice, not delivered yet
    for side in (pair.alice, pair.bob):
        pair.handle(side, Reconnected())
    assert {r.rule for r in pair.bob.refused} == {"Disconnected"}
    actions = pair.deliver_one(pair.alice)  # the old request reaches Alice mid-resync
    assert actions == []
    assert pair.alice.m.highest_signed == signed_before  # nothing signed for it
    pair.deliver_all()
    assert pair.alice.m.state == pair.bob.m.state and pair.bob.m.state.version == start
    pair.request(pair.bob, Pay(1, 4))  # trading goes on
    pair.deliver_all()
    assert pair.bob.m.state.version == start + 1
    pair.assert_invariants()
