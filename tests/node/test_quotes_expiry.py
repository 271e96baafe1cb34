"""A quote expires by chain time on both desks: QuoteExpired events, audit rows, no more fills."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.core.model import QUANTITY_SCALE
from channels.core.quotes import QuoteExpired as QuoteExpiredError
from channels.runtime.quote_events import QuoteExpired

from ._helpers import WEEK
from ._quoting import STRIKE, advance_chain, flat_pricer, quoting_pair
from .conftest import Desks


async def test_quotes_expire_on_both_desks_by_chain_time(desks: Desks, tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with quoting_pair(desks, tmp_path, bob_pricer=flat_pricer) as (alice, bob, ch, bch):
            signed = await ch.request_quote(
                "ETH", "call", STRIKE, alice.now() + WEEK, QUANTITY_SCALE, "buy"
            )
            quote_id = signed.quote.quote_id
            async with alice.events() as a_events, bob.events() as b_events:
                await advance_chain(desks, 3600, alice, bob)
                for events, ours in ((b_events, True), (a_events, False)):
                    while True:
                        event = await events.receive()
                        if isinstance(event, QuoteExpired) and event.quote_id == quote_id:
                            assert event.ours is ours
                            break
            with pytest.raises(QuoteExpiredError):
                await ch.fill_quote(signed)
            assert bob.quotes.live(ch.id) == [] and alice.quotes.live(ch.id) == []
            for node in (alice, bob):
                with trio.fail_after(10):
                    while "expired" not in [r.kind for r in await node.quotes.audit(ch.id)]:
                        await trio.sleep(0.05)
            assert bch.version == ch.version
