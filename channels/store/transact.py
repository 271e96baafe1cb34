"""The store's operations, applied inside a transaction (see :meth:`Store.apply_groups`)."""

from __future__ import annotations

from channels.core import eip712, wire
from channels.core.errors import ChannelError, Equivocation, StaleVersion, UnknownChannel
from channels.core.hashing import keccak256
from channels.core.model import ChannelId, Position, SignedUpdate
from channels.core.options import OpenOption, Settle, Unwind
from channels.core.positions import MAX_SLOTS, BookChanges, BookSnapshot, PositionBook
from channels.core.protocol import PersistSignature, PersistState, Phase, PhaseChanged
from channels.store.base import LiveChannel
from channels.store.bulk import PositionRow, delete_slots, insert_positions
from channels.store.errors import ForeignStore, StoreError
from channels.store.history import chain_link
from channels.store.lease import LeaseVersions
from channels.store.ops import (
    AddChannel,
    AddIntent,
    AppendState,
    DeleteIntent,
    IntentStatus,
    Op,
    SetCursor,
    UpdateIntent,
)
from channels.store.premiums import PremiumRecords
from channels.store.rows import (
    INT64_MAX,
    address_text,
    check_version,
    lease_key,
    position_blob,
    position_key,
)
from channels.store.schema import ZERO_LINK


class Transactions(PremiumRecords):
    """The :class:`Store` methods that apply one operation inside the open transaction."""

    # operations (inside a transaction) ----------------------------------------------------------
    def _apply_op(self, op: Op) -> int | None:
        if isinstance(op, PersistState):
            self._append(op.channel_id, op.update, op.book, op.changes, op.state_hash)
        elif isinstance(op, AppendState):
            self._append(op.channel_id, op.update, op.book)
        elif isinstance(op, PersistSignature):
            self._record_signature(op.channel_id, op.version, op.state_hash)
        elif isinstance(op, LeaseVersions):
            self._lease_versions(op.channel_id, op.up_to, op.exact)
        elif isinstance(op, PhaseChanged):
            self._set_phase(op.channel_id, op.phase)
        elif isinstance(op, AddChannel):
            self._add_channel(op)
        elif isinstance(op, AddIntent):
            return self._add_intent(op)
        elif isinstance(op, UpdateIntent):
            self._update_intent(op)
        elif isinstance(op, DeleteIntent):
            cur = self._conn.execute("DELETE FROM chain_intents WHERE id = ?", (op.intent_id,))
            if cur.rowcount != 1:
                raise StoreError(f"no chain intent with id {op.intent_id}")
        elif isinstance(op, SetCursor):
            self._set_cursor(op)
        else:
            raise StoreError(f"unknown store operation {type(op).__name__}")
        return None

    def _add_channel(self, op: AddChannel) -> None:
        params = op.params
        if params.chain_id != self.chain_id or params.adjudicator != self.adjudicator:
            raise ForeignStore(
                f"channel 0x{params.channel_id.hex()} is for chain {params.chain_id} / "
                f"{address_text(params.adjudicator)}; this store is bound to chain "
                f"{self.chain_id} / "
                f"{address_text(self.adjudicator)}"
            )
        if op.our_index not in (0, 1) or params.participants[op.our_index] != self.identity:
            raise ForeignStore(
                f"channel 0x{params.channel_id.hex()} does not name this store's identity "
                f"{address_text(self.identity)} as participant {op.our_index}"
            )
        for amount in op.deposits:
            if type(amount) is not int or amount < 0:
                raise StoreError("deposits must be non-negative ints")
        blob = wire.encode_params(params)
        existing = self._conn.execute(
            "SELECT params, our_index, deposit0, deposit1 FROM channels WHERE channel_id = ?",
            (params.channel_id,),
        ).fetchone()
        if existing is not None:
            same = (bytes(existing[0]), existing[1], existing[2], existing[3])
            if same == (blob, op.our_index, str(op.deposits[0]), str(op.deposits[1])):
                return  # the same channel again (a retried call)
            raise StoreError(f"channel 0x{params.channel_id.hex()} is already stored differently")
        host, port = op.endpoint if op.endpoint is not None else (None, None)
        now = self._now()
        self._conn.execute(
            "INSERT INTO channels (channel_id, params, our_index, deposit0, deposit1, phase, "
            "endpoint_host, endpoint_port, head_version, head_link, high_water, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 0, ?, ?)",
            (
                params.channel_id,
                blob,
                op.our_index,
                str(op.deposits[0]),
                str(op.deposits[1]),
                op.phase.value,
                host,
                port,
                ZERO_LINK,
                now,
                now,
            ),
        )

    def _record_signature(self, channel_id: ChannelId, version: int, state_hash: bytes) -> None:
        if type(state_hash) is not bytes or len(state_hash) != 32:
            raise StoreError("a state hash is 32 bytes")
        check_version(version)
        self._live(channel_id)  # the channel must exist
        lease = self._conn.execute(
            "SELECT value FROM meta WHERE key = ?", (lease_key(channel_id),)
        ).fetchone()
        if lease is not None and version <= int(lease[0]):
            recorded = self._conn.execute(
                "SELECT 1 FROM signed_versions WHERE channel_id = ? AND version = ?",
                (channel_id, version),
            ).fetchone()
            if recorded is None:
                # Under the lease, versions are signed without a record of their hash: any of
                # them may have been signed before a restart.
                raise Equivocation(
                    f"channel 0x{channel_id.hex()[:16]}: version {version} is within the version "
                    f"lease (up to {int(lease[0])}) and may have been signed already; sign above it"
                )
        self._claim_version(channel_id, version, state_hash)

    def _lease_versions(self, channel_id: ChannelId, up_to: int, exact: bool) -> None:
        check_version(up_to)
        self._live(channel_id)  # the channel must exist
        key = lease_key(channel_id)
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None and int(row[0]) >= up_to and not exact:
            return  # a lease only shrinks at a clean shutdown (LeaseVersions.exact)
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(up_to))
        )

    def _claim_version(self, channel_id: ChannelId, version: int, state_hash: bytes) -> None:
        # Insert first, look only on a conflict: one statement in the common case (a new version).
        inserted = self._conn.execute(
            "INSERT INTO signed_versions (channel_id, version, state_hash, signed_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (channel_id, version) DO NOTHING",
            (channel_id, version, state_hash, self._now()),
        ).rowcount
        if inserted:
            return
        row = self._conn.execute(
            "SELECT state_hash FROM signed_versions WHERE channel_id = ? AND version = ?",
            (channel_id, version),
        ).fetchone()
        if bytes(row[0]) != state_hash:
            raise Equivocation(
                f"channel 0x{channel_id.hex()[:16]}: version {version} was already signed as "
                f"0x{bytes(row[0]).hex()}, refusing 0x{state_hash.hex()}"
            )

    def _append(
        self,
        channel_id: ChannelId,
        update: SignedUpdate,
        book: BookSnapshot | None,
        changes: BookChanges | None = None,
        state_hash: bytes | None = None,
    ) -> None:
        signed = update.signed
        state = signed.state
        if state.channel_id != channel_id:
            raise StoreError("the update belongs to another channel")
        version = int(state.version)
        check_version(version)
        if not signed.fully_signed:
            raise StoreError(f"version {version} is not fully signed; only such states are stored")
        if book is not None and changes is not None:
            raise StoreError("give a state's whole book or its changes, not both")
        live = self._live(channel_id)
        if state_hash is None:
            state_hash = eip712.state_struct_hash(state)
        elif type(state_hash) is not bytes or len(state_hash) != 32:
            raise StoreError("a state hash is 32 bytes")
        # (A hash given comes from our own machine, which hashed this state to sign it.)
        if live.head_version is not None and version <= live.head_version:
            row = self._conn.execute(
                "SELECT state_hash FROM states WHERE channel_id = ? AND version = ?",
                (channel_id, version),
            ).fetchone()
            if row is not None and bytes(row[0]) == state_hash:
                return  # already stored (a retried call)
            if row is not None:
                raise Equivocation(
                    f"channel 0x{channel_id.hex()[:16]}: another state of version {version} is "
                    "already stored"
                )
            raise StaleVersion(
                f"version {version} is older than the stored latest version {live.head_version}"
            )
        self._claim_version(channel_id, version, state_hash)
        record = wire.UpdateRecord(update)  # encoded once: the positions it opens too
        self._touched.add(channel_id)  # from here on, a failure drops the cached channel
        conn = self._conn
        if book is not None:
            placed = self._replace_book(live, channel_id, book)
            conn.execute("DELETE FROM book_positions WHERE channel_id = ?", (channel_id,))
        else:
            if changes is None:
                changes = self._derive_changes(live, update)  # keeps live.book: root checked
            else:
                live.book = None  # the machine applied and checked them; no tree kept here
            placed = self._write_changes(live, channel_id, changes, record)
        # The machine checked the positions root of the book these rows hold before it signed;
        # count and locked collateral are checked here too (cheaply, without the tree), and the
        # root whenever the store built the tree itself (a snapshot, or trades applied here).
        # Store.load_channel checks the root of the stored rows again.
        if (len(live.slots), live.locked) != (state.position_count, state.locked) or (
            live.book is not None and live.book.root != state.positions_root
        ):
            how = "the snapshot given" if book is not None else "the update's changes"
            raise StoreError(
                f"channel 0x{channel_id.hex()[:16]} v{version}: the book from {how} does not "
                "match the state's positions commitment (for a state adopted from the peer, "
                "pass its book snapshot)"
            )
        if placed:
            insert_positions(conn, placed)
        link = chain_link(live.head_link, state_hash, version)
        now = self._now()
        blob = record.blob
        conn.execute(
            "INSERT INTO states (channel_id, version, state_hash, update_blob, blob_hash, "
            "prev_link, link, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (channel_id, version, state_hash, blob, keccak256(blob), live.head_link, link, now),
        )
        self._record_premiums(channel_id, version, update.trades, now)  # the daily premium limit
        conn.execute(
            "UPDATE channels SET head_version = ?, head_link = ?, high_water = ?, updated_at = ? "
            "WHERE channel_id = ?",
            (version, link, live.high_water, now, channel_id),
        )
        live.head_version = version
        live.head_link = link

    def _write_changes(
        self,
        live: LiveChannel,
        channel_id: ChannelId,
        changes: BookChanges,
        record: wire.UpdateRecord,
    ) -> list[PositionRow]:
        """Apply ``changes`` to the cached slots; delete the rows of slots left empty and
        rewrite in place those of slots emptied and filled again; return the rows to insert."""
        freed, refilled, placed = _apply_changes(live, channel_id, changes, record)
        conn = self._conn
        if freed:
            delete_slots(conn, channel_id, freed)
        if refilled:
            # An unwound position's slot is where the next opened one goes (the lowest free
            # slot): one UPDATE instead of a DELETE and an INSERT of the same key. Run after the
            # deletes and in the changes' order, so the unique position id is checked against
            # the rows as the cached slots were when each change was checked.
            done = conn.executemany(
                "UPDATE book_positions SET position_id = ?, position = ? "
                "WHERE channel_id = ? AND slot = ?",
                refilled,
            ).rowcount
            if done != len(refilled):  # the cache said each of these slots had a row
                raise StoreError(
                    f"channel 0x{channel_id.hex()[:16]}: {len(refilled) - done} of the slots "
                    "to rewrite have no stored row"
                )
        return placed

    @staticmethod
    def _replace_book(
        live: LiveChannel, channel_id: ChannelId, book: BookSnapshot
    ) -> list[PositionRow]:
        """Make ``book`` the whole book (a state adopted from the peer); return its rows."""
        try:
            tree = PositionBook.from_snapshot(book)
        except ChannelError as exc:
            raise StoreError(f"the book snapshot is invalid: {exc}") from exc
        live.book = tree
        live.slots = dict(book.slots)
        live.slot_of = {p.id: s for s, p in book.slots}
        live.locked = tree.locked
        live.high_water = book.high_water
        return [(channel_id, s, position_key(p), position_blob(s, p)) for s, p in book.slots]

    @staticmethod
    def _derive_changes(live: LiveChannel, update: SignedUpdate) -> BookChanges:
        """Apply the update's trades to the whole book the way the rules do (``OpenOption`` adds
        in the lowest free slot, ``Unwind``/``Settle`` remove) and return the slots changed. Only
        for an update given without its changes (the machine gives them)."""
        tree = live.book
        if tree is None:
            try:
                tree = PositionBook.from_snapshot(
                    BookSnapshot(live.high_water, tuple(sorted(live.slots.items())))
                )
            except ChannelError as exc:  # pragma: no cover - the rows were checked when read
                raise StoreError(f"the stored book is invalid: {exc}") from exc
            live.book = tree
        tree.begin()
        try:
            for trade in update.trades:
                if isinstance(trade, OpenOption):
                    tree.add(trade.position)
                elif isinstance(trade, Unwind | Settle):
                    tree.remove(trade.position_id)
        except ChannelError as exc:
            raise StoreError(
                f"the update's trades do not apply to the stored book ({exc!r}); for a state "
                "adopted from the peer, pass its book snapshot"
            ) from exc
        changes = tree.commit_oldest()
        assert changes is not None
        return changes

    def _set_phase(self, channel_id: ChannelId, phase: Phase) -> None:
        if not isinstance(phase, Phase):
            raise StoreError("phase must be a Phase")
        cur = self._conn.execute(
            "UPDATE channels SET phase = ?, updated_at = ? WHERE channel_id = ?",
            (phase.value, self._now(), channel_id),
        )
        if cur.rowcount != 1:
            raise UnknownChannel(f"no stored channel 0x{channel_id.hex()}")

    def _add_intent(self, op: AddIntent) -> int:
        if not isinstance(op.status, IntentStatus):
            raise StoreError("status must be an IntentStatus")
        if op.channel_id is not None:
            self._live(op.channel_id)
        now = self._now()
        cur = self._conn.execute(
            "INSERT INTO chain_intents (channel_id, kind, payload, raw_tx, tx_hash, nonce, "
            "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                op.channel_id,
                op.kind,
                op.payload,
                op.raw_tx,
                op.tx_hash,
                op.nonce,
                op.status.value,
                now,
                now,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _update_intent(self, op: UpdateIntent) -> None:
        sets: list[str] = []
        args: list[object] = []
        if op.status is not None:
            if not isinstance(op.status, IntentStatus):
                raise StoreError("status must be an IntentStatus")
            sets.append("status = ?")
            args.append(op.status.value)
        for name in ("raw_tx", "tx_hash", "nonce"):
            value = getattr(op, name)
            if value is not None:
                sets.append(f"{name} = ?")
                args.append(value)
        sets.append("updated_at = ?")
        args.append(self._now())
        cur = self._conn.execute(
            f"UPDATE chain_intents SET {', '.join(sets)} WHERE id = ?", (*args, op.intent_id)
        )
        if cur.rowcount != 1:
            raise StoreError(f"no chain intent with id {op.intent_id}")

    def _set_cursor(self, op: SetCursor) -> None:
        if type(op.block_number) is not int or not 0 <= op.block_number <= INT64_MAX:
            raise StoreError("block_number must be a non-negative int64")
        if type(op.block_hash) is not bytes:
            raise StoreError("block_hash must be bytes")
        self._conn.execute(
            "INSERT INTO chain_cursor (name, block_number, block_hash, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "block_number = excluded.block_number, block_hash = excluded.block_hash, "
            "updated_at = excluded.updated_at",
            (op.name, op.block_number, op.block_hash, self._now()),
        )


#: A ``book_positions`` row rewritten in place: position id, record, channel id, slot.
_Refill = tuple[bytes, bytes, ChannelId, int]


def _apply_changes(
    live: LiveChannel, channel_id: ChannelId, changes: BookChanges, record: wire.UpdateRecord
) -> tuple[list[int], list[_Refill], list[PositionRow]]:
    """Apply ``changes`` to the cached slots; return the rows to delete (slots left empty), to
    rewrite (slots emptied and filled again) and to insert (slots empty before)."""
    high_water = changes.high_water
    if type(high_water) is not int or not live.high_water <= high_water <= MAX_SLOTS:
        raise StoreError(
            f"the book's slot count {high_water!r} is not an int in [{live.high_water}, "
            f"{MAX_SLOTS}] (it never shrinks)"
        )
    slots, slot_of = live.slots, live.slot_of
    freed: list[int] = []
    refilled: list[_Refill] = []
    placed: list[PositionRow] = []
    filled: set[int] = set()
    for slot, position in changes.slots:
        if type(slot) is not int or not 0 <= slot < high_water:
            raise StoreError(f"slot {slot!r} is not an int in [0, {high_water})")
        old = slots.pop(slot, None)
        if old is not None:
            del slot_of[old.id]
            live.locked -= old.collateral
        if position is None:
            if old is not None:
                freed.append(slot)
            continue
        if type(position) is not Position:
            raise StoreError(f"slot {slot} holds a {type(position).__name__}, not a Position")
        if position.id in slot_of:
            raise StoreError(f"position {position.id} is open in slot {slot_of[position.id]} too")
        if slot in filled:  # two rows for one slot: refused (as the row's key always did)
            raise StoreError(f"slot {slot} is filled twice in one change set")
        filled.add(slot)
        slots[slot] = position
        slot_of[position.id] = slot
        live.locked += position.collateral
        blob = record.position_record(slot, position)
        if old is not None:
            refilled.append((position_key(position), blob, channel_id, slot))
        else:
            placed.append((channel_id, slot, position_key(position), blob))
    live.high_water = high_water
    return freed, refilled, placed
