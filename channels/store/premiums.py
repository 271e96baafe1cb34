"""The premiums paid in each stored state, so that a daily premium limit survives a restart.

The gatekeeper counts the premiums we agreed to pay in the last 24 hours against
``RiskLimits.max_premium_per_day`` (channels/runtime/gatekeeper.py). Counted only in memory, a
restart would reset the count: a peer that can crash us would get the allowance again after
every restart. So every stored state records, in the same transaction, the premiums each
participant pays in its trades (an ``OpenOption``'s holder pays its premium); a state that
commits us to a premium is never stored without its row, and a state is stored before our
signature on it leaves (persist, then send). At start the node reads the rows of the last day.

The table is created when the store opens (``CREATE TABLE IF NOT EXISTS``), so stores written
before it existed open unchanged (their older states have no rows). Rows are append-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from channels.core.options import OpenOption, Trade
from channels.store.base import StoreBase

_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS premiums (
        channel_id BLOB NOT NULL CHECK (length(channel_id) = 32),
        version    INTEGER NOT NULL CHECK (version >= 0),
        payer      INTEGER NOT NULL CHECK (payer IN (0, 1)),
        amount     TEXT NOT NULL,
        stored_at  INTEGER NOT NULL,
        PRIMARY KEY (channel_id, version, payer)
    )""",
    "CREATE INDEX IF NOT EXISTS premiums_by_time ON premiums (stored_at)",
    """CREATE TRIGGER IF NOT EXISTS premiums_no_update BEFORE UPDATE ON premiums
       BEGIN SELECT RAISE(ABORT, 'premium rows are append-only'); END""",
)


@dataclass(frozen=True, slots=True)
class PremiumPaid:
    """Premium paid by participant ``payer`` in one stored state, ``age`` seconds ago (by the
    store's clock)."""

    channel_id: bytes
    version: int
    payer: int
    amount: int
    age: int


def premiums_by_payer(trades: Sequence[Trade]) -> tuple[int, int]:
    """What each participant pays in premiums in ``trades``."""
    paid = [0, 0]
    for trade in trades:
        if isinstance(trade, OpenOption):
            paid[1 - trade.position.writer] += trade.premium
    return paid[0], paid[1]


class PremiumRecords(StoreBase):
    """The premium rows of a :class:`~channels.store.sync.Store`."""

    def _create_premiums(self) -> None:
        for statement in _DDL:
            self._conn.execute(statement)

    def _record_premiums(
        self, channel_id: bytes, version: int, trades: Sequence[Trade], now: int
    ) -> None:
        """Within the transaction that stores the state."""
        rows = [
            (channel_id, version, payer, str(amount), now)
            for payer, amount in enumerate(premiums_by_payer(trades))
            if amount
        ]
        if rows:
            self._conn.executemany("INSERT OR IGNORE INTO premiums VALUES (?, ?, ?, ?, ?)", rows)

    def premiums_since(self, seconds: int) -> list[PremiumPaid]:
        """The premium rows stored in the last ``seconds`` (of the store's clock), oldest first."""
        self._check_open()
        now = self._now()
        rows = self._conn.execute(
            "SELECT channel_id, version, payer, amount, stored_at FROM premiums "
            "WHERE stored_at > ? ORDER BY stored_at",
            (now - seconds,),
        ).fetchall()
        return [
            PremiumPaid(bytes(cid), version, payer, int(amount), max(0, now - at))
            for cid, version, payer, amount, at in rows
        ]
