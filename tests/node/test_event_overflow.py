"""A subscriber that falls behind is told how many events it lost, and the node counts them.
Before: a full buffer dropped events silently."""

from __future__ import annotations

from pathlib import Path

import trio

from channels.runtime.eventbus import EventsLost

from ._helpers import desk, open_channel
from .conftest import Desks


async def test_slow_subscriber_gets_an_overflow_event(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
                ch, _bch = await open_channel(alice, bob, desks)
                async with alice.events(buffer=2) as slow:
                    for _ in range(10):
                        await ch.pay(1)
                    assert alice.events_lost >= 8
                    for _ in range(2):  # the buffer held the first two
                        assert not isinstance(slow.receive_nowait(), EventsLost)
                    await ch.pay(1)  # the next delivery is preceded by the count
                    lost = slow.receive_nowait()
                    assert isinstance(lost, EventsLost)
                    assert lost.count == alice.events_lost
                    assert not isinstance(slow.receive_nowait(), EventsLost)
