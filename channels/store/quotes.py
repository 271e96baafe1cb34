"""The firm-quote audit trail: every quote we issued or received (with its EIP-712 signature),
every decline and every fill, append-only, in the node's store.

The table is created on first use (``CREATE TABLE IF NOT EXISTS``), so stores written before
firm quotes existed open unchanged. UPDATE and DELETE are refused by triggers, like the states'.

Rows: ``kind`` is ``issued`` / ``received`` (``record`` is the signed quote, wire tag 40),
``declined`` (``detail`` is the reason), ``filled`` (``quantity`` and ``version``: the state that
carries the fill), ``expired``, ``withdrawn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from channels.core.quote_wire import decode_quote_record, encode_quote_record
from channels.core.quotes import SignedQuote
from channels.store.base import StoreBase

_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS quote_audit (
        id          INTEGER PRIMARY KEY,
        channel_id  BLOB NOT NULL CHECK (length(channel_id) = 32),
        quote_id    BLOB CHECK (quote_id IS NULL OR length(quote_id) = 32),
        request_id  INTEGER,
        kind        TEXT NOT NULL CHECK (kind IN
                        ('issued', 'received', 'declined', 'filled', 'expired', 'withdrawn')),
        record      BLOB,
        quantity    TEXT,
        version     INTEGER,
        detail      TEXT,
        recorded_at INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS quote_audit_by_quote ON quote_audit (quote_id, id)",
    """CREATE TRIGGER IF NOT EXISTS quote_audit_no_update BEFORE UPDATE ON quote_audit
       BEGIN SELECT RAISE(ABORT, 'the quote audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS quote_audit_no_delete BEFORE DELETE ON quote_audit
       BEGIN SELECT RAISE(ABORT, 'the quote audit trail is append-only'); END""",
)


@dataclass(frozen=True, slots=True)
class QuoteRecord:
    """One row of the quote audit trail."""

    channel_id: bytes
    quote_id: bytes | None
    request_id: int | None
    kind: str
    signed: SignedQuote | None
    quantity: int | None
    version: int | None
    detail: str | None
    recorded_at: int


@dataclass(frozen=True, slots=True)
class QuoteEntry:
    """What to append: built by the node, written by :meth:`Store.append_quote_entries`."""

    channel_id: bytes
    kind: str
    quote_id: bytes | None = None
    request_id: int | None = None
    signed: SignedQuote | None = None
    quantity: int | None = None
    version: int | None = None
    detail: str | None = None


class QuoteRecords(StoreBase):
    """The firm-quote audit trail of a :class:`~channels.store.sync.Store` (its own table,
    created on first use)."""

    def _ensure(self) -> None:
        for statement in _DDL:
            self._conn.execute(statement)

    def append_quote_entries(self, entries: list[QuoteEntry]) -> None:
        """Append rows in one transaction (run it in the store's thread: ``AsyncStore.run``)."""
        self._check_open()
        conn = self._conn
        now = int(self._clock())
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._ensure()
            conn.executemany(
                "INSERT INTO quote_audit (channel_id, quote_id, request_id, kind, record, quantity,"
                " version, detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.channel_id,
                        e.quote_id,
                        e.request_id,
                        e.kind,
                        None if e.signed is None else encode_quote_record(e.signed),
                        None if e.quantity is None else str(e.quantity),
                        e.version,
                        e.detail,
                        now,
                    )
                    for e in entries
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def quote_audit(self, channel_id: bytes | None = None) -> list[QuoteRecord]:
        """The audit trail, oldest first (of one channel, or of all)."""
        self._check_open()
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quote_audit'"
        ).fetchone()
        if exists is None:
            return []
        sql = (
            "SELECT channel_id, quote_id, request_id, kind, record, quantity, version, detail,"
            " recorded_at FROM quote_audit"
        )
        args: tuple[bytes, ...] = ()
        if channel_id is not None:
            sql += " WHERE channel_id = ?"
            args = (channel_id,)
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [
            QuoteRecord(
                channel_id=bytes(cid),
                quote_id=None if qid is None else bytes(qid),
                request_id=rid,
                kind=kind,
                signed=None if record is None else decode_quote_record(bytes(record)),
                quantity=None if quantity is None else int(quantity),
                version=version,
                detail=detail,
                recorded_at=int(at),
            )
            for cid, qid, rid, kind, record, quantity, version, detail, at in rows
        ]
