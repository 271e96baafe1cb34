"""The version lease is backed up to the desk's watchtowers and taken back at every start, so a
store restored from an old backup never signs a second state of a version it signed since
(docs/PROTOCOL.md section 7, docs/THREATS.md).

The flaw it closes: a restored store's lease is the backup's. The node may since have signed
proposals above it (the peer holds those signatures); restarted from the backup it would resume
above the old lease and sign another state of such a version, and the peer would countersign
whichever of the two suits it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from channels import open_node
from channels.core.messages import Message, Proposal
from channels.core.model import Address, Amount
from channels.core.options import Pay
from channels.core.protocol import MAX_VERSION_SKIP
from channels.core.quotes import QuoteMessage
from channels.core.signing import LocalSigner
from channels.core.wire import encode_state
from channels.defence.towerlease import RUN_ID_BYTES
from channels.defence.towerproto import TowerReplyError
from channels.defence.watchtower import Watchtower
from channels.runtime.errors import UpdateRefusedError
from channels.runtime.node import Node
from channels.runtime.towerclient import TowerEndpoint
from channels.store.lease import LEASE_SPAN
from channels.testing.faults import tap_received
from tests.crash.harness import free_port
from tests.partners import partners

from .conftest import FAST, Desks, desk
from .towers import (
    alice_with,
    ask_tower,
    backed_up,
    endpoint_of,
    lease_at,
    open_channel_to,
    restore_store,
    tower_for,
)

#: Updates signed after the backup was taken: more than one lease's worth, so the backup's lease
#: is far behind and the store renews (and backs up) its lease several times on the way.
SIGNED_SINCE_BACKUP = LEASE_SPAN + 20


@asynccontextmanager
async def bob_refusing_his_payments(desks: Desks, path: Path) -> AsyncIterator[Node]:
    """Bob takes Alice's payments and refuses every update in which he pays (no decide hook)."""
    trust = partners(
        desks.alice.address, assets=[desks.token], oracles=[desks.oracle.address], decide=False
    )
    async with open_node(
        signer=desks.bob,
        store=path,
        chain=desks.url,
        adjudicator=desks.adjudicator,
        listen=("127.0.0.1", 0),
        settings=FAST,
        trust=trust,
    ) as node:
        yield node


async def test_restored_backup_resumes_above_every_version_it_signed(
    desks: Desks, tmp_path: Path
) -> None:
    store = tmp_path / "a.sqlite"
    #: Every state Alice's proposals carried, by version, as Bob received them.
    proposed: dict[int, set[bytes]] = {}

    def record(peer: Address, message: Message | QuoteMessage) -> None:
        if peer == desks.alice.address and isinstance(message, Proposal):
            state = message.state
            proposed.setdefault(state.version, set()).add(encode_state(state))

    with trio.fail_after(300):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            async with bob_refusing_his_payments(desks, tmp_path / "b.sqlite") as bob:
                tap_received(bob, record)
                async with alice_with(desks, store, tower) as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    cid = ch.id
                    await ch.pay(1)
                    await backed_up(alice, cid, ch.version)
                shutil.copy2(store, tmp_path / "backup.sqlite")  # the backup (a clean copy)

                async with alice_with(desks, store, tower) as alice:
                    ch = alice.channel(cid)
                    for _ in range(SIGNED_SINCE_BACKUP):
                        await ch.pay(1)
                    # A proposal Bob refuses: its version is burned, Alice's signature on it is
                    # Bob's to keep.
                    with pytest.raises(UpdateRefusedError):
                        await ch.trade(Pay(1, Amount(10)))
                    burned = ch.highest_signed
                    assert burned == ch.version + 1
                    latest = ch.version
                    await backed_up(alice, cid, latest)
                assert max(proposed) == burned
                signed_before = set(proposed)

                # Alice's disk is lost; her store comes back from the backup.
                restore_store(tmp_path / "backup.sqlite", store)
                async with alice_with(desks, store, tower) as alice:
                    ch = alice.channel(cid)
                    await ch.wait_version(latest)
                    after = await ch.pay(1)

    # Alice's first signature after the restore is above every version she signed before it,
    # and no version carries two different states signed by her.
    assert after.version > max(signed_before), (after.version, burned)
    assert all(len(states) == 1 for states in proposed.values()), [
        v for v, states in proposed.items() if len(states) > 1
    ]


async def test_tower_keeps_the_highest_lease_per_client_and_channel(
    desks: Desks, tmp_path: Path
) -> None:
    """Over real TCP: the tower keeps the highest figure, answers a lower one with the higher,
    keeps each client's figures apart, and refuses a figure out of range with a clear error."""
    carol = LocalSigner.generate()
    cid = bytes(range(32))
    with trio.fail_after(60):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            tower.clients.add(carol.address)

            async def call(signer: LocalSigner, request: dict[str, object]) -> dict[str, Any]:
                return await ask_tower(desks, signer, tower, request)

            async def lease_of(signer: LocalSigner) -> int:
                reply = await call(signer, {"t": "leases", "channels": [cid]})
                (figure,) = reply["leases"]
                return int(figure)

            assert await lease_of(desks.alice) == -1
            reply = await call(desks.alice, {"t": "lease", "channel": cid, "up_to": 600})
            assert reply["up_to"] == 600
            reply = await call(desks.alice, {"t": "lease", "channel": cid, "up_to": 300})
            assert reply["up_to"] == 600  # a lower figure never lowers it
            assert await lease_of(desks.alice) == 600
            assert await lease_of(carol) == -1  # another client's figure is its own
            for out_of_range in ((1 << 64) - 1, -5, "600"):
                with pytest.raises(TowerReplyError, match="lease figure"):
                    await call(desks.alice, {"t": "lease", "channel": cid, "up_to": out_of_range})
            with pytest.raises(TowerReplyError, match="32-byte"):
                await call(desks.alice, {"t": "lease", "channel": b"short", "up_to": 5})
            with pytest.raises(TowerReplyError, match="at most"):
                await call(desks.alice, {"t": "leases", "channels": [cid] * 10_001})
            assert await lease_of(desks.alice) == 600
        # Durable: a tower restarted on the same file answers the same figure.
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            assert await lease_of(desks.alice) == 600


async def test_a_tower_down_at_the_start_is_said_and_its_lease_taken_when_it_answers(
    desks: Desks, tmp_path: Path
) -> None:
    """The restored store starts while its only tower is down: the node says so (signing would
    resume above the local lease only), and signs nothing until the tower acks a lease; the
    tower's answer carries its higher figure, so the first signature is still above every
    version signed before."""
    store = tmp_path / "a.sqlite"
    tower_key, port = LocalSigner.generate(), free_port()
    endpoint = TowerEndpoint("127.0.0.1", port, tower_key.address)
    proposed: dict[int, set[bytes]] = {}

    def record(peer: Address, message: Message | QuoteMessage) -> None:
        if peer == desks.alice.address and isinstance(message, Proposal):
            proposed.setdefault(message.state.version, set()).add(encode_state(message.state))

    def the_tower() -> AbstractAsyncContextManager[Watchtower]:
        return tower_for(desks, tmp_path / "tower.sqlite", key=tower_key, port=port)

    def alice() -> AbstractAsyncContextManager[Node]:
        return alice_with(desks, store, endpoint)

    with trio.fail_after(300):
        async with bob_refusing_his_payments(desks, tmp_path / "b.sqlite") as bob:
            tap_received(bob, record)
            async with the_tower():
                async with alice() as node:
                    ch = await open_channel_to(node, bob, desks)
                    cid = ch.id
                    await backed_up(node, cid, ch.version)
                shutil.copy2(store, tmp_path / "backup.sqlite")
                async with alice() as node:
                    ch = node.channel(cid)
                    for _ in range(SIGNED_SINCE_BACKUP):
                        await ch.pay(1)
                    with pytest.raises(UpdateRefusedError):
                        await ch.trade(Pay(1, Amount(10)))
                    latest = ch.version
                    await backed_up(node, cid, latest)
            signed_before = set(proposed)
            restore_store(tmp_path / "backup.sqlite", store)
            async with alice() as node:  # the tower is down
                ch = node.channel(cid)
                await ch.wait_version(latest)  # Bob's reestablish brings the state current
                while not node.towers.leases.ready.is_set():
                    await trio.sleep(0.05)
                assert node.towers.leases.not_taken_from == [endpoint]
                async with the_tower():
                    after = await ch.pay(1)
                assert node.towers.leases.not_taken_from == []

    assert after.version > max(signed_before), after.version
    assert all(len(states) == 1 for states in proposed.values())


async def test_a_proposal_far_ahead_does_not_raise_the_lease_backed_up(
    desks: Desks, tmp_path: Path
) -> None:
    """The peer's proposal names a version far past what the follower signs: the follower
    refuses it (VersionGap), and the lease it backs up to its tower stays within the skip the
    machine allows, so the peer cannot make it burn the channel's versions."""
    with trio.fail_after(120):
        async with tower_for(desks, tmp_path / "tower.sqlite", client=desks.bob) as tower:
            towers = [endpoint_of(tower)]
            async with desk(
                desks, desks.bob, tmp_path / "b.sqlite", listen=True, watchtowers=towers
            ) as bob:
                async with alice_with(desks, tmp_path / "a.sqlite") as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    await ch.pay(1)
                    latest = ch.version
                    # Alice's next proposal skips to a version far past MAX_VERSION_SKIP.
                    await alice.towers.runtimes[ch.id].raise_highest_signed(10**12)
                    with pytest.raises(UpdateRefusedError, match="skips too far"):
                        await ch.pay(1)
                    request = {"t": "leases", "channels": [ch.id]}
                    figure = (await ask_tower(desks, desks.bob, tower, request))["leases"][0]
    assert 0 <= figure <= latest + MAX_VERSION_SKIP + LEASE_SPAN, figure


async def test_only_the_run_that_set_a_figure_cuts_it_back(desks: Desks, tmp_path: Path) -> None:
    """Over real TCP: an exact lease lowers the figure only for the run that last sent or read
    it; a late exact message of an earlier run is refused and the higher figure stays; a client
    lowers only its own figures; an exact message without a run, or a malformed run, is
    refused with a clear error."""
    carol = LocalSigner.generate()
    cid = bytes(range(32))
    first, second, third = (bytes([n]) * RUN_ID_BYTES for n in (1, 2, 3))
    with trio.fail_after(60):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            tower.clients.add(carol.address)

            async def lease(signer: LocalSigner, up_to: object, **more: object) -> int:
                request = {"t": "lease", "channel": cid, "up_to": up_to, **more}
                return int((await ask_tower(desks, signer, tower, request))["up_to"])

            assert await lease(desks.alice, 600, run=first) == 600
            assert await lease(desks.alice, 10, run=first, exact=True) == 10  # cut back
            assert await lease_at(desks, desks.alice, tower, cid) == 10
            assert await lease(desks.alice, 600, run=first) == 600
            # A later run's lease claims the figure (even one that does not raise it): the
            # earlier run's exact message, arriving late, no longer lowers it.
            assert await lease(desks.alice, 300, run=second) == 600
            with pytest.raises(TowerReplyError, match="another run"):
                await lease(desks.alice, 10, run=first, exact=True)
            assert await lease_at(desks, desks.alice, tower, cid) == 600
            # So does a later run's read (the start's take-back).
            assert await lease_at(desks, desks.alice, tower, cid, run=third) == 600
            with pytest.raises(TowerReplyError, match="another run"):
                await lease(desks.alice, 10, run=second, exact=True)
            assert await lease(desks.alice, 700, run=third, exact=True) == 700  # may raise too
            assert await lease(desks.alice, 50, run=third, exact=True) == 50
            # Figures are per client: Carol naming Alice's channel and run sets her own only.
            assert await lease(carol, 900, run=third) == 900
            assert await lease(carol, 1, run=third, exact=True) == 1
            assert await lease_at(desks, desks.alice, tower, cid) == 50
            for bad in ({"exact": True}, {"exact": 1, "run": third}, {"run": b"short"}):
                with pytest.raises(TowerReplyError, match="run"):
                    await lease(desks.alice, 5, **bad)
            with pytest.raises(TowerReplyError, match="run"):
                await lease_at(desks, desks.alice, tower, cid, run=b"short")
            assert await lease_at(desks, desks.alice, tower, cid) == 50


#: Clean restarts in a row on a quiet channel: 20 leases burned would skip past MAX_VERSION_SKIP.
CLEAN_RESTARTS = 20


async def test_clean_restarts_with_a_tower_burn_no_versions(desks: Desks, tmp_path: Path) -> None:
    """A clean shutdown cuts the lease back to the last version signed, locally and at the
    tower: a desk restarted many times on a quiet channel resumes right above its last
    signature, not above a lease per restart (which would in time skip past what the peer
    accepts)."""
    assert CLEAN_RESTARTS * LEASE_SPAN > MAX_VERSION_SKIP
    store = tmp_path / "a.sqlite"
    with trio.fail_after(300):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                async with alice_with(desks, store, tower) as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    cid = ch.id
                    for _ in range(3):
                        await ch.pay(1)
                    last = ch.version
                    assert ch.highest_signed == last
                    # The tower holds a lease well above the last signature.
                    while alice.towers.leases.acked(cid) <= last:
                        await trio.sleep(0.05)
                # Cut back at the tower too.
                assert await lease_at(desks, desks.alice, tower, cid) == last
                for _ in range(CLEAN_RESTARTS):
                    async with alice_with(desks, store, tower) as alice:
                        await alice.towers.leases.ready.wait()  # the start's take-back is done
                        assert alice.channel(cid).highest_signed == last
                async with alice_with(desks, store, tower) as alice:
                    after = await alice.channel(cid).pay(1)
    assert after.version - last <= 2, (last, after.version)


async def test_restarts_that_each_burn_a_version_never_block_the_channel(
    desks: Desks, tmp_path: Path
) -> None:
    """Each run signs one proposal the peer refuses (its version is burned, no new fully signed
    state) and shuts down cleanly. The tower is told the exact last version each time, so the
    versions skipped since the last fully signed state grow by one per run, not by a lease:
    the peer still takes the next payment (it refuses a skip above MAX_VERSION_SKIP)."""
    store = tmp_path / "a.sqlite"
    with trio.fail_after(300):
        async with tower_for(desks, tmp_path / "tower.sqlite") as tower:
            async with bob_refusing_his_payments(desks, tmp_path / "b.sqlite") as bob:
                async with alice_with(desks, store, tower) as alice:
                    ch = await open_channel_to(alice, bob, desks)
                    cid = ch.id
                    await ch.pay(1)
                    last = ch.version
                for _ in range(CLEAN_RESTARTS):
                    async with alice_with(desks, store, tower) as alice:
                        with pytest.raises(UpdateRefusedError):
                            await alice.channel(cid).trade(Pay(1, Amount(10)))
                async with alice_with(desks, store, tower) as alice:
                    after = await alice.channel(cid).pay(1)
    assert after.version - last == CLEAN_RESTARTS + 1, (last, after.version)
