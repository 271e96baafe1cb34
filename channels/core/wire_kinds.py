"""How one value of the wire format is written and read back, checked: the value kinds.

A :class:`Kind` pairs an encoder (exact type and range: what is encoded always decodes to an
equal object) with a decoder (the exact msgpack type, the range, the length). The schemas of
:mod:`channels.core.schema` name a kind per field; ``docs/PROTOCOL.md`` section 9 describes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.core.errors import SchemaError, UnencodableMessage
from channels.core.model import UINT64_MAX, OptionKind
from channels.core.positions import check_high_water


class Unencodable(UnencodableMessage):
    """A value does not fit its field (the codec re-raises it as UnencodableMessage naming the
    message it was encoding)."""


# Value kinds ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Kind:
    """How one field's value is written (``encode``) and read back, checked (``decode``).

    ``encode`` checks the exact type (a bool is not an int) and range, so that what is encoded
    always decodes to an equal object; ``decode(value, name)`` checks the exact msgpack type.
    """

    encode: Callable[[Any], Any]
    decode: Callable[[Any, str], Any]


# The commonest kinds: each checks inline (one call per value, on every trade's hot path).
_TWO_256 = 1 << 256
_TWO_64 = 1 << 64


def _e_u256(value: Any) -> Any:
    if type(value) is not int or not 0 <= value < _TWO_256:
        raise Unencodable(f"expected a uint256, got {value!r}")
    return value.to_bytes(32, "big")


def _e_u64(value: Any) -> Any:
    if type(value) is not int or not 0 <= value < _TWO_64:
        raise Unencodable(f"expected a uint64, got {value!r}")
    return value


def _d_u256(value: Any, name: str) -> Any:
    if type(value) is not bytes or len(value) != 32:
        raise SchemaError(f"{name} must be a 32-byte big-endian bin")
    return int.from_bytes(value, "big")


def decode_u64(value: Any, name: str) -> Any:
    if type(value) is not int or not 0 <= value <= UINT64_MAX:
        raise SchemaError(f"{name} must be a non-negative msgpack int (uint64)")
    return value


def _d_index(value: Any, name: str) -> Any:
    if type(value) is not int or value not in (0, 1):
        raise SchemaError(f"{name} must be participant index 0 or 1")
    return value


def _raw(length: int) -> Kind:
    def encode(value: Any) -> Any:
        if type(value) is not bytes or len(value) != length:
            raise Unencodable(f"expected {length} raw bytes")
        return value

    def decode(value: Any, name: str) -> Any:
        if type(value) is not bytes or len(value) != length:
            raise SchemaError(f"{name} must be a {length}-byte bin")
        return value

    return Kind(encode, decode)


def bounded_text(limit: int) -> Kind:
    """A str of at most ``limit`` characters."""
    def check(value: Any) -> bool:
        return type(value) is str and len(value) <= limit

    def encode(value: Any) -> Any:
        if not check(value):
            raise Unencodable(f"expected a str of at most {limit} characters")
        return value

    def decode(value: Any, name: str) -> Any:
        if not check(value):
            raise SchemaError(f"{name} must be a str of at most {limit} characters")
        return value

    return Kind(encode, decode)


def optional(kind: Kind) -> Kind:
    inner_encode, inner_decode = kind.encode, kind.decode

    def encode(value: Any) -> Any:
        return None if value is None else inner_encode(value)

    def decode(value: Any, name: str) -> Any:
        return None if value is None else inner_decode(value, name)

    return Kind(encode, decode)


def pair_of(kind: Kind) -> Kind:
    def encode(value: Any) -> Any:
        if type(value) is not tuple or len(value) != 2:
            raise Unencodable("expected a pair")
        return (kind.encode(value[0]), kind.encode(value[1]))

    def decode(value: Any, name: str) -> Any:
        if type(value) is not tuple or len(value) != 2:
            raise SchemaError(f"{name} must be an array of two")
        return (kind.decode(value[0], name), kind.decode(value[1], name))

    return Kind(encode, decode)


def _e_bool(value: Any) -> Any:
    if type(value) is not bool:
        raise Unencodable("expected a bool")
    return value


def _d_bool(value: Any, name: str) -> Any:
    if type(value) is not bool:
        raise SchemaError(f"{name} must be a msgpack bool")
    return value


_OPTION_KINDS = {0: OptionKind.CALL, 1: OptionKind.PUT}


def _d_option_kind(value: Any, name: str) -> Any:
    if type(value) is not int or value not in _OPTION_KINDS:
        raise SchemaError(f"{name} must be 0 (call) or 1 (put)")
    return _OPTION_KINDS[value]


U256 = Kind(_e_u256, _d_u256)
U64 = Kind(_e_u64, decode_u64)
INDEX = Kind(U64.encode, _d_index)  # written as any uint64; read back as 0 or 1 only
ADDRESS = _raw(20)
HASH = _raw(32)
SIG = _raw(65)
BOOL = Kind(_e_bool, _d_bool)
OPTION_KIND = Kind(int, _d_option_kind)  # the Position checks its own kind when built
SLOT_COUNT = Kind(check_high_water, lambda v, name: check_high_water(decode_u64(v, name)))
