"""The trading surface of one channel, as a bot uses it.

Every call that changes the channel becomes a request to the channel's state machine and returns
once the new state is fully signed and stored by both sides (or raises the typed error that says
which rule refused it). Amounts are ints in the asset's smallest unit; prices have 8 decimals and
quantities 18 (docs/PROTOCOL.md section 1).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from channels.core import eip712
from channels.core.errors import InvalidField
from channels.core.model import (
    Address,
    Amount,
    Attestation,
    ChannelId,
    OptionKind,
    Params,
    Position,
    PositionId,
    Price,
    Quantity,
    SignedState,
    State,
    Timestamp,
    symbol,
)
from channels.core.options import (
    OpenOption,
    Pay,
    Settle,
    Trade,
    Unwind,
)
from channels.core.positions import BookSnapshot
from channels.core.protocol import Phase
from channels.core.quotes import SignedQuote
from channels.runtime.channel_runtime import ChannelRuntime
from channels.runtime.quoting import QuoteDesk

_ID_SIDE_BIT = 1 << 62


class Channel:
    """A handle on one channel of a node. Get it from ``node.open_channel`` or ``node.channel``.

    It owns the channel's runtime; every read below is a view (nothing returned changes the
    channel)."""

    def __init__(self, runtime: ChannelRuntime, our_address: Address, quotes: QuoteDesk) -> None:
        self._runtime = runtime
        self._quotes = quotes
        self._machine = runtime.machine
        self._our_address = our_address
        # Position ids: one bit says which side chose it, so crossing requests never collide.
        start = max(
            (
                p.id & (_ID_SIDE_BIT - 1)
                for p in self._machine.book
                if p.id & _ID_SIDE_BIT == self._side_bit
            ),
            default=0,
        )
        self._position_ids = itertools.count(start + 1)

    @property
    def _side_bit(self) -> int:
        return _ID_SIDE_BIT if self._machine.index == 1 else 0

    # reading ------------------------------------------------------------------------------------
    @property
    def id(self) -> ChannelId:
        return self._machine.channel_id

    @property
    def params(self) -> Params:
        return self._machine.params

    @property
    def domain(self) -> eip712.Domain:
        """The EIP-712 domain every state of this channel is signed in."""
        return self._machine.domain

    @property
    def our_index(self) -> int:
        return self._machine.index

    @property
    def peer_address(self) -> Address:
        return self._machine.peer_address

    @property
    def phase(self) -> Phase:
        return self._machine.phase

    @property
    def state(self) -> State:
        """The latest fully signed state."""
        return self._machine.state

    @property
    def latest(self) -> SignedState:
        """The latest state with its signatures (both, once it is fully signed)."""
        return self._machine.latest.signed

    @property
    def version(self) -> int:
        return self._machine.state.version

    @property
    def highest_signed(self) -> int:
        """The highest version we ever signed (never sign another state at or below it)."""
        return self._machine.highest_signed

    @property
    def in_sync(self) -> bool:
        """False from a lost link (or a restart) until the peer's reestablish has arrived."""
        return not self._machine.reestablishing

    @property
    def known_current(self) -> bool:
        """Whether the node knows its latest state is the newest signed (false after a start
        until the peer, a tower or the chain has shown it: channels/runtime/currency.py)."""
        return self._machine.synced

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Versions proposed and not yet countersigned, oldest first."""
        return tuple(self._machine.pending_versions)

    @property
    def confirmed_deposits(self) -> tuple[int, int]:
        """Each side's deposit as the chain confirms it."""
        return self._machine.confirmed_deposits

    @property
    def our_balance(self) -> int:
        return self._machine.state.balances[self.our_index]

    @property
    def their_balance(self) -> int:
        return self._machine.state.balances[1 - self.our_index]

    @property
    def deposits(self) -> tuple[int, int]:
        """What each participant agreed to deposit when the channel was opened."""
        return self._machine.deposits

    @property
    def positions(self) -> list[Position]:
        """Open positions (on the leader, including those of proposals still in flight)."""
        return list(self._machine.book)

    def book_snapshot(self) -> BookSnapshot:
        """A copy of the position book (slots and positions), e.g. to check a proof."""
        return self._machine.book.snapshot()

    def proof(self, position_id: int) -> list[bytes]:
        return self._machine.book.proof(PositionId(position_id))

    def new_position_id(self) -> int:
        """A fresh position id chosen by our side (never collides with the peer's)."""
        return self._side_bit | next(self._position_ids)

    # firm quotes (channels/runtime/quoting.py) ----------------------------------------------
    async def request_quote(
        self,
        underlying: str | bytes,
        kind: str | OptionKind,
        strike: int,
        expiry: int,
        quantity: int,
        side: str,
        timeout: float = 10.0,
    ) -> SignedQuote:
        """Ask the peer for a firm quote; ``side`` is ours ("buy" or "sell")."""
        return await self._quotes.request_quote(
            self.id,
            underlying=underlying,
            kind=kind,
            strike=strike,
            expiry=expiry,
            quantity=quantity,
            side=side,
            timeout=timeout,
        )

    async def offer_quote(
        self,
        underlying: str | bytes,
        kind: str | OptionKind,
        strike: int,
        expiry: int,
        side: str,
        *,
        price: int,
        collateral: int,
        max_quantity: int,
        valid_for: int = 30,
        replaces: bytes | None = None,
    ) -> SignedQuote:
        """Stream an unsolicited firm quote to the peer; ``side`` is the PEER's side."""
        return await self._quotes.offer(
            self.id,
            underlying=underlying,
            kind=kind,
            strike=strike,
            expiry=expiry,
            side=side,
            price=price,
            collateral=collateral,
            max_quantity=max_quantity,
            valid_for=valid_for,
            replaces=replaces,
        )

    async def fill_quote(self, quote: SignedQuote | bytes, quantity: int | None = None) -> Position:
        """Fill the peer's quote (all that is left, or ``quantity``) in one update."""
        quote_id = quote.quote.quote_id if isinstance(quote, SignedQuote) else quote
        return await self._quotes.fill(self.id, quote_id, quantity)

    # building trades ----------------------------------------------------------------------------
    def new_position(
        self,
        *,
        kind: str | OptionKind,
        underlying: str | bytes,
        strike: int,
        expiry: int,
        quantity: int,
        collateral: int,
        writer: int,
    ) -> Position:
        """A position with a fresh id of ours, for :class:`OpenOption` trades batched in one
        :meth:`trade`; ``writer`` is the index of the side that writes (and collateralises) it."""
        if isinstance(kind, str):
            try:
                kind = OptionKind[kind.upper()]
            except KeyError:
                raise InvalidField(f"kind must be 'call' or 'put', not {kind!r}") from None
        raw_underlying = symbol(underlying) if isinstance(underlying, str) else underlying
        return Position(
            id=PositionId(self.new_position_id()),
            underlying=raw_underlying,
            kind=kind,
            strike=Price(strike),
            expiry=Timestamp(expiry),
            quantity=Quantity(quantity),
            writer=writer,
            collateral=Amount(collateral),
        )

    # trading ------------------------------------------------------------------------------------
    async def trade(self, *trades: Trade) -> State:
        """Put several trades in one state (one signature round for all of them)."""
        return await self._runtime.submit(tuple(trades))

    async def pay(self, amount: int) -> State:
        """Pay ``amount`` to the peer."""
        return await self.trade(Pay(self.our_index, Amount(amount)))

    async def write_option(
        self,
        *,
        kind: str | OptionKind,
        underlying: str | bytes,
        strike: int,
        expiry: int,
        quantity: int,
        premium: int,
        collateral: int,
    ) -> Position:
        """Sell an option to the peer: it pays ``premium``, we lock ``collateral``."""
        position = self.new_position(
            kind=kind,
            underlying=underlying,
            strike=strike,
            expiry=expiry,
            quantity=quantity,
            collateral=collateral,
            writer=self.our_index,
        )
        await self.trade(OpenOption(position, Amount(premium)))
        return position

    async def buy_option(
        self,
        *,
        kind: str | OptionKind,
        underlying: str | bytes,
        strike: int,
        expiry: int,
        quantity: int,
        premium: int,
        collateral: int,
    ) -> Position:
        """Buy an option from the peer: we pay ``premium``, the peer locks ``collateral``."""
        position = self.new_position(
            kind=kind,
            underlying=underlying,
            strike=strike,
            expiry=expiry,
            quantity=quantity,
            collateral=collateral,
            writer=1 - self.our_index,
        )
        await self.trade(OpenOption(position, Amount(premium)))
        return position

    async def unwind(self, position_id: int, holder_share: int) -> State:
        """Close a position early: the holder gets ``holder_share`` of its collateral."""
        return await self.trade(Unwind(PositionId(position_id), Amount(holder_share)))

    async def settle(self, position_id: int, attestation: Attestation, signature: bytes) -> State:
        """Settle an expired position with the oracle's signed price, off chain."""
        return await self.trade(Settle(PositionId(position_id), attestation, signature))

    async def settle_expired(
        self, attestations: Sequence[tuple[Attestation, bytes]]
    ) -> State | None:
        """Settle every expired open position for which an attestation is given, in one state."""
        by_key = {(a.underlying, a.expiry): (a, s) for a, s in attestations}
        trades: list[Trade] = []
        for position in self.positions:
            found = by_key.get((position.underlying, position.expiry))
            if found is not None:
                trades.append(Settle(position.id, found[0], found[1]))
        if not trades:
            return None
        return await self.trade(*trades)

    async def top_up(self, amount: int) -> State:
        """Deposit more on chain, wait for its confirmation, then credit it in a new state."""
        return await self._runtime.top_up(amount)

    async def withdraw(self, amount: int, recipient: Address | None = None) -> State:
        """Take ``amount`` out while the channel stays open (co-signed, executed on chain)."""
        return await self._runtime.withdraw(amount, recipient or self._our_address)

    async def close(self) -> None:
        """Agree a final state with the peer and conclude it on chain in one transaction."""
        await self._runtime.close()

    async def wait_phase(self, *phases: Phase) -> Phase:
        return await self._runtime.wait_phase(phases)

    async def wait_version(self, version: int) -> State:
        """Wait until the latest fully signed state is at least ``version`` and stored in our
        store (an export or a restart then has it).

        A follower's own update completes as soon as it has countersigned and stored it; the
        leader stores it when the countersignature arrives, a moment later.
        """
        return await self._runtime.wait_version(version)

    def __repr__(self) -> str:
        return f"Channel(0x{self.id.hex()[:12]}…, v{self.version}, {self.phase.value})"
