"""Small helpers shared by the store's modules: decoding, value checks, row encodings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from channels.core import wire
from channels.core.model import Position, to_checksum
from channels.core.positions import BookSnapshot
from channels.store.errors import CorruptStore, StoreError

INT64_MAX = 2**63 - 1

T = TypeVar("T")


def decoded(what: str, decode: Callable[[bytes], T], blob: bytes) -> T:
    try:
        return decode(bytes(blob))
    except Exception as exc:
        raise CorruptStore(f"cannot decode {what}: {exc}") from exc


def check_version(version: int) -> None:
    if type(version) is not int or not 0 <= version <= INT64_MAX:
        raise StoreError(f"version {version!r} cannot be stored (must be an int in [0, 2**63))")


def position_key(position: Position) -> bytes:
    return int(position.id).to_bytes(8, "big")


def position_blob(slot: int, position: Position) -> bytes:
    return wire.encode_book(BookSnapshot(slot + 1, ((slot, position),)))


def address_text(raw: object) -> str:
    if isinstance(raw, bytes) and len(raw) == 20:
        return to_checksum(raw)
    return repr(raw)


def hex_text(raw: object) -> str:
    return "0x" + bytes(raw).hex() if isinstance(raw, bytes | bytearray | memoryview) else str(raw)


def lease_key(channel_id: bytes) -> str:
    """The ``meta`` key of a channel's version lease (channels/store/lease.py)."""
    return "version_lease:" + channel_id.hex()
