"""A trade that races a lost connection waits for the resynchronisation; it is never refused
with "the channel is resynchronising".

``Channel.pay`` waits while the channel resynchronises, but it looked before taking the
channel's lock: a link loss queued on that lock (behind a step in progress) reached the machine
between the look and the trade's own step, and the trade failed with ``IllegalCall`` (a CLI
``pay`` exited 3 instead of waiting; tests/cli/test_operator.py failed so once in make test).

The race is made certain with a signer that waits for its human's approval (a blocking signer
runs in a worker thread while the step holds the lock): Alice's first payment waits for approval
while Bob drops the link and Alice's second payment starts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import trio
import trio.testing

from channels import open_node
from channels.core.model import Address
from channels.core.signing import LocalSigner
from channels.runtime.errors import UpdateRefusedError

from ._helpers import FAST, desk, desk_partners, open_channel
from .conftest import Desks


class ApprovingSigner:
    """Alice's key behind an approval step (a hardware wallet's button): each signature waits
    until ``approve`` is set. Blocking, so the node calls it from a worker thread."""

    blocking = True

    def __init__(self, key: LocalSigner) -> None:
        self._key = key
        self.approve = threading.Event()
        self.approve.set()

    @property
    def address(self) -> Address:
        return self._key.address

    def sign_digest(self, digest: bytes) -> bytes:
        if not self.approve.wait(30):
            raise TimeoutError("no approval")
        return self._key.sign_digest(digest)


async def test_a_trade_racing_a_link_loss_waits_for_the_resync(
    desks: Desks, tmp_path: Path
) -> None:
    signer = ApprovingSigner(desks.alice)
    with trio.fail_after(60):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0) as bob,
            open_node(
                signer=signer,
                transaction_key=desks.alice.secret,
                store=tmp_path / "a.sqlite",
                chain=desks.url,
                adjudicator=desks.adjudicator,
                settings=FAST,
                trust=desk_partners(desks, desks.alice),
            ) as alice,
        ):
            ch, bch = await open_channel(alice, bob, desks)
            outcomes: dict[str, Any] = {}

            async def pay(name: str, amount: int) -> None:
                try:
                    outcomes[name] = await ch.pay(amount)
                except UpdateRefusedError as exc:
                    outcomes[name] = exc

            signer.approve.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pay, "first", 1)  # its step waits for approval, locked
                await trio.testing.wait_all_tasks_blocked()
                await bob.disconnect(desks.alice.address)
                await trio.testing.wait_all_tasks_blocked()  # the loss waits for the lock
                nursery.start_soon(pay, "second", 2)  # looks before the loss is applied
                await trio.testing.wait_all_tasks_blocked()
                signer.approve.set()
            # The first proposal went out on a dead link: refused once the resync shows Bob
            # never signed it. The second waited for the resync and went through.
            assert isinstance(outcomes["first"], UpdateRefusedError), outcomes
            second = outcomes["second"]
            assert not isinstance(second, Exception), outcomes
            await bch.wait_version(second.version)
            assert ch.state == bch.state
