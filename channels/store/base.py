"""What every part of :class:`Store` shares: its state and the internals that read the book."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from channels.core import wire
from channels.core.errors import ChannelError, UnknownChannel
from channels.core.model import ChannelId, Position
from channels.core.positions import BookSnapshot, PositionBook
from channels.store.errors import CorruptStore, StoreError
from channels.store.ops import StoreStats
from channels.store.rows import decoded, position_key


@dataclass(slots=True)
class LiveChannel:
    """What appending to a channel needs, cached between transactions: the head of its history
    and the open positions of its latest state by slot (no Merkle tree: the store writes the
    slots the machine changed and checked; see :meth:`Transactions._append`)."""

    head_version: int | None
    head_link: bytes
    high_water: int
    slots: dict[int, Position]
    slot_of: dict[int, int]
    locked: int
    #: The whole book with its tree, built only to apply an update's trades here (an update
    #: given without its changes); None once changes are applied without it.
    book: PositionBook | None = None


class StoreBase:
    """The state of a :class:`Store` and the internals its parts share."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        identity: bytes,
        chain_id: int,
        adjudicator: bytes,
        clock: Callable[[], float],
    ) -> None:
        self._conn = conn
        self.path = path
        self.identity = identity
        self.chain_id = chain_id
        self.adjudicator = adjudicator
        self._clock = clock
        self._live_cache: dict[bytes, LiveChannel] = {}
        self._touched: set[bytes] = set()
        self._closed = False
        self.stats = StoreStats()
        #: False when the previous run did not close the store (it crashed or was killed): the
        #: node may be behind its peer and must not register anything before it has heard from
        #: the peer or the chain (docs/THREATS.md section 5.3). True for a new store.
        self.previous_clean_shutdown = True
        self.created = False

    # internals ---------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _now(self) -> int:
        return int(self._clock())

    def _forget(self, channel_ids: set[bytes]) -> None:
        """Drop cached channel data that a rollback made stale (reloaded on next use)."""
        for cid in channel_ids:
            self._live_cache.pop(cid, None)

    def _live(self, channel_id: ChannelId) -> LiveChannel:
        live = self._live_cache.get(channel_id)
        if live is not None:
            return live
        row = self._conn.execute(
            "SELECT head_version, head_link, high_water FROM channels WHERE channel_id = ?",
            (channel_id,),
        ).fetchone()
        if row is None:
            raise UnknownChannel(f"no stored channel 0x{bytes(channel_id).hex()}")
        slots = dict(self._position_rows(channel_id))
        live = LiveChannel(
            head_version=None if row[0] is None else int(row[0]),
            head_link=bytes(row[1]),
            high_water=int(row[2]),
            slots=slots,
            slot_of={p.id: s for s, p in slots.items()},
            locked=sum(p.collateral for p in slots.values()),
        )
        self._live_cache[channel_id] = live
        return live

    def _position_rows(self, channel_id: ChannelId) -> list[tuple[int, Position]]:
        """The stored open positions of the channel's latest state, by slot (each row checked)."""
        slots: list[tuple[int, Position]] = []
        for slot, pid, blob in self._conn.execute(
            "SELECT slot, position_id, position FROM book_positions WHERE channel_id = ? "
            "ORDER BY slot",
            (channel_id,),
        ):
            snap = decoded(f"the position in slot {slot}", wire.decode_book, blob)
            if len(snap.slots) != 1 or snap.slots[0][0] != slot:
                raise CorruptStore(f"channel 0x{channel_id.hex()[:16]}: slot {slot} is damaged")
            position = snap.slots[0][1]
            if position_key(position) != bytes(pid):
                raise CorruptStore(f"channel 0x{channel_id.hex()[:16]}: slot {slot} is damaged")
            slots.append((slot, position))
        return slots

    def _book_from_rows(self, channel_id: ChannelId, high_water: int) -> PositionBook:
        """The stored book with its tree (its root is for the caller to check)."""
        return _book_of(channel_id, high_water, self._position_rows(channel_id))


def _book_of(
    channel_id: ChannelId, high_water: int, slots: list[tuple[int, Position]]
) -> PositionBook:
    try:
        return PositionBook.from_snapshot(BookSnapshot(high_water, tuple(slots)))
    except ChannelError as exc:
        raise CorruptStore(
            f"channel 0x{channel_id.hex()[:16]}: the stored book is invalid: {exc}"
        ) from exc
