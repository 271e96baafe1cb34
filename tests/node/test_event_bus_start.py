"""The node's event bus while the node starts (channels/runtime/eventbus.py).

What a node emits while ``open_node`` starts it (an alarm about a restored store, say) is held
and delivered in order once the caller of ``open_node`` has had its turn, so a subscriber added
as soon as ``open_node`` returns misses none of it, whichever task emitted it and however fast
the store committed (tests/crash/test_data_loss.py relies on this for DataLossRecovered).
"""

from __future__ import annotations

import trio

from channels.core.node_events import Alarm
from channels.runtime.eventbus import MAX_HELD, EventBus, EventsLost


async def test_held_events_reach_a_subscriber_added_before_release_in_order() -> None:
    bus = EventBus(held=True)
    for i in range(3):
        bus.emit(Alarm(None, "Test", f"start-up {i}"))
    async with bus.subscribe() as stream, trio.open_nursery() as nursery:
        nursery.start_soon(bus.release_soon)  # as the node starts it: runs after our turn
        bus.emit(Alarm(None, "Test", "still starting"))
        got = [await stream.receive() for _ in range(4)]
        bus.emit(Alarm(None, "Test", "after"))
        got.append(await stream.receive())
    assert [e.detail for e in got if isinstance(e, Alarm)] == [
        "start-up 0",
        "start-up 1",
        "start-up 2",
        "still starting",
        "after",
    ]


async def test_a_held_bus_is_bounded_and_says_what_it_lost() -> None:
    bus = EventBus(held=True)
    for i in range(MAX_HELD + 5):
        bus.emit(Alarm(None, "Test", str(i)))
    assert bus.events_lost == 5
    async with bus.subscribe(buffer=MAX_HELD + 1) as stream:
        bus.release()
        assert stream.statistics().current_buffer_used == MAX_HELD + 1
        first = await stream.receive()
        assert isinstance(first, EventsLost) and first.count == 5
        second = await stream.receive()
        assert isinstance(second, Alarm) and second.detail == "0"
