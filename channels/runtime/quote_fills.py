"""Fills of quotes on a node: the fill rule as the consent rule's
:class:`~channels.core.consent.QuoteAuthority`, the fills in flight, and the fills signed states
report (owned by :class:`~channels.runtime.quoting.QuoteDesk` as ``node.quotes.fills``).

A trade the peer initiated that names a quote of ours is countersigned only if the book accepts
it (:meth:`FillRule.check_fill`), which takes the fill's quantity off the quote at once, so that
two fills that cross can never together exceed its size. The quantity goes back when the update
is not signed after all:

* the consent rule refused the update for another of its trades (:meth:`FillRule.decided`);
* the machine step that checked it did not sign it (it failed, or refused it after the check);
* we proposed it (as leader) and the peer refused it, or it was abandoned on a reconnection
  (``UpdateRefused`` of its version).

It stays taken once the update is signed, or while our proposal of it waits for the peer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from channels.core.consent import Approved, Refusal, Verdict
from channels.core.errors import ChannelError, RuleViolation
from channels.core.model import Address, ChannelId, Timestamp
from channels.core.node_events import Event
from channels.core.options import OpenOption, Trade
from channels.core.protocol import Action, PersistSignature, UpdateApplied, UpdateRefused
from channels.core.quote_book import Fill, QuoteBook
from channels.runtime.quote_events import QuoteFilled
from channels.store.quotes import QuoteEntry

log = logging.getLogger("channels.runtime.quote_fills")


class FillRule:
    """The fill rule of one node and the fills it took (see the module docstring)."""

    def __init__(
        self,
        book: QuoteBook,
        *,
        emit: Callable[[Event], None],
        start_soon: Callable[..., None],
        record: Callable[..., Awaitable[None]],
    ) -> None:
        self._book = book
        self._emit = emit
        self._start_soon = start_soon
        self._record = record
        #: Fills approved by check_fill for the update being decided now.
        self._deciding: list[Fill] = []
        #: Fills of approved updates, per channel, until the machine step that checked them ends.
        self._stepping: dict[bytes, list[tuple[int, list[Fill]]]] = {}

    # the consent rule's QuoteAuthority ---------------------------------------------------------
    def check_fill(
        self, channel_id: ChannelId, peer: Address, trade: Trade, now: int
    ) -> Verdict | None:
        try:
            fill = self._book.check_fill(channel_id, peer, trade, Timestamp(now))
        except RuleViolation as exc:
            return Refusal(exc.rule, str(exc))
        if fill is None:
            return None
        self._deciding.append(fill)
        return Approved(f"a fill of our quote 0x{fill.quote_id.hex()[:16]}")

    def decided(self, channel_id: ChannelId, version: int, approved: bool) -> None:
        fills, self._deciding = self._deciding, []
        if not approved:
            for fill in fills:
                self._book.release(fill)
        elif fills:
            self._stepping.setdefault(channel_id, []).append((version, fills))

    # machine steps ---------------------------------------------------------------------------
    def after_step(self, channel_id: ChannelId, actions: list[Action] | None) -> None:
        """A machine step of the channel ended with ``actions`` (None: it raised)."""
        book = self._book
        checked = self._stepping.pop(channel_id, None)
        if checked is None:
            if not book.holding:
                return  # no fill checked in this step and none in flight: nothing to settle
            checked = []
        if actions is None:
            for _version, fills in checked:
                for fill in fills:
                    book.release(fill)
            return
        proposed = {a.version for a in actions if isinstance(a, PersistSignature)}
        applied = max(
            (a.update.signed.state.version for a in actions if isinstance(a, UpdateApplied)),
            default=None,
        )
        for version, fills in checked:
            if version in proposed:  # our proposal: taken until the peer answers
                book.hold(channel_id, version, fills)
            elif applied is None or version > applied:  # refused after the check
                for fill in fills:
                    book.release(fill)
        for action in actions:
            if isinstance(action, UpdateRefused) and action.version is not None:
                book.dropped(channel_id, action.version)
        if applied is not None:
            book.signed(channel_id, applied)

    # signed states -----------------------------------------------------------------------------
    def on_update(self, channel_id: ChannelId, version: int, trades: tuple[Trade, ...]) -> None:
        """A signed state: report fills of quotes (ours or the peer's) in it."""
        entries: list[QuoteEntry] = []
        for trade in trades:
            if not isinstance(trade, OpenOption) or trade.quote_id is None:
                continue
            booked = self._book.get(trade.quote_id)
            if booked is None:
                continue
            if not booked.ours:
                self._book.record_fill_seen(trade.quote_id, trade.position.quantity)
            quantity = trade.position.quantity
            entries.append(
                QuoteEntry(channel_id, "filled", trade.quote_id, quantity=quantity, version=version)
            )
            self._emit(
                QuoteFilled(
                    channel_id,
                    trade.quote_id,
                    quantity,
                    trade.premium,
                    booked.remaining,
                    booked.ours,
                    trade.position.id,
                )
            )
        if entries:
            self._start_soon(self._record_quietly, entries)

    async def _record_quietly(self, entries: list[QuoteEntry]) -> None:
        try:
            await self._record(*entries)
        except ChannelError as exc:  # the state is stored; the audit row is a copy
            log.warning("could not record a fill in the quote audit trail: %s", exc)
