"""keccak256, the one hash of the protocol.

safe-pysha3 is 2-6x faster than pycryptodome on short inputs (measured when we chose it), so
the hot path uses it directly and falls back to eth-hash when it is absent.
"""

from __future__ import annotations

from collections.abc import Callable

_keccak: Callable[[bytes], bytes]
try:
    import sha3 as _sha3  # safe-pysha3

    def _keccak(data: bytes) -> bytes:
        return _sha3.keccak_256(data).digest()  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - exercised only without safe-pysha3
    from eth_hash.auto import keccak as _eth_keccak

    def _keccak(data: bytes) -> bytes:
        return _eth_keccak(data)


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte keccak256 digest of ``data``."""
    return _keccak(data)
