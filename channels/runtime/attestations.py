"""The oracle's signed prices a node was given: what the watcher settles expired positions with
on chain, and the last known price per underlying that the risk limits count losses at."""

from __future__ import annotations

from adjudicator.client import signature_tuple
from channels.core.model import Attestation


class AttestationBook:
    """Signed attestations by (underlying, expiry); a newer one for the same key replaces it."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[bytes, int], tuple[Attestation, bytes]] = {}

    def add(self, attestation: Attestation, signature: bytes) -> None:
        """Keep a signed price. Raises IllegalCall, nothing kept, for a signature the
        adjudicator could never take."""
        signature_tuple(signature)
        self._by_key[(attestation.underlying, attestation.expiry)] = (attestation, signature)

    def get(self, underlying: bytes, expiry: int) -> tuple[Attestation, bytes] | None:
        return self._by_key.get((underlying, expiry))

    def last_prices(self) -> dict[bytes, int]:
        """The price of the latest expiry attested per underlying."""
        latest: dict[bytes, tuple[int, int]] = {}
        for (underlying, expiry), (attestation, _signature) in self._by_key.items():
            if underlying not in latest or expiry > latest[underlying][0]:
                latest[underlying] = (expiry, attestation.price)
        return {underlying: price for underlying, (_e, price) in latest.items()}
