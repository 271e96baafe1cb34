"""Shared pieces of the node-level tests: desks, a channel between them, the universal
post-condition of docs/THREATS.md section 6 (``snapshot`` / ``assert_unchanged``) and a cuttable TCP
proxy for link faults."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import open_node
from channels.core import eip712
from channels.core.model import ChannelId
from channels.core.positions import BookSnapshot
from channels.core.protocol import Policy
from channels.core.signing import LocalSigner
from channels.core.trust import Trust
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings
from tests.partners import partners

from .conftest import Desks

FAST = NodeSettings(
    chain_poll_interval=0.05,
    update_timeout=10.0,
    open_timeout=30.0,
    reconnect_backoff=(0.05, 0.5),
)
DEPOSIT = 10_000_000
PERIOD = 3600
WEEK = 7 * 86400


@asynccontextmanager
async def desk(
    desks: Desks,
    signer: LocalSigner,
    path: Path,
    *,
    listen: int | None = None,
    settings: NodeSettings = FAST,
    policy: Policy | None = None,
    trust: Trust | None = None,
) -> AsyncIterator[Node]:
    """A node on the module's anvil; ``listen`` is a port (0 picks one) or None.

    By default the desk declares the other test desk as its partner (tests/partners.py); pass
    ``trust`` for a stricter one."""
    if trust is None:
        trust = desk_partners(desks, signer)
    async with open_node(
        signer=signer,
        store=path,
        chain=desks.url,
        adjudicator=desks.adjudicator,
        listen=("127.0.0.1", listen) if listen is not None else None,
        settings=settings,
        policy=policy,
        trust=trust,
    ) as node:
        yield node


def open_door(desks: Desks, signer: LocalSigner) -> Trust:
    """The desk's partners, and a bot admission callback that lets any other key connect too."""
    return dataclasses.replace(desk_partners(desks, signer), admit=lambda _peer: True)


def desk_partners(desks: Desks, signer: LocalSigner) -> Trust:
    other = desks.bob if signer.address == desks.alice.address else desks.alice
    return partners(other.address, assets=[desks.token], oracles=[desks.oracle.address])


async def propose(
    opener: Node, desks: Desks, port: int, *, ask: int, mine: int = 0, **params: object
) -> Channel:
    """The opener proposes a channel to Bob (at ``port``) asking him to deposit ``ask``; the
    other terms are the test defaults unless given (``asset``, ``oracle``, ``challenge_period``)."""
    return await opener.open_channel(
        peer=("127.0.0.1", port),
        peer_address=desks.bob.address,
        asset=params.get("asset", desks.token),  # type: ignore[arg-type]
        deposit=mine,
        peer_deposit=ask,
        oracle=params.get("oracle", desks.oracle.address),  # type: ignore[arg-type]
        challenge_period=params.get("challenge_period", PERIOD),  # type: ignore[arg-type]
    )


async def open_to(
    alice: Node,
    bob: Node,
    desks: Desks,
    *,
    port: int | None = None,
    deposit: int = DEPOSIT,
    challenge_period: int = PERIOD,
) -> Channel:
    """Alice (leader) opens and funds a channel to Bob, ``deposit`` each side; Alice's handle."""
    port = port if port is not None else bob.listen_port
    assert port is not None
    return await propose(
        alice, desks, port, ask=deposit, mine=deposit, challenge_period=challenge_period
    )


async def open_channel(
    alice: Node,
    bob: Node,
    desks: Desks,
    *,
    port: int | None = None,
    deposit: int = DEPOSIT,
) -> tuple[Channel, Channel]:
    """Alice (leader) opens and funds a channel to Bob; returns both handles, both OPEN."""
    ch = await open_to(alice, bob, desks, port=port, deposit=deposit)
    bch = bob.channel(ch.id)
    await bch.wait_version(ch.version)
    assert bch.state == ch.state
    return ch, bch


async def token_balances(desks: Desks) -> tuple[int, int]:
    async with open_rpc(desks.url) as rpc:
        return (
            await balance_of(rpc, desks.token, desks.alice.address),
            await balance_of(rpc, desks.token, desks.bob.address),
        )


async def chain_counters(desks: Desks, who: bytes) -> tuple[int, int]:
    """(block number, transaction count of ``who``): automine mines a block per transaction."""
    async with open_rpc(desks.url) as rpc:
        return await rpc.block_number(), await rpc.get_transaction_count("0x" + who.hex())


# The universal post-condition (docs/THREATS.md section 6) --------------------------------------


@dataclass(frozen=True)
class Snapshot:
    version: int
    state_hash: bytes
    signatures: tuple[bytes | None, bytes | None]
    head_version: int
    pending: tuple[int, ...]
    phase: str
    locked: int
    book: BookSnapshot
    highest_signed_store: int | None
    signed_versions: tuple[tuple[int, bytes], ...]
    history_len: int
    channel_ids: tuple[bytes, ...]
    block_number: int
    tx_count: int


async def snapshot(node: Node, desks: Desks, cid: ChannelId) -> Snapshot:
    ch = node.channel(cid)
    signed = ch.latest
    block, txs = await chain_counters(desks, node.address)
    return Snapshot(
        version=signed.state.version,
        state_hash=eip712.state_struct_hash(signed.state),
        signatures=signed.signatures,
        head_version=ch.in_flight[-1] if ch.in_flight else ch.version,
        pending=ch.in_flight,
        phase=ch.phase.value,
        locked=signed.state.locked,
        book=ch.book_snapshot(),
        highest_signed_store=await node.store.run(lambda s: s.highest_signed(cid)),
        signed_versions=tuple(await node.store.run(lambda s: s.signed_versions(cid))),
        history_len=len(await node.store.history(cid)),
        channel_ids=tuple(await node.store.run(lambda s: s.channel_ids())),
        block_number=block,
        tx_count=txs,
    )


async def assert_unchanged(node: Node, desks: Desks, cid: ChannelId, before: Snapshot) -> None:
    """Latest fully signed state (hash, version, signatures), staged state, signed_versions,
    locked collateral, stored channels and history are as before; no chain transaction was
    sent; the node's tasks are alive (its executor still answers: checked by the caller's next
    real trade)."""
    after = await snapshot(node, desks, cid)
    assert after == before, _diff(before, after)


def _diff(before: Snapshot, after: Snapshot) -> str:
    fields = [f for f in before.__dataclass_fields__ if getattr(before, f) != getattr(after, f)]
    return "changed: " + ", ".join(
        f"{f}: {getattr(before, f)!r} -> {getattr(after, f)!r}" for f in fields
    )


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


async def linked(a: Node, ach: Channel, b: Node, bch: Channel) -> None:
    """Both nodes hold a link to each other and both finished the reestablish on it."""

    def ready() -> bool:
        return (
            a.is_connected(b.address)
            and b.is_connected(a.address)
            and ach.in_sync
            and bch.in_sync
        )

    await wait_until(ready)
    await trio.sleep(0.1)  # the flag is raised a moment after the link appears: look again
    await wait_until(ready)


class CuttableProxy:
    """A TCP proxy in front of a node's listen port that a test can cut or stall.

    ``hold_back``: while True, bytes from the target back to the client are dropped (as if
    lost in flight when the link is then cut). ``cut()`` closes every live connection at once
    and lets traffic flow again; ``connections`` counts the connections accepted so far.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hold_back = False
        self.connections = 0
        self._scopes: list[trio.CancelScope] = []

    def cut(self) -> None:
        self.hold_back = False
        for scope in self._scopes:
            scope.cancel()
        self._scopes.clear()

    async def run(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        scope = trio.CancelScope()
        self._scopes.append(scope)
        with scope:
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                await client.aclose()
                return
            async with client, upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client, upstream, False)
                nursery.start_soon(self._pump, upstream, client, True)
        await client.aclose()

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, back: bool) -> None:
        try:
            while True:
                data = await source.receive_some(65536)
                if not data:
                    return
                if back and self.hold_back:
                    continue
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
