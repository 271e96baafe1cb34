"""The store's errors, under the one error tree (:mod:`channels.core.errors`): misuse of the store
is Local, a damaged file is Remote (it came from outside: the disk, a bad backup)."""

from __future__ import annotations

from channels.core.errors import LocalError, RemoteError


class StoreError(LocalError):
    """The node's database cannot be used as asked (the message says why)."""


class CorruptStore(RemoteError):
    """The database file is damaged: not SQLite, truncated, failing its integrity check, or its
    history chain does not verify. The node must not start (and never signs) on it."""


class ForeignStore(StoreError):
    """The database belongs to another identity, another chain or adjudicator, or another
    program."""


class SchemaTooNew(StoreError):
    """The database was written by a newer version of this program (its schema is unknown)."""


class StoreInUse(StoreError):
    """Another process (or another open store) holds the database."""
