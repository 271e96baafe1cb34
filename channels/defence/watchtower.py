"""An outsourced watchtower: refutes stale registrations while a desk is offline.

A separate process role. Desks (its *clients*, registered by address) push their latest fully
signed state of each channel (params + both signatures) over the authenticated transport
(:mod:`channels.transport.secure_channel`: the desk proves its channel key, the tower its own); the
tower checks the state (domain, channel id, both participants' EIP-712 signatures, the pusher is a
participant) and keeps the highest version per channel in its own SQLite file (WAL,
``synchronous=FULL``: the ack leaves only after the state is durable). It follows the adjudicator's
events for those channels and, when a channel is registered with an older version than the one it
holds, refutes with its version before the deadline, paying gas from its own key; after the
deadline it also concludes. Its transactions go through
:class:`channels.defence.txdriver.TxManager` (rebroadcast, fee bump, ``DeadlineAtRisk``).

Protocol (one msgpack map per message, each answered):
``{"t": "push", "params": <wire params>, "state": <wire state>, "sigs": [sig0, sig1], "book":
<wire book> (optional: the open positions, checked against the state's commitment and kept so a
wiped desk can be rebuilt with them)}`` ->
``{"ok": true, "version": n}`` (n = the version the tower holds now) or
``{"ok": false, "error": "..."}``. A desk also reads back what it pushed
(channels/defence/towerproto.py) and backs up its version lease (channels/defence/towerlease.py).

Use::

    async with open_watchtower(key, "tower.sqlite", chain_url, adjudicator,
                               ("127.0.0.1", 0), clients=[alice]) as tower:
        await push_state(("127.0.0.1", tower.listen_port), tower.address, signer, params, signed)

or ``python -m channels.defence.watchtower --config tower.json`` with ``{"key": "0x..",
"store": "..", "chain": "http://..", "adjudicator": "0x..", "listen": "127.0.0.1:9735",
"clients": ["0x.."]}``.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgpack
import trio

from adjudicator.client import (
    AdjudicatorClient,
    ChannelStatus,
    both_signatures,
    connect_adjudicator,
    params_tuple,
    state_tuple,
)
from channels.core import boundedjson, eip712
from channels.core.errors import ChainError, ChannelError, RemoteError, UnknownChannel
from channels.core.model import Address, ChannelId, Params, SignedState, address
from channels.core.node_events import Alarm, Event, StateUpdated
from channels.core.signing import LocalSigner, Signer, verify
from channels.core.wire import (
    MAX_MESSAGE,
    decode_params,
    decode_state,
    encode_params,
    encode_state,
)
from channels.defence.towerlease import LEASE_REQUESTS, TowerLeases
from channels.defence.towerproto import TowerRefused, check_book, tower_read
from channels.defence.txdriver import (
    TxManager,
    TxPolicy,
    bind_conclude_needed,
    bind_register_needed,
    intent_key,
)
from channels.transport import Prologue, SecureChannel, connect, serve

log = logging.getLogger("channels.defence.watchtower")

#: A push may carry the positions book (about 225 bytes a position): one wire message at most.
MAX_REQUEST = MAX_MESSAGE

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tower_channels (
        channel_id BLOB PRIMARY KEY,
        client     BLOB NOT NULL,
        params     BLOB NOT NULL,
        state      BLOB NOT NULL,
        sig0       BLOB NOT NULL,
        sig1       BLOB NOT NULL,
        version    INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        book       BLOB
    )""",
    """CREATE TABLE IF NOT EXISTS tower_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)""",
)


@dataclass(frozen=True)
class Held:
    client: Address
    params: Params
    signed: SignedState
    #: The wire-encoded positions book of ``signed`` (None: not pushed, or no positions).
    book: bytes | None = None


class TowerStore:
    """The tower's own small SQLite file: the best state per channel and its chain cursor."""

    def __init__(self, path: str | Path) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for sql in _SCHEMA:
            self._conn.execute(sql)
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(tower_channels)")}
        if "book" not in columns:  # a tower store written before books were kept
            self._conn.execute("ALTER TABLE tower_channels ADD COLUMN book BLOB")
        self._limiter = trio.CapacityLimiter(1)
        #: Each client's version leases (channels/defence/towerlease.py).
        self.leases = TowerLeases(self._conn, self._run)

    def close(self) -> None:
        self._conn.close()

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _put(
        self, client: Address, params: Params, signed: SignedState, book: bytes | None
    ) -> int:
        sig0, sig1 = signed.signatures
        assert sig0 is not None and sig1 is not None
        cid = params.channel_id
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            row = self._conn.execute(
                "SELECT version FROM tower_channels WHERE channel_id = ?", (cid,)
            ).fetchone()
            if row is not None and row[0] > signed.state.version:
                return int(row[0])
            if row is not None and row[0] == signed.state.version and book is None:
                return int(row[0])  # the same state again (with its book only if given)
            self._conn.execute(
                "INSERT OR REPLACE INTO tower_channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cid,
                    client,
                    encode_params(params),
                    encode_state(signed.state),
                    sig0,
                    sig1,
                    signed.state.version,
                    int(time.time()),
                    book,
                ),
            )
        return signed.state.version

    async def put(
        self, client: Address, params: Params, signed: SignedState, book: bytes | None = None
    ) -> int:
        """Keep ``signed`` (and its book) if newer than what is held; return the version held
        afterwards."""
        return int(await self._run(self._put, client, params, signed, book))

    def _all(self) -> list[Held]:
        rows = self._conn.execute(
            "SELECT client, params, state, sig0, sig1, book FROM tower_channels"
        ).fetchall()
        return [
            Held(
                Address(bytes(r[0])),
                decode_params(bytes(r[1])),
                SignedState(decode_state(bytes(r[2])), (bytes(r[3]), bytes(r[4]))),
                None if r[5] is None else bytes(r[5]),
            )
            for r in rows
        ]

    async def all(self) -> list[Held]:
        return list(await self._run(self._all))

    def _get_meta(self, key: str) -> bytes | None:
        row = self._conn.execute("SELECT value FROM tower_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _set_meta(self, key: str, value: bytes) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO tower_meta VALUES (?, ?)", (key, value))

    async def cursor(self) -> int | None:
        raw = await self._run(self._get_meta, "cursor")
        return None if raw is None else int.from_bytes(raw, "big")

    async def set_cursor(self, block: int) -> None:
        await self._run(self._set_meta, "cursor", block.to_bytes(8, "big"))


class Watchtower:
    """Create with :func:`open_watchtower`."""

    def __init__(
        self,
        signer: Signer,
        store: TowerStore,
        chain: AdjudicatorClient,
        chain_id: int,
        clients: Iterable[bytes],
        *,
        poll_interval: float,
        confirmations: int,
        policy: TxPolicy | None,
    ) -> None:
        self.signer = signer
        self.store = store
        self.chain = chain
        self.chain_id = chain_id
        self.domain = eip712.Domain(chain_id, Address(chain.address))
        self.clients: set[Address] = {address(c) for c in clients}
        self.poll_interval = poll_interval
        self.confirmations = confirmations
        self.listen_port: int | None = None
        self.held: dict[ChannelId, Held] = {}
        self.alarms: list[Alarm] = []
        self.errors = 0
        self.cursor = 0
        self._disputed: set[bytes] = set()
        self._chain_time = 0
        self._chain_time_at = 0.0
        self.txs = TxManager(
            chain, now=self.now, alarm=self._alarm, policy=policy, tick=poll_interval
        )

    @property
    def address(self) -> Address:
        return self.signer.address

    def now(self) -> int:
        return self._chain_time + int(trio.current_time() - self._chain_time_at)

    def _alarm(self, cid: ChannelId | None, kind: str, detail: str) -> None:
        log.warning("alarm %s on %s: %s", kind, cid.hex() if cid else "-", detail)
        self.alarms.append(Alarm(cid, kind, detail))

    # receiving states ---------------------------------------------------------------------
    def check(self, client: Address, params: Params, signed: SignedState) -> None:
        """Raise :class:`TowerRefused` unless ``signed`` is a state the tower may act on."""
        if client not in params.participants:
            raise TowerRefused("the pusher is not a participant of the channel")
        if params.chain_id != self.chain_id or params.adjudicator != self.chain.address:
            raise TowerRefused("the channel is on another chain or adjudicator")
        if signed.state.channel_id != params.channel_id:
            raise TowerRefused("the state is not of this channel")
        if not signed.fully_signed:
            raise TowerRefused("the state is not signed by both participants")
        digest = eip712.state_digest(self.domain, signed.state)
        try:
            for who, sig in zip(params.participants, signed.signatures, strict=True):
                assert sig is not None
                verify(digest, sig, who)
        except ChannelError as exc:
            raise TowerRefused(f"bad signature: {exc}") from exc

    async def accept(
        self, client: Address, params: Params, signed: SignedState, book: bytes | None = None
    ) -> int:
        self.check(client, params, signed)
        if book is not None:
            try:
                check_book(signed.state, book)
            except ChannelError as exc:
                raise TowerRefused(f"the book: {exc}") from None
        held = await self.store.put(client, params, signed, book)
        cid = params.channel_id
        if held == signed.state.version:
            kept = self.held.get(cid)
            if book is None and kept is not None and kept.signed == signed:
                book = kept.book
            self.held[cid] = Held(client, params, signed, book)
        return held

    async def serve_client(self, secure: SecureChannel) -> None:
        client = secure.peer_address
        while True:
            try:
                payload = await secure.receive()
            except RemoteError:
                return
            try:
                reply = await self._on_request(client, payload)
            except TowerRefused as exc:
                reply = {"ok": False, "error": str(exc)}
            except (ChannelError, ValueError, TypeError, KeyError) as exc:
                reply = {"ok": False, "error": f"malformed request: {type(exc).__name__}"}
            await secure.send(msgpack.packb(reply, use_bin_type=True))

    async def _on_request(self, client: Address, payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_REQUEST:
            raise TowerRefused("request too large")
        req = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        if isinstance(req, dict) and req.get("t") in ("get", "list"):
            # [reliability] A desk reads back what it pushed (channels/runtime/towerclient.py).
            return tower_read(self.held, client, req)
        if isinstance(req, dict) and req.get("t") in LEASE_REQUESTS:
            # [reliability] A desk backs up its version lease (docs/PROTOCOL.md section 7).
            return await self.store.leases.answer(client, req)
        if not isinstance(req, dict) or req.get("t") != "push":
            raise TowerRefused("unknown request")
        sigs = req["sigs"]
        if not isinstance(sigs, list) or len(sigs) != 2:
            raise TowerRefused("two signatures expected")
        params = decode_params(bytes(req["params"]))
        state = decode_state(bytes(req["state"]))
        signed = SignedState(state, (bytes(sigs[0]), bytes(sigs[1])))
        book = req.get("book")
        version = await self.accept(client, params, signed, None if book is None else bytes(book))
        return {"ok": True, "version": version}

    # watching the chain -------------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for held in await self.store.all():
            self.held[held.params.channel_id] = held
        head = await self.chain.head()
        stored = await self.store.cursor()
        self.cursor = stored if stored is not None else max(0, head - 1)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.txs.run)
            await self._sweep(list(self.held))  # whatever happened while we were down
            task_status.started()
            while True:
                await trio.sleep(self.poll_interval)
                try:
                    await self.poll()
                except Exception:  # the tower must outlive any fault; the next poll starts afresh
                    self.errors += 1
                    log.exception("tower poll failed")

    async def poll(self) -> None:
        head = await self.chain.head()  # the cursor itself never goes back
        await self._refresh_time()
        ids = list(self.held)
        touched: set[bytes] = set()
        if ids and self.cursor < head:
            for ev in await self.chain.events(self.cursor + 1, head, channel_ids=ids):
                if ev.channel_id is not None:
                    touched.add(ev.channel_id)
        # Disputed channels are looked at every poll (deadline, conclusion), the rest on events.
        await self._sweep([c for c in ids if c in touched or c in self._disputed])
        new_cursor = max(self.cursor, head - self.confirmations)
        if new_cursor != self.cursor:
            self.cursor = new_cursor
            await self.store.set_cursor(new_cursor)

    async def _refresh_time(self) -> None:
        self._chain_time = await self.chain.block_timestamp("latest")
        self._chain_time_at = trio.current_time()

    async def _sweep(self, ids: list[ChannelId]) -> None:
        if not ids:
            return
        await self._refresh_time()
        for cid in ids:
            held = self.held.get(cid)
            if held is None:
                continue
            try:
                await self._look_at(cid, held)
            except (ChainError, ChannelError, OSError) as exc:
                self.errors += 1
                log.warning("tower: 0x%s: %s", cid.hex()[:12], exc)

    async def _look_at(self, cid: ChannelId, held: Held) -> None:
        view = await self.chain.channel(cid)
        if view.status is not ChannelStatus.DISPUTED:
            self._disputed.discard(cid)
            return
        self._disputed.add(cid)
        ours = held.signed
        version = ours.state.version
        now = self.now()
        if view.version < version and now <= view.deadline:
            sig0, sig1 = both_signatures(ours)
            key = intent_key("refute", cid)
            if key not in self.txs.live and not self.txs.busy(key):
                self._alarm(cid, "StaleRegistration", f"v{view.version} < held v{version}")
            if key in self.txs.live or not self.txs.busy(key):
                await self.txs.submit(
                    key,
                    "refute",
                    cid,
                    "register",
                    (params_tuple(held.params), state_tuple(ours.state), sig0, sig1),
                    deadline=view.deadline,
                    needed=bind_register_needed(self.chain, cid, version, self.now),
                    tag=version,
                )
        elif view.version == version and now > view.deadline:
            key = intent_key("conclude", cid)
            if not self.txs.busy(key):
                await self.txs.submit(
                    key,
                    "conclude",
                    cid,
                    "concludeAfterTimeout",
                    (params_tuple(held.params), state_tuple(ours.state)),
                    needed=bind_conclude_needed(self.chain, cid),
                )


@asynccontextmanager
async def open_watchtower(
    key: bytes | Signer,
    store_path: str | Path,
    chain_url: str,
    adjudicator: str | bytes,
    listen: tuple[str, int],
    *,
    clients: Iterable[bytes | str] = (),
    poll_interval: float = 0.5,
    confirmations: int = 1,
    policy: TxPolicy | None = None,
) -> AsyncIterator[Watchtower]:
    """Run a watchtower for the ``async with`` block: it listens on ``listen`` for registered
    clients and pays gas from ``key`` (a 32-byte secret or a :class:`LocalSigner`)."""
    signer: Signer = LocalSigner(key) if isinstance(key, bytes) else key
    if not isinstance(signer, LocalSigner):
        raise TypeError("the tower needs a local key: it signs its own transactions")
    async with connect_adjudicator(chain_url, address(adjudicator), signer.secret) as client:
        chain_id = await client.rpc.chain_id()
        store = TowerStore(store_path)
        try:
            tower = Watchtower(
                signer,
                store,
                client,
                chain_id,
                [address(c) for c in clients],
                poll_interval=poll_interval,
                confirmations=confirmations,
                policy=policy,
            )
            async with trio.open_nursery() as nursery:
                tower.listen_port = await nursery.start(
                    serve,
                    listen[0],
                    listen[1],
                    signer,
                    Prologue(chain_id, Address(client.address)),
                    lambda peer: peer in tower.clients,
                    tower.serve_client,
                )
                await nursery.start(tower.run)
                try:
                    yield tower
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            store.close()


async def push_state(
    tower_endpoint: tuple[str, int],
    tower_address: bytes,
    signer: Signer,
    params: Params,
    signed_state: SignedState,
    *,
    timeout: float = 10.0,
) -> int:
    """Hand the tower a fully signed state; return the version it holds for the channel now.
    Raises :class:`TowerRefused` if the tower refuses it, a ``TransportError`` or ``OSError``
    if it cannot be reached."""
    sig0, sig1 = signed_state.signatures
    if sig0 is None or sig1 is None:
        raise TowerRefused("only fully signed states can be pushed")
    request = {
        "t": "push",
        "params": encode_params(params),
        "state": encode_state(signed_state.state),
        "sigs": [sig0, sig1],
    }
    with trio.fail_after(timeout):
        secure = await connect(
            tower_endpoint[0],
            tower_endpoint[1],
            signer,
            address(tower_address),
            Prologue(params.chain_id, params.adjudicator),
            timeout=timeout,
        )
        async with secure:
            await secure.send(msgpack.packb(request, use_bin_type=True))
            reply = msgpack.unpackb(await secure.receive(), raw=False)
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error") if isinstance(reply, dict) else repr(reply)
        raise TowerRefused(f"the tower refused the state: {error}")
    return int(reply["version"])


class PushedChannel(Protocol):
    """What the tower needs of a desk's channel handle."""

    @property
    def id(self) -> ChannelId: ...
    @property
    def params(self) -> Params: ...
    @property
    def latest(self) -> SignedState: ...


class PushSource(Protocol):
    """What the tower needs of a desk's node (a :class:`channels.runtime.node.Node`)."""

    @property
    def signer(self) -> Signer: ...
    @property
    def channels(self) -> Sequence[PushedChannel]: ...
    def channel(self, channel_id: bytes) -> PushedChannel: ...
    def events(
        self, buffer: int = 10_000
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]: ...


async def push_from_node(
    node: PushSource, tower_endpoint: tuple[str, int], tower_address: bytes
) -> None:
    """Push every new fully signed state of ``node``'s channels to a tower (run as a task).

    Best effort: a push that fails is retried with the next state, and the latest state of every
    channel is pushed at the start. A node that must not sign ahead of its tower would push
    synchronously instead (a hook in the node's executor)."""

    async def push(channel: PushedChannel) -> None:
        signed = channel.latest
        if not signed.fully_signed:
            return
        try:
            await push_state(tower_endpoint, tower_address, node.signer, channel.params, signed)
        except (ChannelError, OSError, trio.TooSlowError) as exc:
            log.warning("pushing 0x%s to the tower failed: %s", channel.id.hex()[:12], exc)

    async with node.events() as events:
        for channel in list(node.channels):
            await push(channel)
        async for event in events:
            if isinstance(event, StateUpdated) and event.channel_id is not None:
                try:
                    found = node.channel(event.channel_id)
                except UnknownChannel:
                    continue
                await push(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m channels.defence.watchtower")
    parser.add_argument("--config", required=True, help="JSON file (see the module docstring)")
    args = parser.parse_args(argv)
    config = boundedjson.loads(Path(args.config).read_bytes()[: 1 << 20], max_bytes=1 << 20)
    host, _, port = str(config.get("listen", "127.0.0.1:0")).rpartition(":")
    key = bytes.fromhex(str(config["key"]).removeprefix("0x"))
    logging.basicConfig(level=logging.INFO)

    async def serve_forever() -> None:
        async with open_watchtower(
            key,
            config["store"],
            config["chain"],
            config["adjudicator"],
            (host or "127.0.0.1", int(port)),
            clients=config.get("clients", []),
            poll_interval=float(config.get("poll_interval", 2.0)),
            confirmations=int(config.get("confirmations", 1)),
        ) as tower:
            print(f"watchtower 0x{tower.address.hex()} listening on port {tower.listen_port}")
            await trio.sleep_forever()

    trio.run(serve_forever)


if __name__ == "__main__":
    main()
