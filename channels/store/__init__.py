"""The node's durable store: SQLite in WAL mode behind the write-before-send rule.

One database file belongs to ONE identity (the node's address) on ONE chain (chain id and
adjudicator); :meth:`Store.open` refuses any other file with a typed error and never touches it:

* not SQLite, truncated, failing ``PRAGMA quick_check``   -> :class:`CorruptStore`
* another program's database, another identity or chain   -> :class:`ForeignStore`
* written by a newer version of this program              -> :class:`SchemaTooNew`
* already open in another process                         -> :class:`StoreInUse`

Durability (docs/THREATS.md S3): ``journal_mode=WAL`` and ``synchronous=FULL`` by default, so a
commit survives a power loss, not only a crash of the process. ``NORMAL`` is accepted for
benchmarks. The file is held with ``locking_mode=EXCLUSIVE``: two nodes can never write one store.

Tables (schema version 1, ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file):

``meta``            key/value: identity, chain_id, adjudicator, created_at, last_clean_shutdown,
                    and per channel ``version_lease:<id hex>``, the version lease (lease.py)
``channels``        one row per channel: params (wire blob), our index, deposits, phase, endpoint,
                    and the head of its history (version, link) and of its book (high water)
``states``          append-only, hash-chained history of every fully signed state:
                    ``link = keccak(prev_link ‖ state_hash ‖ version as 8 bytes)``, the first
                    ``prev_link`` is 32 zero bytes, ``state_hash`` is the EIP-712 struct hash;
                    ``blob_hash = keccak(update blob)`` covers trades and signatures too.
                    The channel row names the head link, so a lost tail is detected as well.
``signed_versions`` "I signed version n = hash H": one hash per (channel, version), forever;
                    written for every stored state and for a signature outside a lease.
                    ``highest_signed`` is the higher of its maximum and the version lease.
``book_positions``  the open positions of the latest state, one row per slot.
``chain_intents``   transactions we intend to send / sent (W3, W7), rebroadcast after a restart.
``chain_cursor``    how far the chain follower got (block number and hash), by name.

UPDATE and DELETE on ``states`` and ``signed_versions`` are refused by triggers.

Book persistence (the design choice)
------------------------------------
The positions of the latest state are rows ``(channel_id, slot, position)``, changed in the SAME
transaction as the state that changed them. Only the changed slots are written, so an update
costs the same at 1,000 open positions as at none (a full snapshot per update would rewrite every
position; replaying trades from a periodic snapshot would need the rules' clock and deposit
context, which cannot be reproduced faithfully later).

The changed slots come from the state machine: its book reports, per committed change set,
the slots it changed and the slot count after it (``BookChanges``), and ``PersistState`` carries
them. The machine applied the trades and checked the resulting root against the signed state
before it signed, so the store does not re-derive the book (no Merkle tree is kept here; that
cost ~65 µs per trade per side). The store keeps the open positions per slot and checks the
changes cheaply before anything is written: slots below the slot count, which never shrinks; no
position open twice; the resulting count and locked collateral equal the state's. An update
given without its changes (``AppendState``, or tests) has them derived here from its trades on a
whole :class:`PositionBook` (``OpenOption`` adds in the lowest free slot, ``Unwind``/``Settle``
remove), and its root is checked too. When the book did not come from the trades on top of the
stored latest (a state adopted on reestablish), the caller passes the book snapshot instead
(``book=``); the rows are then replaced and the root checked. :meth:`Store.load_channels`
rebuilds the book from the rows and checks its root against the latest state.

Grouped commits
---------------
:meth:`Store.apply` commits a batch of operations in one transaction; :meth:`Store.apply_groups`
commits several callers' batches in one transaction, each in its own savepoint, so one caller's
refused operation (an :class:`Equivocation`, say) does not fail the others. :class:`AsyncStore`
(from :func:`open_store`) runs every call in one long-lived writer thread and combines concurrent
:meth:`AsyncStore.persist` calls into the next transaction; each caller returns only once its
operations are durable. It keeps a ``PersistSignature`` with a version lease
(channels/store/lease.py): a signature inside the durable lease needs no commit.
"""

from channels.store.asynchronous import AsyncStore, open_store
from channels.store.errors import CorruptStore, ForeignStore, SchemaTooNew, StoreError, StoreInUse
from channels.store.history import chain_link, trade_summary
from channels.store.ops import (
    OPEN_INTENTS,
    AddChannel,
    AddIntent,
    AppendState,
    Cursor,
    DeleteIntent,
    Intent,
    IntentStatus,
    Op,
    Results,
    SetCursor,
    StoredChannel,
    StoreStats,
    UpdateIntent,
)
from channels.store.persister import Persister
from channels.store.rows import T as T
from channels.store.schema import APPLICATION_ID, SCHEMA_VERSION
from channels.store.schema import SYNCHRONOUS_MODES as SYNCHRONOUS_MODES
from channels.store.schema import ZERO_LINK as ZERO_LINK
from channels.store.sync import Store
from channels.store.writer import PersistTicket

__all__ = [
    "APPLICATION_ID",
    "OPEN_INTENTS",
    "SCHEMA_VERSION",
    "AddChannel",
    "AddIntent",
    "AppendState",
    "AsyncStore",
    "CorruptStore",
    "Cursor",
    "DeleteIntent",
    "ForeignStore",
    "Intent",
    "IntentStatus",
    "Op",
    "PersistTicket",
    "Persister",
    "Results",
    "SchemaTooNew",
    "SetCursor",
    "Store",
    "StoreError",
    "StoreInUse",
    "StoreStats",
    "StoredChannel",
    "UpdateIntent",
    "chain_link",
    "open_store",
    "trade_summary",
]
