"""After a restart: the quote book again, from the audit trail of the store (the quotes we issued
or received that are still live) and the signed history of their channels (what was filled)."""

from __future__ import annotations

from typing import Protocol

from channels.core.model import ChannelId
from channels.core.options import OpenOption
from channels.core.protocol import ChannelMachine
from channels.core.quote_book import BookedQuote, QuoteBook, QuoteStatus
from channels.store import AsyncStore
from channels.store.quotes import QuoteRecord


class RestoreHost(Protocol):
    """What restoring reads of the node."""

    @property
    def store(self) -> AsyncStore: ...
    def now(self) -> int: ...
    def machine(self, channel_id: bytes) -> ChannelMachine | None: ...


async def restore_book(book: QuoteBook, node: RestoreHost, records: list[QuoteRecord]) -> int:
    """Book the live quotes of ``records`` with their fills; returns how many are live."""
    now = node.now()
    dead = {r.quote_id for r in records if r.kind in ("withdrawn", "expired")}
    replaced = {r.signed.quote.replaces for r in records if r.signed is not None}
    candidates = [
        r
        for r in records
        if r.kind in ("issued", "received")
        and r.signed is not None
        and r.quote_id not in dead
        and r.signed.quote.valid_until > now
    ]
    filled: dict[bytes, int] = {}
    for channel_id in {r.channel_id for r in candidates}:
        for update in await node.store.history(ChannelId(channel_id)):
            for trade in update.trades:
                if isinstance(trade, OpenOption) and trade.quote_id is not None:
                    quantity = trade.position.quantity
                    filled[trade.quote_id] = filled.get(trade.quote_id, 0) + quantity
    live = 0
    for r in candidates:
        assert r.signed is not None
        machine = node.machine(r.channel_id)
        if machine is None:
            continue
        ours = r.kind == "issued"
        quote = r.signed.quote
        booked = BookedQuote(
            r.signed,
            machine.peer_address,
            ours,
            machine.index if ours else 1 - machine.index,
            min(quote.max_quantity, filled.get(quote.quote_id, 0)),
        )
        if quote.quote_id in replaced:
            booked.status = QuoteStatus.REPLACED
        elif booked.remaining == 0:
            booked.status = QuoteStatus.FILLED
        else:
            live += 1
        book.restore(booked)
    return live
