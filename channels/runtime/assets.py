"""The decimals of each asset, as the chain says them (never as a peer's proposal claims them).

A channel's params carry ``asset_decimals``, and everything a desk shows or limits in asset units
(the quote table, the risk limits, amounts typed as ``1.5``) is scaled by them. The opener chose
them, so the node checks them against the chain before it signs or funds anything: 18 for ETH
(the zero address), the token's ``decimals()`` otherwise, read the first time the node needs
them and kept for the node's life (as the CLI desk reads its configured assets' decimals once at
start); a failed read is not kept, so the next proposal asks the chain again.

The table is bounded: only assets that passed our terms (or that a peer let in by our
``accept_channel`` callback proposes) are ever read, and past ``capacity`` the least recently
used entry is dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from channels.core.model import Address

#: Assets whose decimals a node keeps at once (each an address and a small int).
CAPACITY = 1024


class AssetDecimals:
    """``await decimals.of(asset)``: the asset's decimals, read once through ``read``."""

    def __init__(self, read: Callable[[Address], Awaitable[int]], capacity: int = CAPACITY) -> None:
        self._read = read
        self._capacity = capacity
        self._known: OrderedDict[Address, int] = OrderedDict()

    async def of(self, asset: Address) -> int:
        """The decimals of ``asset``; raises what the read raises (nothing is kept then)."""
        known = self._known.get(asset)
        if known is not None:
            self._known.move_to_end(asset)
            return known
        value = await self._read(asset)
        self._known[asset] = value
        while len(self._known) > self._capacity:
            self._known.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._known)


__all__ = ["CAPACITY", "AssetDecimals"]
