"""Data-loss protection (docs/THREATS.md section 5.3): Alice comes back from an old copy of her
store.

The nodes run in this process (``open_node`` in trio): no SIGKILL is needed here, only a store
file that goes back in time. Three ways Alice learns she is behind:

* from Bob's reestablish on reconnect (an ``Alarm`` of kind ``DataLossRecovered``);
* not at all while Bob is offline, and then she must not go on chain with her stale state;
* from the chain: Bob force-closed v9 while she was away; her watcher reads the ``Registered``
  event, adopts v9 (``ChainStateSeen``), never refutes, and the payouts are v9's.

In every case the adjudicator's transactions are scanned block by block: none from Alice carries
a state (register / checkpoint / conclude), so she never sent her stale v4.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of, mint
from adjudicator.transactions import TransactionSender
from channels import cli, open_node
from channels.control import serve_control
from channels.core.audit import verify_export
from channels.core.node_events import Alarm, Event
from channels.core.protocol import Phase
from channels.core.signing import LocalSigner
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings
from tests.partners import partners

from .harness import CHALLENGE_PERIOD, DEPOSIT, Chain, adjudicator_calls

FAST = NodeSettings(
    chain_poll_interval=0.05,
    update_timeout=5.0,
    open_timeout=30.0,
    connect_timeout=2.0,
    reconnect_backoff=(0.05, 0.3),
)
SIDE_FILES = ("-wal", "-shm", "-journal")


#: Every desk key made here; the desks of this module declare each other as partners (each test
#: makes fresh keys, so only a test's own desks ever meet).
_DESKS: list[bytes] = []


async def fresh_desk(chain: Chain) -> LocalSigner:
    signer = LocalSigner.generate()
    _DESKS.append(signer.address)
    async with open_rpc(chain.url) as rpc:
        await rpc.dev.set_balance("0x" + signer.address.hex(), 10**20)
        await mint(rpc, TransactionSender(rpc, signer.secret), chain.token, signer.address, 10**8)
    return signer


async def token_balance(chain: Chain, who: bytes) -> int:
    async with open_rpc(chain.url) as rpc:
        return await balance_of(rpc, chain.token, who)


async def advance(chain: Chain, seconds: int) -> None:
    async with open_rpc(chain.url) as rpc:
        await rpc.dev.increase_time(seconds)
        await rpc.dev.evm_mine()


async def head(chain: Chain) -> int:
    async with open_rpc(chain.url) as rpc:
        return await rpc.block_number()


class Recorder:
    """Every event a node emits, from its first moment (see ``desk``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def alarms(self, kind: str) -> list[Alarm]:
        return [e for e in self.events if isinstance(e, Alarm) and e.kind == kind]


@asynccontextmanager
async def desk(
    chain: Chain,
    signer: LocalSigner,
    path: Path,
    *,
    port: int | None = None,
    settings: NodeSettings = FAST,
    recorder: Recorder | None = None,
) -> AsyncIterator[Node]:
    async with open_node(
        signer=signer,
        store=path,
        chain=chain.url,
        adjudicator=chain.adjudicator,
        listen=("127.0.0.1", port) if port is not None else None,
        settings=settings,
        trust=partners(
            *(a for a in _DESKS if a != signer.address),
            assets=[chain.token],
            oracles=[chain.oracle],
        ),
    ) as node:
        # No checkpoint since the node started: the redial and reestablish have not run yet.
        async with node.events() as stream, trio.open_nursery() as nursery:

            async def record() -> None:
                async for event in stream:
                    if recorder is not None:
                        recorder.events.append(event)

            nursery.start_soon(record)
            yield node
            nursery.cancel_scope.cancel()


def backup(path: Path, to: Path) -> None:
    """Copy a stopped node's store (and any side files) aside."""
    shutil.copy2(path, to)
    for suffix in SIDE_FILES:
        side = Path(str(path) + suffix)
        if side.exists():
            shutil.copy2(side, Path(str(to) + suffix))


def restore(backup_path: Path, path: Path) -> None:
    """Put the old copy back where the store lives (side files of the newer one removed)."""
    for suffix in SIDE_FILES:
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copy2(backup_path, path)
    for suffix in SIDE_FILES:
        side = Path(str(backup_path) + suffix)
        if side.exists():
            shutil.copy2(side, Path(str(path) + suffix))


async def trade_to(alice: Channel, bob: Channel, version: int) -> None:
    """Alternate small payments until both hold ``version`` exactly."""
    turn = 0
    while alice.version < version:
        if turn % 2 == 0:
            done = await alice.pay(100 + turn)
        else:
            done = await bob.pay(50 + turn)
        turn += 1
        await alice.wait_version(done.version)
        await bob.wait_version(done.version)
    assert alice.version == version
    await bob.wait_version(version)
    assert bob.state == alice.state


async def open_pair(
    alice: Node, bob: Node, bob_addr: bytes, chain: Chain
) -> tuple[Channel, Channel]:
    assert bob.listen_port is not None
    ch = await alice.open_channel(
        peer=("127.0.0.1", bob.listen_port),
        peer_address=bob_addr,
        asset=chain.token,
        deposit=DEPOSIT,
        peer_deposit=DEPOSIT,
        oracle=chain.oracle,
        challenge_period=CHALLENGE_PERIOD,
    )
    bch = bob.channel(ch.id)
    with trio.fail_after(20):
        while ch.state.deposited != (DEPOSIT, DEPOSIT) or bch.state != ch.state:
            await trio.sleep(0.05)
    return ch, bch


def assert_alice_sent_no_state(chain: Chain, alice: bytes, first_block: int) -> None:
    calls = adjudicator_calls(chain, first_block)
    carrying = [c for c in calls if c.sender == alice and c.version is not None]
    assert not carrying, f"Alice sent states to the adjudicator: {carrying}"


async def scan(chain: Chain, alice: bytes, first_block: int) -> None:
    await trio.to_thread.run_sync(assert_alice_sent_no_state, chain, alice, first_block)


async def setup_v4_backup_v9(
    chain: Chain, tmp: Path
) -> tuple[LocalSigner, LocalSigner, int, bytes, int]:
    """Alice and Bob trade to v4; Alice stops, her store is copied; then they trade to v9.

    Returns the signers, Bob's port, the channel id and the first block of the test."""
    a_key, b_key = await fresh_desk(chain), await fresh_desk(chain)
    first = await head(chain)
    port = await _free_port()
    async with desk(chain, b_key, tmp / "bob.sqlite", port=port) as bob:
        async with desk(chain, a_key, tmp / "alice.sqlite") as alice:
            ch, bch = await open_pair(alice, bob, b_key.address, chain)
            await trade_to(ch, bch, 4)
        backup(tmp / "alice.sqlite", tmp / "alice-v4.sqlite")
        async with desk(chain, a_key, tmp / "alice.sqlite") as alice:
            await settled(alice)
            await _until_trade(alice.channel(bch.id), bch, 9)
    return a_key, b_key, port, bytes(bch.id), first


async def settled(node: Node) -> None:
    """Wait for the link and the reestablish after a start. Trading before that can strand a
    proposal (see test_restart_race.py), which is not what these tests are about."""
    with trio.fail_after(10):
        while not node.status()[0].connected:
            await trio.sleep(0.02)
    await trio.sleep(0.3)


async def _until_trade(ch: Channel, bch: Channel, version: int) -> None:
    with trio.fail_after(20):
        while True:
            try:
                await trade_to(ch, bch, version)
                return
            except Exception as exc:
                # Right after a start the link may not be up yet: a proposal made then is refused
                # (NotCountersigned) once the reestablish shows the peer never saw it.
                if "resynchronising" not in str(exc) and "NotCountersigned" not in str(exc):
                    raise
                await trio.sleep(0.05)


async def _free_port() -> int:
    from .harness import free_port

    return free_port()


async def test_reestablish_brings_the_restored_node_to_v9(chain: Chain, tmp_path: Path) -> None:
    a_key, b_key, port, cid, first = await setup_v4_backup_v9(chain, tmp_path)
    restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")
    rec = Recorder()
    with trio.fail_after(60):
        async with desk(chain, b_key, tmp_path / "bob.sqlite", port=port) as bob:
            bch = bob.channel(cid)
            v9 = bch.state
            assert v9.version == 9
            async with desk(chain, a_key, tmp_path / "alice.sqlite", recorder=rec) as alice:
                ch = alice.channel(cid)
                assert ch.version == 4  # the old copy
                await ch.wait_version(9)
                assert ch.state == v9
                await settled(alice)
                while not rec.alarms("DataLossRecovered"):
                    await trio.sleep(0.02)
                (alarm,) = rec.alarms("DataLossRecovered")
                assert alarm.detail == "v4 -> v9"
                # Liveness after the recovery; she must not reuse versions 5..9 she lost.
                await _until_trade(ch, bch, 11)
                # Bob's reestablish carried v5..v9 with their trades: each is stored with what
                # produced it, and the exported trail verifies on its own.
                audit = await alice.store.export_audit(ch.id)
                assert [row["version"] for row in audit if row["version"] >= 4] == list(
                    range(4, 12)
                )
                assert all(row["trades"] for row in audit if row["version"] > 0)
                out = tmp_path / "alice-audit.jsonl"
                await export_to(alice, out)
    code = await trio.to_thread.run_sync(cli.main, ["verify", str(out)])
    assert code == 0
    with out.open("rb") as fh:
        report = verify_export(fh)
    assert report.latest == {"0x" + cid.hex(): 11}
    assert report.states == len(audit)
    await scan(chain, a_key.address, first)


async def export_to(node: Node, out: Path) -> None:
    """``channels export -o out`` against the node's control socket."""
    with tempfile.TemporaryDirectory(prefix="ocdl-", dir="/tmp") as short:
        sock = str(Path(short) / "n.sock")
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, node, sock)
            argv = ["--socket", sock, "export", "-o", str(out)]
            assert await trio.to_thread.run_sync(cli.main, argv) == 0
            nursery.cancel_scope.cancel()


async def test_bob_offline_alice_does_not_go_on_chain(chain: Chain, tmp_path: Path) -> None:
    a_key, b_key, port, cid, first = await setup_v4_backup_v9(chain, tmp_path)
    restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")
    rec = Recorder()
    with trio.fail_after(60):
        async with desk(chain, a_key, tmp_path / "alice.sqlite", recorder=rec) as alice:
            ch = alice.channel(cid)
            await trio.sleep(3)  # Bob is offline: dozens of watcher polls and redials
            assert ch.version == 4 and ch.phase is Phase.OPEN
            assert not rec.alarms("Escalated")
            await scan(chain, a_key.address, first)
            # Bob comes back: she learns v9 from him.
            async with desk(chain, b_key, tmp_path / "bob.sqlite", port=port) as bob:
                await ch.wait_version(9)
                assert ch.state == bob.channel(cid).state
    assert rec.alarms("DataLossRecovered")
    await scan(chain, a_key.address, first)


async def test_bob_force_closes_v9_while_alice_is_away(chain: Chain, tmp_path: Path) -> None:
    a_key, b_key, _port, cid, first = await setup_v4_backup_v9(chain, tmp_path)
    restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")
    a_before = await token_balance(chain, a_key.address)
    b_before = await token_balance(chain, b_key.address)
    rec = Recorder()
    with trio.fail_after(60):
        async with desk(chain, b_key, tmp_path / "bob.sqlite") as bob:  # not listening
            bch = bob.channel(cid)
            v9 = bch.state
            # Bob's node has not heard Alice since it started, so it cannot know v9 is the
            # newest: the operator forces the close (his store is genuine here).
            await bob.dispute(cid, force=True)
            await bch.wait_phase(Phase.DISPUTED)
            async with desk(chain, a_key, tmp_path / "alice.sqlite", recorder=rec) as alice:
                ch = alice.channel(cid)
                await ch.wait_version(9)
                assert ch.state == v9
                assert ch.phase is Phase.DISPUTED
                await trio.sleep(0.5)  # a few polls: no refute may follow
                assert [a.detail for a in rec.alarms("DataLossRecovered")] == ["v4 -> v9"]
                await scan(chain, a_key.address, first)
                await advance(chain, CHALLENGE_PERIOD + 1)
                await ch.wait_phase(Phase.CLOSED)
                await bch.wait_phase(Phase.CLOSED)
                async with connect_adjudicator(chain.url, chain.adjudicator, None) as view:
                    assert (await view.channel(cid)).status is ChannelStatus.CONCLUDED
                    while await view.credits(chain.token, a_key.address) or await view.credits(
                        chain.token, b_key.address
                    ):
                        await trio.sleep(0.05)
    a_after = await token_balance(chain, a_key.address)
    b_after = await token_balance(chain, b_key.address)
    assert (a_after - a_before, b_after - b_before) == (v9.balances[0], v9.balances[1])
    assert sum(v9.balances) == 2 * DEPOSIT
    await scan(chain, a_key.address, first)


def mark_unclean(path: Path) -> None:
    """Make a copy look like a snapshot of a running node (a VM image, a hot backup): the flag
    the store sets on open and clears on a clean close is left set."""
    import sqlite3

    conn = sqlite3.connect(str(path))
    try:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'last_clean_shutdown'")
        conn.commit()
    finally:
        conn.close()


async def test_unclean_old_copy_with_bob_offline_registers_nothing(
    chain: Chain, tmp_path: Path
) -> None:
    """The strict form of the offline variant: the copy says the node did not stop cleanly, and
    everything that makes a node go on chain by itself is there (a silent peer, an option near
    expiry, a short ``escalate_after``). Regression test: before the node read
    ``previous_clean_shutdown`` the watcher's escalation registered the stale v4 here."""
    a_key, b_key = await fresh_desk(chain), await fresh_desk(chain)
    first = await head(chain)
    port = await _free_port()
    with trio.fail_after(60):
        async with desk(chain, b_key, tmp_path / "bob.sqlite", port=port) as bob:
            async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
                ch, bch = await open_pair(alice, bob, b_key.address, chain)
                await trade_to(ch, bch, 3)
                # An option near expiry: the case in which a silent peer makes a node go on chain.
                await ch.write_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=3000_00000000,
                    expiry=alice.now() + 1800,
                    quantity=10**18,
                    premium=1_000,
                    collateral=10_000,
                )
                await bch.wait_version(4)
            backup(tmp_path / "alice.sqlite", tmp_path / "alice-v4.sqlite")
            async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
                await settled(alice)
                await _until_trade(alice.channel(bch.id), bch, 9)
        restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")
        mark_unclean(tmp_path / "alice.sqlite")
        eager = NodeSettings(
            chain_poll_interval=0.05,
            update_timeout=5.0,
            connect_timeout=1.0,
            reconnect_backoff=(0.05, 0.3),
            escalate_after=0.5,
        )
        rec = Recorder()
        async with desk(chain, a_key, tmp_path / "alice.sqlite", settings=eager, recorder=rec) as a:
            assert a.store.previous_clean_shutdown is False
            assert a.channel(bch.id).version == 4
            await trio.sleep(3)  # Bob stays offline
            assert not rec.alarms("Escalated")
    await scan(chain, a_key.address, first)
