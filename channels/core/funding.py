"""When a deposit counts as made: the chain's measured amount against the agreed one.

Deposits are agreed gross (what each side sends). A token that takes a fee on transfer (USDT
with its fee switched on, deflationary tokens) credits the adjudicator less than was sent, so
waiting for the gross amount waits for ever. A side counts as funded once the chain credits at
least the agreed amount less ``max_fee_bps`` basis points; what is credited is what the chain
measured, never the gross figure. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

BPS = 10_000


def net_floor(agreed: int, max_fee_bps: int) -> int:
    """The least credit that counts as ``agreed`` sent through a fee of at most ``max_fee_bps``."""
    if not 0 <= max_fee_bps < BPS:
        raise ValueError(f"max_fee_bps must be in [0, {BPS}), not {max_fee_bps}")
    return agreed - agreed * max_fee_bps // BPS


def funded(deposited: Sequence[int], agreed: Sequence[int], max_fee_bps: int) -> bool:
    """Both sides have made their agreed deposits, as the chain measured them."""
    return all(deposited[i] >= net_floor(agreed[i], max_fee_bps) for i in (0, 1))
