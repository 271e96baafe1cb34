"""The caps on connections (issue 12: 1,011 authenticated strangers held a desk's connections
until the control socket stopped answering and the real peer could not reconnect), over real TCP
and anvil against desks run from their TOML config.

One identity holds at most ``max_links_per_peer`` authenticated connections: a declared peer
dialling more gets the extra ones refused at the handshake, while its first link keeps trading and
another peer still gets in. A flood of strangers' dials, silent ones holding every handshake
slot among them, leaves the desk's control socket answering promptly and a declared peer opening
and paying.
"""

from __future__ import annotations

import os

import pytest
import trio

from channels.core.model import Address
from channels.core.node_events import PeerConnected, PeerLost
from channels.core.secure_session import TransportError
from channels.core.signing import LocalSigner
from channels.transport import Prologue, connect
from tests.partners import partners

from ._desk_process import desk_process, desk_toml, funded_key, served_desk, short_dir
from ._helpers import PERIOD, desk
from .conftest import Desks

DEPOSIT = 1_000_000


def prologue(desks: Desks) -> Prologue:
    return Prologue(desks.deployment.chain_id, Address(desks.adjudicator))


async def test_a_peer_over_its_link_cap_is_refused_while_its_first_link_trades(
    desks: Desks,
) -> None:
    dora = await funded_key(desks, 10**18, DEPOSIT)
    peers = {"alice": desks.alice.address, "bob": desks.bob.address}
    alice_trust = partners(dora.address, assets=[desks.token], oracles=[desks.oracle.address])
    with short_dir() as workdir, trio.fail_after(90):
        config = desk_toml(workdir, desks, peers=peers, node_lines="max_links_per_peer = 1\n")
        async with (
            served_desk(config, dora) as dora_desk,
            desk(desks, desks.alice, workdir / "a.sqlite", trust=alice_trust) as alice,
        ):
            ch = await alice.open_channel(
                peer=("127.0.0.1", dora_desk.listen_port),
                peer_address=dora.address,
                asset=desks.token,
                deposit=DEPOSIT,
                peer_deposit=DEPOSIT,
                oracle=desks.oracle.address,
                challenge_period=PERIOD,
            )
            assert (await dora_desk.call("ping"))["connections"]["open"] == 1
            async with alice.events() as events:
                # Alice's key dials ten more links: each is refused at the handshake, and none
                # replaces the link her node holds.
                for _ in range(10):
                    with pytest.raises(TransportError):
                        await connect(
                            "127.0.0.1", dora_desk.listen_port, desks.alice, dora.address,
                            prologue(desks), timeout=5,
                        )  # fmt: skip
                # Her first link still trades: a payment reaches Dora's desk.
                done = await ch.pay(1_000)
                with trio.fail_after(10):
                    while (await dora_desk.call("status"))[0]["version"] != done.version:
                        await trio.sleep(0.02)
                flaps = []
                while True:
                    try:
                        event = events.receive_nowait()
                    except trio.WouldBlock:
                        break
                    if isinstance(event, PeerConnected | PeerLost):
                        flaps.append(event)
                assert flaps == [] and alice.is_connected(dora.address)
            connections = (await dora_desk.call("ping"))["connections"]
            assert connections == {"open": 1, "refused": 10}
            # Another declared peer still gets in, under its own cap.
            bob_link = await connect(
                "127.0.0.1", dora_desk.listen_port, desks.bob, dora.address, prologue(desks),
                timeout=5,
            )  # fmt: skip
            async with bob_link:
                with trio.fail_after(5):
                    while (await dora_desk.call("ping"))["connections"]["open"] != 2:
                        await trio.sleep(0.02)
            # and a stranger still does not.
            with pytest.raises(TransportError):
                await connect(
                    "127.0.0.1", dora_desk.listen_port, LocalSigner.generate(), dora.address,
                    prologue(desks), timeout=5,
                )  # fmt: skip


#: The flood: at least this many dials from strangers, this many at once, on top of more silent
#: connections than the desk has handshake slots (64) held open from the start.
STRANGER_DIALS = 300
AT_ONCE = 32
SILENT_HELD = 100
#: What "promptly" means for the control socket: a status answer within this, every time.
PROMPT = 1.0


async def test_a_flood_of_strangers_leaves_the_control_socket_and_a_declared_peer_served(
    desks: Desks,
) -> None:
    """A real ``channels node`` desk (its own process, so the attackers do not share its event
    loop) under a flood of strangers: silent connections, more than its 64 handshake slots and
    each opened again as soon as the desk closes it (before the desk closed the oldest for a
    newcomer, these kept every peer out), strangers that complete the handshake with keys nobody
    declared, and garbage. Meanwhile its control socket answers ``status`` within a second every
    time, its open file descriptors stay bounded, and a declared peer opens a channel and pays."""
    erin = await funded_key(desks, 10**18, DEPOSIT)
    trust = partners(erin.address, assets=[desks.token], oracles=[desks.oracle.address])
    with short_dir() as workdir, trio.fail_after(90):
        config = desk_toml(workdir, desks, peers={"alice": desks.alice.address})
        async with (
            desk_process(config, erin) as erin_desk,
            desk(desks, desks.alice, workdir / "a.sqlite", trust=trust) as alice,
        ):
            port, pid = erin_desk.listen_port, erin_desk.pid
            assert pid is not None
            latencies: list[float] = []
            descriptors: list[int] = []
            made = {"handshake": 0, "silent": 0, "garbage": 0}
            outcome = {"admitted": 0, "refused": 0, "silent_reopened": 0}
            alice_done, flood_done = trio.Event(), trio.Event()
            version = None

            async def silent(hold: float) -> None:
                """A stranger that connects and says nothing, until the desk closes it."""
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                async with stream:
                    with trio.move_on_after(hold):
                        try:
                            await stream.receive_some()
                        except trio.BrokenResourceError:
                            pass

            async def hold_the_door() -> None:
                """A silent connection kept open: opened again each time the desk closes it."""
                while True:
                    await silent(30)
                    outcome["silent_reopened"] += 1

            async def dial(number: int) -> None:
                kind = ("handshake", "silent", "garbage")[number % 3]
                made[kind] += 1
                if kind == "silent":
                    await silent(1)
                elif kind == "garbage":
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    async with stream:
                        await stream.send_all(os.urandom(200))
                else:
                    try:
                        await connect(
                            "127.0.0.1", port, LocalSigner.generate(), erin.address,
                            prologue(desks), timeout=10,
                        )  # fmt: skip
                        outcome["admitted"] += 1
                    except TransportError:
                        outcome["refused"] += 1

            async def flood() -> None:
                slots = trio.Semaphore(AT_ONCE)
                async with trio.open_nursery() as held:
                    for _ in range(SILENT_HELD):
                        held.start_soon(hold_the_door)
                    async with trio.open_nursery() as dialling:
                        number = 0
                        while number < STRANGER_DIALS or not alice_done.is_set():
                            await slots.acquire()

                            async def one(number: int) -> None:
                                try:
                                    await dial(number)
                                finally:
                                    slots.release()

                            dialling.start_soon(one, number)
                            number += 1
                    held.cancel_scope.cancel()  # every dial has ended
                flood_done.set()

            async def watch_the_desk() -> None:
                while not flood_done.is_set():
                    start = trio.current_time()
                    rows = await erin_desk.call("status")
                    latencies.append(trio.current_time() - start)
                    assert isinstance(rows, list)
                    descriptors.append(len(os.listdir(f"/proc/{pid}/fd")))
                    await trio.sleep(0.05)

            async def alice_opens_and_pays() -> None:
                nonlocal version
                while sum(made.values()) < 50:  # the flood is well under way
                    await trio.sleep(0.01)
                ch = await alice.open_channel(
                    peer=("127.0.0.1", port),
                    peer_address=erin.address,
                    asset=desks.token,
                    deposit=DEPOSIT,
                    peer_deposit=DEPOSIT,
                    oracle=desks.oracle.address,
                    challenge_period=PERIOD,
                )
                version = (await ch.pay(1_000)).version
                alice_done.set()

            baseline = len(os.listdir(f"/proc/{pid}/fd"))
            began = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                nursery.start_soon(watch_the_desk)
                nursery.start_soon(alice_opens_and_pays)
            took = trio.current_time() - began
            # Figures for the record (pytest -s shows them).
            print(
                f"flood: {made}, {outcome} in {took:.1f} s; status answered {len(latencies)} "
                f"times, slowest {max(latencies):.3f} s; desk fds {baseline}, at most "
                f"{max(descriptors)}; desk counts {(await erin_desk.call('ping'))['connections']}"
            )
            assert sum(made.values()) >= STRANGER_DIALS
            assert outcome["admitted"] == 0 and outcome["refused"] == made["handshake"]
            assert max(latencies) < PROMPT, sorted(latencies)[-5:]
            # Bounded by its 64 handshake slots, not by the strangers: plus Alice's link, the
            # control connection and the chain client's connections.
            assert max(descriptors) <= baseline + 64 + 16, (baseline, max(descriptors))
            # The desk shows Alice's payment.
            (row,) = await erin_desk.call("status")
            assert row["version"] == version and row["peer_connected"]
