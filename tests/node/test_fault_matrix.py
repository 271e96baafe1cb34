"""Disconnects before and after each message type (THREATS 4.3, CLN's dev-disconnect directives).

For every message a desk sends during an update (the leader's Proposal, the follower's Accept and
UpdateRequest, a Reject, and the Reestablish of the resync itself) the link is cut either just
BEFORE the message leaves (it is lost: CLN's ``-``) or just AFTER it was written (``+``). Then:
the caller's update completes or is refused (never hangs), the nodes reconnect and agree on one
state, and trading works both ways again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.core.consent import UpdateView
from channels.core.messages import Accept, Proposal, Reestablish, Reject, UpdateRequest
from channels.core.model import State
from channels.core.options import Pay
from channels.runtime.node import UpdateRefusedError
from channels.testing.faults import cut_link_on_send, tap_received

from ._helpers import desk, linked, open_channel, wait_until
from .conftest import Desks

CASES = [
    # (message type, which desk sends it, how the update is started)
    (Proposal, "alice", "alice pays"),
    (Accept, "bob", "alice pays"),
    (UpdateRequest, "bob", "bob pays"),
    (Proposal, "alice", "bob pays"),
    (Accept, "bob", "bob pays"),
    (Reject, "bob", "alice overreaches"),
    (Reestablish, "alice", "alice pays"),
    (Reestablish, "bob", "alice pays"),
]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(
    ("kind", "sender", "start"), CASES, ids=lambda c: getattr(c, "__name__", c)
)
async def test_disconnect_around_each_message(
    desks: Desks, tmp_path: Path, kind: type, sender: str, start: str, when: str
) -> None:
    def refuse_big(view: UpdateView) -> str | None:
        big = any(isinstance(t, Pay) and t.amount > 500_000 for t in view.trades)
        return "too big" if big else None

    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, policy=refuse_big) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite") as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks)
            fired = trio.Event()
            cut_link_on_send(alice if sender == "alice" else bob, kind, when, fired)
            received: list[type] = []
            receiver = bob if sender == "alice" else alice
            tap_received(receiver, lambda _peer, message: received.append(type(message)))
            if kind is Reestablish:
                # The resync's own message: cut the link once to start a resync.
                await alice.disconnect(desks.bob.address)
            outcome: object = None
            try:
                if start == "alice pays":
                    outcome = await ch.pay(100)
                elif start == "bob pays":
                    outcome = await bch.pay(100)
                else:
                    outcome = await ch.pay(900_000)  # Bob's policy refuses it
            except UpdateRefusedError as exc:
                outcome = exc
            assert isinstance(outcome, State | UpdateRefusedError), outcome
            await wait_until(fired.is_set)
            await linked(alice, ch, bob, bch)
            await wait_until(lambda: ch.state == bch.state and not ch.in_flight)
            # The cut was where it was asked for: a message cut "after" arrived, one cut
            # "before" did not (a Reestablish goes again on the new link anyway).
            if when == "after":
                assert kind in received, received
            elif kind is not Reestablish:
                assert kind not in received, received
            # Liveness: both ways again.
            done = await ch.pay(1)
            await bch.wait_version(done.version)
            done = await bch.pay(2)
            await ch.wait_version(done.version)
            assert ch.state == bch.state
            assert sum(ch.state.balances) + ch.state.locked == 2 * 10_000_000
