"""The alarms a desk raised, each with an id the operator acknowledges (``channels ack ID``).

An alarm is one condition: its kind, channel and detail. Raising the same condition again while
it is recorded counts a repeat on the same alarm instead of adding one, so an acknowledged alarm
stays acknowledged when the node raises it again (at a restart, or on the next poll) and only a
new condition pages. Alarms stay open until acknowledged.

With a path, the book is a small SQLite file of its own next to the desk's store (``<store>
.alarms``), written with ``synchronous=FULL``: open alarms and acknowledgements survive a restart
or a crash. Alarms are rare, so each write is a short commit on the caller's thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from channels.core.errors import LocalError

__all__ = ["MAX_ALARMS", "AlarmBook", "AlarmRecord", "UnknownAlarm"]

#: Alarms kept; beyond it the oldest acknowledged ones go (open ones are never dropped).
MAX_ALARMS = 1000
#: Stored text is bounded: a detail may quote a peer's or the chain's words.
MAX_DETAIL = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    channel TEXT,
    detail TEXT NOT NULL,
    raised_at REAL NOT NULL,
    last_raised_at REAL NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0,
    acked_at REAL
)
"""


class UnknownAlarm(LocalError, LookupError):
    """``ack`` of an id the book does not hold."""


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    id: int
    kind: str
    detail: str
    channel: str | None
    raised_at: float
    last_raised_at: float
    repeats: int
    acked_at: float | None

    @property
    def open(self) -> bool:
        return self.acked_at is None


class AlarmBook:
    """Alarms with ids and acknowledgements; persisted when given a ``path``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._db.commit()
        self._records = {r.id: r for r in self._load()}

    def close(self) -> None:
        self._db.close()

    def _load(self) -> list[AlarmRecord]:
        rows = self._db.execute(
            "SELECT id, kind, detail, channel, raised_at, last_raised_at, repeats, acked_at "
            "FROM alarms ORDER BY id"
        ).fetchall()
        return [AlarmRecord(*row) for row in rows]

    def records(self) -> list[AlarmRecord]:
        """Every alarm kept, oldest first."""
        return list(self._records.values())

    def open_records(self) -> list[AlarmRecord]:
        return [r for r in self._records.values() if r.open]

    def raise_alarm(self, kind: str, detail: str, channel: str | None, now: float) -> AlarmRecord:
        """Record an alarm; the same condition again is a repeat of the alarm already kept."""
        detail = detail[:MAX_DETAIL]
        for record in self._records.values():
            if (record.kind, record.channel, record.detail) == (kind, channel, detail):
                with self._db:
                    self._db.execute(
                        "UPDATE alarms SET repeats = repeats + 1, last_raised_at = ? WHERE id = ?",
                        (now, record.id),
                    )
                updated = AlarmRecord(
                    record.id, kind, detail, channel, record.raised_at, now,
                    record.repeats + 1, record.acked_at,
                )  # fmt: skip
                self._records[record.id] = updated
                return updated
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO alarms (kind, channel, detail, raised_at, last_raised_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, channel, detail, now, now),
            )
            alarm_id = cursor.lastrowid
            assert alarm_id is not None
            self._prune()
        record = AlarmRecord(alarm_id, kind, detail, channel, now, now, 0, None)
        self._records[alarm_id] = record
        return record

    def _prune(self) -> None:
        excess = len(self._records) + 1 - MAX_ALARMS
        if excess <= 0:
            return
        acked = [r.id for r in self._records.values() if not r.open][:excess]
        self._db.executemany("DELETE FROM alarms WHERE id = ?", [(i,) for i in acked])
        for alarm_id in acked:
            del self._records[alarm_id]

    def ack(self, alarm_id: int, now: float) -> tuple[AlarmRecord, bool]:
        """Acknowledge an alarm: (the alarm, whether it was open until now)."""
        record = self._records.get(alarm_id)
        if record is None:
            raise UnknownAlarm(f"no alarm {alarm_id} (channels alarms lists them)")
        if not record.open:
            return record, False
        with self._db:
            self._db.execute("UPDATE alarms SET acked_at = ? WHERE id = ?", (now, alarm_id))
        acked = AlarmRecord(
            record.id, record.kind, record.detail, record.channel, record.raised_at,
            record.last_raised_at, record.repeats, now,
        )  # fmt: skip
        self._records[alarm_id] = acked
        return acked, True
