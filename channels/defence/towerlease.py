"""The tower's side of the lease backup: each client's "I may have signed channel X up to L".

Why a tower keeps it (docs/PROTOCOL.md section 7): a desk's version lease lives in its store, and
a store restored from an old backup carries the backup's lease. The desk may since have signed
versions above it; the peer holds those signatures. So the desk sends each new lease to its
towers, and at every start raises its own highest signed version to the highest figure they
hold: it then resumes above every version it ever signed.

The figure is the client's word about its own signatures and nothing else: kept per (client,
channel) and never used by the tower for anything (not to judge a state, not to refute). A lease
never lowers it. Only the clean shutdown of the run that last sent it a lease lowers it ("exact":
the run signed nothing above that figure, and its store says the same, so the next start burns
no versions); a later run's lease or read claims the figure first, so an earlier run's exact
message that arrives late is refused and the higher figure stays (the safe side). Bounded: a
figure fits in 63 bits, a run is named by :data:`RUN_ID_BYTES` bytes, a client keeps at most
:data:`MAX_LEASES_PER_CLIENT` channels, and a read names at most :data:`MAX_ASKED` channels.

Protocol (one msgpack map per message, each answered):
``{"t": "lease", "channel": <32 bytes>, "up_to": n, "run": <16 bytes, optional>}`` ->
``{"ok": true, "up_to": held}`` (held: the figure the tower keeps now, n or a higher one; the
figure's run is now ``run``); the same with ``"exact": true`` (``run`` required) sets the figure
to n even if lower, if ``run`` is the run of the figure, else is refused; ``{"t": "leases",
"channels": [<32 bytes>, ...], "run": <16 bytes, optional>}`` -> ``{"ok": true, "leases": [held or
-1, ...]}``, in the order asked (each figure's run is now ``run``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from channels.core.model import Address, ChannelId
from channels.defence.towerproto import MAX_LIST, TowerRefused

LEASE_REQUESTS: Final = frozenset({"lease", "leases"})
MAX_LEASE: Final = (1 << 63) - 1
MAX_LEASES_PER_CLIENT: Final = 100_000
MAX_ASKED: Final = MAX_LIST
#: A run of a client (one ``open_node``) names itself by this many random bytes.
RUN_ID_BYTES: Final = 16

_SCHEMA = """CREATE TABLE IF NOT EXISTS tower_leases (
    client     BLOB NOT NULL,
    channel_id BLOB NOT NULL,
    up_to      INTEGER NOT NULL,
    run        BLOB,
    PRIMARY KEY (client, channel_id)
)"""


class LeaseRefused(TowerRefused):
    """A lease request the tower does not take (the reason says what is wrong)."""


def _channel_id(raw: object) -> ChannelId:
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise LeaseRefused("a lease names a channel by its 32-byte id")
    return ChannelId(raw)


def _run_id(raw: object) -> bytes | None:
    if raw is not None and (not isinstance(raw, bytes) or len(raw) != RUN_ID_BYTES):
        raise LeaseRefused(f"a lease names the client's run by {RUN_ID_BYTES} bytes")
    return raw


class TowerLeases:
    """The leases in the tower's own SQLite file (``conn`` is the tower store's connection;
    ``run`` runs a function in the store's one thread)."""

    def __init__(
        self, conn: sqlite3.Connection, run: Callable[..., Awaitable[Any]]
    ) -> None:
        self._conn = conn
        self._run = run
        conn.execute(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(tower_leases)")}
        if "run" not in columns:  # a tower store written before runs were kept
            conn.execute("ALTER TABLE tower_leases ADD COLUMN run BLOB")

    def _set(
        self, client: Address, cid: ChannelId, up_to: int, run: bytes | None, exact: bool
    ) -> int:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            key = (bytes(client), bytes(cid))
            row = self._conn.execute(
                "SELECT up_to, run FROM tower_leases WHERE client = ? AND channel_id = ?", key
            ).fetchone()
            if row is not None and int(row[0]) > up_to and exact:
                if row[1] is None or bytes(row[1]) != run:
                    raise LeaseRefused(
                        f"the figure (v{int(row[0])}) was set by another run of this client "
                        "since: an exact lease is taken only from the run that set it; the "
                        "tower keeps the higher figure"
                    )
            elif row is not None and int(row[0]) >= up_to:
                # Never lowered: the higher figure is the answer, and it is this run's now.
                self._conn.execute(
                    "UPDATE tower_leases SET run = ? WHERE client = ? AND channel_id = ?",
                    (run, *key),
                )
                return int(row[0])
            if row is None:
                (count,) = self._conn.execute(
                    "SELECT COUNT(*) FROM tower_leases WHERE client = ?", (bytes(client),)
                ).fetchone()
                if count >= MAX_LEASES_PER_CLIENT:
                    raise LeaseRefused(
                        f"the tower keeps leases for at most {MAX_LEASES_PER_CLIENT} channels "
                        "per client"
                    )
            self._conn.execute(
                "INSERT OR REPLACE INTO tower_leases VALUES (?, ?, ?, ?)",
                (bytes(client), bytes(cid), up_to, run),
            )
        return up_to

    def _read(self, client: Address, cids: list[ChannelId], run: bytes | None) -> list[int]:
        held = []
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            for cid in cids:
                key = (bytes(client), bytes(cid))
                row = self._conn.execute(
                    "SELECT up_to FROM tower_leases WHERE client = ? AND channel_id = ?", key
                ).fetchone()
                held.append(-1 if row is None else int(row[0]))
                if row is not None and run is not None:  # read by a later run: its figure now
                    self._conn.execute(
                        "UPDATE tower_leases SET run = ? WHERE client = ? AND channel_id = ?",
                        (run, *key),
                    )
        return held

    async def answer(self, client: Address, req: Mapping[str, Any]) -> dict[str, Any]:
        """The tower's answer to a ``lease`` or ``leases`` request of ``client``."""
        if req.get("t") == "leases":
            asked = req.get("channels")
            if not isinstance(asked, list) or len(asked) > MAX_ASKED:
                raise LeaseRefused(f"a lease read names a list of at most {MAX_ASKED} channels")
            cids = [_channel_id(raw) for raw in asked]
            run = _run_id(req.get("run"))
            return {"ok": True, "leases": await self._run(self._read, client, cids, run)}
        cid = _channel_id(req.get("channel"))
        up_to = req.get("up_to")
        if type(up_to) is not int or not 0 <= up_to <= MAX_LEASE:
            raise LeaseRefused(f"a lease figure is a whole number from 0 to {MAX_LEASE}")
        run = _run_id(req.get("run"))
        exact = req.get("exact", False)
        if type(exact) is not bool or (exact and run is None):
            raise LeaseRefused("an exact lease is a flag (true) sent with the run's id")
        held = await self._run(self._set, client, cid, up_to, run, exact)
        return {"ok": True, "up_to": held}
