"""Writing many ``book_positions`` rows at once, in fixed-size multi-row statements.

Why: a batched update deletes and inserts about as many rows as it has trades. One statement
per row (``executemany``) pays SQLite's step and reset and the binding of the channel id for
each row; one statement for ``CHUNK`` rows pays them once. Measured on 50 deletes and 50
inserts (SQLite 3.40): ~99 -> ~57 µs and ~158 -> ~122 µs. The size is fixed so that one
prepared statement of each kind is reused from the connection's statement cache; the rows past
the last whole chunk go one per statement, as before.

The statements mean the same as one per row: a constraint broken by any row fails the
statement, and so the operation's batch, as it did before.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from channels.core.model import ChannelId

#: Rows per multi-row statement (16 measured fastest among 8, 16 and 32 for 50 rows).
CHUNK: Final = 16

#: A ``book_positions`` row: channel id, slot, position id (8 bytes), the position's record.
PositionRow = tuple[ChannelId, int, bytes, bytes]

_DELETE_ONE: Final = "DELETE FROM book_positions WHERE channel_id = ? AND slot = ?"
_DELETE_CHUNK: Final = (
    "DELETE FROM book_positions WHERE channel_id = ? AND slot IN (" + ", ".join("?" * CHUNK) + ")"
)
_INSERT_ONE: Final = "INSERT INTO book_positions VALUES (?, ?, ?, ?)"
_INSERT_CHUNK: Final = "INSERT INTO book_positions VALUES " + ", ".join(["(?, ?, ?, ?)"] * CHUNK)


def delete_slots(conn: sqlite3.Connection, channel_id: ChannelId, slots: list[int]) -> None:
    """Delete the channel's rows in ``slots``."""
    whole = len(slots) - len(slots) % CHUNK
    for start in range(0, whole, CHUNK):
        conn.execute(_DELETE_CHUNK, (channel_id, *slots[start : start + CHUNK]))
    if whole < len(slots):
        conn.executemany(_DELETE_ONE, [(channel_id, slot) for slot in slots[whole:]])


def insert_positions(conn: sqlite3.Connection, rows: list[PositionRow]) -> None:
    """Insert ``rows``."""
    whole = len(rows) - len(rows) % CHUNK
    for start in range(0, whole, CHUNK):
        conn.execute(_INSERT_CHUNK, [value for row in rows[start : start + CHUNK] for value in row])
    if whole < len(rows):
        conn.executemany(_INSERT_ONE, rows[whole:])
