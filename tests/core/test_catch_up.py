"""A side that is behind catches up from the peer's Reestablish with the trades of every state it
missed (docs/PROTOCOL.md section 7, "Reestablish"), checked and replayed before anything is
stored; a wider gap, a forged or a mismatched history are handled without storing a wrong trail.
"""

from __future__ import annotations

import dataclasses

import pytest

from channels.core import eip712, wire
from channels.core.errors import BadSignature, StateMismatch
from channels.core.messages import RESYNC_HISTORY, Reestablish
from channels.core.model import Address, Attestation, OptionKind, Position, PositionId
from channels.core.options import DebitWithdrawal, OpenOption, Pay, Settle, Unwind
from channels.core.positions import PositionBook
from channels.core.protocol import (
    ChainStateSeen,
    ChannelMachine,
    DataLossRecovered,
    Disconnected,
    PersistState,
    Received,
    Reconnected,
    Send,
)

from .pair import DAY, ETH_USD, NOW, ORACLE_SIGNER, Pair, Side
from .test_machine_reestablish import reconnect


def _option(pid: int, expiry: int = NOW + 7 * DAY) -> Position:
    return Position(
        id=PositionId(pid),
        underlying=ETH_USD,
        kind=OptionKind.CALL,
        strike=3000_00000000,
        expiry=expiry,
        quantity=10**18,
        writer=1,
        collateral=500_000,
    )


def _backup(pair: Pair, side: Side) -> ChannelMachine:
    """A copy of ``side``'s machine as a restart from its store would give it."""
    m = side.m
    return ChannelMachine.restore(
        pair.params,
        side.signer,
        pair.config,
        pair.deposits,
        m.latest,
        PositionBook.from_snapshot(m.book.snapshot()),
        m.highest_signed,
        m.phase,
    )


def _stored_updates(side: Side, after: int) -> list[PersistState]:
    return [
        a for a in side.events
        if isinstance(a, PersistState) and a.update.signed.state.version > after
    ]  # fmt: skip


def test_a_restored_backup_catches_up_with_every_trade() -> None:
    pair = Pair()
    pair.request(pair.bob, OpenOption(_option(1), premium=1_000))
    pair.deliver_all()
    old = _backup(pair, pair.alice)
    behind = old.state.version
    pair.request(pair.bob, OpenOption(_option(2, NOW + 8 * DAY), premium=2_000))
    pair.request(pair.alice, Pay(0, 7))
    pair.deliver_all()
    pair.request(pair.bob, Unwind(PositionId(2), 1_000))
    pair.deliver_all()
    pair.now = NOW + 7 * DAY  # option 1 is settled after its expiry
    att = Attestation(ETH_USD, NOW + 7 * DAY, 3100_00000000)
    sig = ORACLE_SIGNER.sign_digest(eip712.attestation_digest(pair.domain, att))
    pair.request(pair.bob, Settle(PositionId(1), att, sig))
    pair.deliver_all()
    pair.request(pair.bob, DebitWithdrawal(1, 100_000, Address(b"\x77" * 20)))
    pair.deliver_all()
    wanted = {u.signed.state.version: u for u in pair.bob.m.recent}
    newest = pair.alice.m.latest
    pair.alice.machine = old  # Alice's disk was restored from a backup
    pair.alice.events.clear()
    reconnect(pair)
    stored = _stored_updates(pair.alice, behind)
    versions = [a.update.signed.state.version for a in stored]
    assert versions == sorted(v for v in wanted if v > behind)
    assert len(versions) == 5
    for action in stored:
        assert action.update == wanted[action.update.signed.state.version]
        assert action.update.trades  # each caught-up state carries what produced it
    assert stored[-1].update == newest  # the withdrawal and its two signatures too
    assert newest.withdrawal is not None
    assert pair.alice.m.latest == newest
    assert any(isinstance(e, DataLossRecovered) for e in pair.alice.events)
    pair.request(pair.alice, Pay(0, 1))
    pair.deliver_all()
    pair.assert_invariants()


def test_a_gap_wider_than_the_history_adopts_the_latest_alone() -> None:
    pair = Pair()
    old = _backup(pair, pair.alice)
    behind = old.state.version
    for _ in range(RESYNC_HISTORY + 2):
        pair.request(pair.alice, Pay(0, 3))
        pair.deliver_all()
    newest = pair.alice.m.state
    pair.alice.machine = old
    pair.alice.events.clear()
    reconnect(pair)
    stored = _stored_updates(pair.alice, behind)
    assert [a.update.signed.state for a in stored] == [newest]
    assert stored[0].update.trades == ()  # the trail shows the gap; nothing is made up
    assert pair.alice.m.state == newest


def _reestablish_of(side: Side) -> Reestablish:
    """The Reestablish ``side`` sends after a reconnection."""
    actions = [*side.m.handle(Disconnected(), now=NOW), *side.m.handle(Reconnected(), now=NOW)]
    sent = [a.message for a in actions if isinstance(a, Send)]
    assert len(sent) == 1 and isinstance(sent[0], Reestablish)
    return sent[0]


def test_a_forged_or_mismatched_history_changes_nothing() -> None:
    pair = Pair()
    old = _backup(pair, pair.alice)
    for _ in range(3):
        pair.request(pair.alice, Pay(0, 5))
        pair.deliver_all()
    msg = _reestablish_of(pair.bob)
    assert len(msg.recent) == 5  # version 0, the credit state and three payments
    pair.alice.machine = old
    before = (old.latest, old.book.snapshot(), list(old.recent))

    # The history does not end at the state sent.
    cut = dataclasses.replace(msg, recent=msg.recent[:-1])
    with pytest.raises(StateMismatch):
        old.handle(Received(cut), now=NOW)
    # One update of it carries a signature that is not the participant's.
    forged_sig = pair.bob.signer.sign_digest(b"\x01" * 32)
    mid = msg.recent[-2]
    forged = dataclasses.replace(
        mid, signed=dataclasses.replace(mid.signed, signatures=(forged_sig, forged_sig))
    )
    bad = dataclasses.replace(msg, recent=(*msg.recent[:-2], forged, msg.recent[-1]))
    with pytest.raises(BadSignature):
        old.handle(Received(bad), now=NOW)
    assert (old.latest, old.book.snapshot(), list(old.recent)) == before

    # Trades that do not give the signed state are not stored as its explanation.
    lying = dataclasses.replace(msg.recent[-1], trades=(Pay(0, 4),))
    fibbed = dataclasses.replace(msg, recent=(*msg.recent[:-1], lying))
    actions = old.handle(Received(fibbed), now=NOW)
    stored = [a for a in actions if isinstance(a, PersistState)]
    assert [a.update.trades for a in stored] == [()]
    assert old.state == msg.state


def test_the_history_is_trimmed_to_fit_one_message() -> None:
    pair = Pair()
    for _ in range(3):  # three updates of 10,000 payments each: about 0.5 MB apiece
        pair.request(pair.alice, *([Pay(0, 1)] * 10_000))
        pair.deliver_all()
    m = pair.alice.m
    msg = _reestablish_of(pair.alice)
    assert 1 <= len(msg.recent) < 3
    assert msg.recent[-1] == m.latest
    assert len(wire.encode_message(msg)) <= wire.MAX_MESSAGE


def test_a_towers_state_is_adopted_with_the_positions_it_kept() -> None:
    """A restored backup whose book changed since the copy: the tower's newer state is adopted
    only with the open positions the tower kept (checked against the commitment); without
    them, or with others, nothing changes (before, the node then counted itself current at
    its old version)."""
    pair = Pair()
    pair.request(pair.bob, OpenOption(_option(1), premium=1_000))
    pair.deliver_all()
    old = _backup(pair, pair.alice)
    pair.request(pair.bob, OpenOption(_option(2, NOW + 8 * DAY), premium=2_000))
    pair.request(pair.alice, Pay(0, 7))
    pair.deliver_all()
    newest, book = pair.alice.m.latest.signed, pair.alice.m.book.snapshot()
    pair.alice.machine = old  # restored from the copy; the peer is away
    before = (old.latest, old.book.snapshot())
    old.synced = False

    with pytest.raises(StateMismatch):  # the copy's own book is not the newer state's
        old.handle(ChainStateSeen(newest, before[1]), now=NOW)
    assert (old.latest, old.book.snapshot()) == before and not old.synced

    actions = old.handle(ChainStateSeen(newest), now=NOW)  # no positions given
    assert [type(a) for a in actions] == [DataLossRecovered]
    assert (old.latest, old.book.snapshot()) == before

    actions = old.handle(ChainStateSeen(newest, book), now=NOW)
    assert old.state == newest.state and old.book.snapshot() == book
    (stored,) = [a for a in actions if isinstance(a, PersistState)]
    assert stored.update.signed == newest and stored.book == book
    assert old.synced
