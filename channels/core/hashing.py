"""keccak256, the one hash of the protocol.

safe-pysha3 is 2-6x faster than pycryptodome on short inputs (measured when we chose it), so
the hot path uses it directly and falls back to eth-hash when it is absent. ``keccak256`` is
defined once per case, not as a wrapper around a second function: an update hashes a few hundred
times (leaves and Merkle nodes), and the extra call was a visible share of it.
"""

from __future__ import annotations

try:
    from sha3 import keccak_256 as _keccak_256  # safe-pysha3

    def keccak256(data: bytes) -> bytes:
        """Return the 32-byte keccak256 digest of ``data``."""
        return _keccak_256(data).digest()  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - exercised only without safe-pysha3
    from eth_hash.auto import keccak as _eth_keccak

    def keccak256(data: bytes) -> bytes:
        """Return the 32-byte keccak256 digest of ``data``."""
        return _eth_keccak(data)
