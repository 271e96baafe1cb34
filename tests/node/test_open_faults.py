"""A link cut around each message of the channel opening (THREATS 4.3 for the set-up).

The kill -9 matrix once failed its first step: the opener's ``open_channel`` ran into its
``open_timeout`` (``TooSlowError``). A proposal lost with a broken link was never sent again: the
reestablish that repairs lost updates on a new link needs a fully signed version 0, which the
responder that never saw the proposal does not have (``channels/runtime/opening.py``). Here the
link is cut just BEFORE the ``OpenProposal`` or the ``OpenAccept`` leaves (the message is lost) or
just after it is queued; the open must complete, and well before its timeout.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from channels.core.messages import OpenAccept, OpenProposal
from channels.testing.faults import cut_link_on_send

from ._helpers import FAST, desk, open_channel
from .conftest import Desks

#: Shorter than the test's own limit, so a lost proposal fails as the open's own timeout.
SETTINGS = dataclasses.replace(FAST, open_timeout=20.0)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("kind", "sender"), [(OpenProposal, "alice"), (OpenAccept, "bob")])
async def test_open_survives_a_cut_link(
    desks: Desks, tmp_path: Path, kind: type, sender: str, when: str
) -> None:
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, settings=SETTINGS) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", settings=SETTINGS) as alice,
        ):
            fired = trio.Event()
            cut_link_on_send(alice if sender == "alice" else bob, kind, when, fired)
            ch, bch = await open_channel(alice, bob, desks)
            assert fired.is_set()
            assert ch.state == bch.state and ch.state.deposited == bch.state.deposited
            # Liveness over the new link.
            done = await ch.pay(5)
            await bch.wait_version(done.version)
