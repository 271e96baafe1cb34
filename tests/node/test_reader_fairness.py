"""A peer's burst of messages does not keep the rest of the node waiting.

The locks on the update path do not visit the scheduler when they are free
(channels/transport/fastlock.py), so a link's reader handling buffered messages would never yield
if nothing else made it; one socket read can carry hundreds of small messages. The attack: the
real counterparty's key (Alice's node down) sends 2,000 messages in ONE write. While Bob's reader
works through them, another task of Bob's process (standing for the watcher, the control socket
and the other links) must keep getting turns: between two of its turns the reader handles at most
``2 * YIELD_EVERY`` messages (trio may run the reader last in one batch and first in the next).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import trio

from channels.core.messages import Accept
from channels.core.model import Address, ChannelId, Version
from channels.core.wire import encode_message
from channels.runtime.links import YIELD_EVERY
from channels.transport import Prologue, connect

from ._helpers import desk, open_channel, wait_until

BURST = 2_000


async def test_a_burst_of_messages_leaves_other_tasks_their_turns(desks, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(60):
        async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob:
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                await open_channel(alice, bob, desks)
            await bob.wait_connected(desks.alice.address, connected=False)
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            link = await connect(
                "127.0.0.1", bob.listen_port or 0, desks.alice, desks.bob.address, prologue
            )
            sig = desks.alice.sign_digest(bytes(32))
            # Accepts for channels Bob does not have: each is read, decoded, counted, dropped.
            burst = [
                encode_message(Accept(ChannelId(os.urandom(32)), Version(i), sig))
                for i in range(BURST)
            ]
            count0 = bob.unknown_channel_messages
            seen: list[int] = []

            async def other_task() -> None:
                while bob.unknown_channel_messages < count0 + BURST:
                    seen.append(bob.unknown_channel_messages - count0)
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(other_task)
                await link.send_many(burst)
                await wait_until(lambda: bob.unknown_channel_messages == count0 + BURST, 30)
            seen.append(BURST)
            steps = [b - a for a, b in itertools.pairwise(seen)]
            most = max(steps)
            assert most <= 2 * YIELD_EVERY, f"the reader handled {most} messages in one turn"
            await link.aclose()
