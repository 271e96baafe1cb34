"""Per-peer limits: a peer that floods garbage or messages is cut off; the node keeps serving."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trio

from channels.core.model import Address
from channels.transport import ConnectionClosed, Prologue, connect

from ._helpers import FAST, desk, open_channel, open_door
from .conftest import Desks


async def test_peer_sending_too_many_bad_messages_is_dropped(desks: Desks, tmp_path: Path) -> None:
    strict = dataclasses.replace(FAST, max_bad_messages=5)
    with trio.fail_after(60):
        async with desk(
            desks,
            desks.bob,
            tmp_path / "b.sqlite",
            listen=0,
            settings=strict,
            trust=open_door(desks, desks.bob),
        ) as bob:
            assert bob.listen_port is not None
            prologue = Prologue(desks.deployment.chain_id, Address(desks.adjudicator))
            # A stranger (Bob's bot admits any key, to hear channel proposals) sends garbage.
            mallory = await connect(
                "127.0.0.1", bob.listen_port, desks.oracle, desks.bob.address, prologue, timeout=5
            )
            closed = False
            for _ in range(50):
                try:
                    await mallory.send(b"\x93\x01\x63garbage")
                except ConnectionClosed:
                    closed = True
                    break
                await trio.sleep(0.01)
            if not closed:
                with trio.fail_after(5):
                    try:
                        await mallory.receive()
                    except ConnectionClosed:
                        closed = True
            assert closed
            assert bob.bad_messages > 5
            # Bob still serves honest peers.
            async with desk(desks, desks.alice, tmp_path / "a.sqlite") as alice:
                ch, bch = await open_channel(alice, bob, desks)
                done = await ch.pay(1)
                await bch.wait_version(done.version)
