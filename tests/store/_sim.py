"""Real, rule-checked, doubly signed updates for store tests (no I/O, no machine plumbing).

:class:`Sim` plays both participants of one channel: it applies trades with the options rules
(``apply_trades``) to its own :class:`PositionBook` and signs each state with both keys, as a pair
of machines would. Its book is the reference the store's book must match.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from channels.core import eip712
from channels.core.hashing import keccak256
from channels.core.model import (
    PRICE_SCALE,
    QUANTITY_SCALE,
    Address,
    Amount,
    ChannelId,
    OptionKind,
    Params,
    Position,
    PositionId,
    Price,
    Quantity,
    SignedState,
    SignedUpdate,
    State,
    Timestamp,
    Version,
    symbol,
)
from channels.core.options import (
    Context,
    CreditDeposit,
    OpenOption,
    Pay,
    Trade,
    Unwind,
    apply_trades,
    opening_state,
)
from channels.core.positions import BookChanges, PositionBook
from channels.core.protocol import PersistState, Phase
from channels.core.signing import LocalSigner

CHAIN_ID = 31337
ADJUDICATOR = Address(bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
OTHER_ADJUDICATOR = Address(bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512"))
ASSET = Address(bytes.fromhex("9fe46736679d2d9a65f0992f2272de9f3c7fa6e0"))
ORACLE = LocalSigner(keccak256(b"store-oracle"))
NOW = 1_700_000_000
DAY = 86_400
DEPOSIT = 10**15


def signer(name: str) -> LocalSigner:
    return LocalSigner(keccak256(name.encode()))


ALICE = signer("store-alice")
BOB = signer("store-bob")


def make_params(nonce: int = 1, chain_id: int = CHAIN_ID) -> Params:
    return Params(
        chain_id=chain_id,
        adjudicator=ADJUDICATOR,
        asset=ASSET,
        asset_decimals=6,
        participants=(ALICE.address, BOB.address),
        challenge_period=3600,
        oracle=ORACLE.address,
        nonce=nonce,
    )


@dataclass
class Sim:
    """Both sides of one channel. ``updates`` holds every fully signed update, in order."""

    nonce: int = 1
    params: Params = field(init=False)
    book: PositionBook = field(default_factory=PositionBook)
    updates: list[SignedUpdate] = field(default_factory=list)
    next_position: int = 1
    skip: int = 0  # burned versions to skip before the next update
    #: Per version, the slots its update changed (as a machine's book reports them).
    changes: dict[int, BookChanges | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = make_params(self.nonce)
        self.domain = eip712.Domain(self.params.chain_id, self.params.adjudicator)
        self.ctx = Context(self.params, self.domain, Timestamp(NOW), (DEPOSIT, DEPOSIT))

    @property
    def channel_id(self) -> ChannelId:
        return self.params.channel_id

    @property
    def latest(self) -> SignedUpdate:
        return self.updates[-1]

    @property
    def phase(self) -> Phase:
        return Phase.OPEN if len(self.updates) > 1 else Phase.FUNDING

    def sign(self, state: State, trades: tuple[Trade, ...] = ()) -> SignedUpdate:
        digest = eip712.state_digest(self.domain, state)
        sigs = (ALICE.sign_digest(digest), BOB.sign_digest(digest))
        return SignedUpdate(SignedState(state, sigs), trades)

    def open(self) -> SignedUpdate:
        """Version 0, then version 1 crediting both deposits."""
        self.updates.append(self.sign(opening_state(self.params)))
        return self.update(CreditDeposit(0, Amount(DEPOSIT)), CreditDeposit(1, Amount(DEPOSIT)))

    def update(self, *trades: Trade) -> SignedUpdate:
        base = self.latest.signed.state
        version = Version(base.version + 1 + self.skip)
        self.skip = 0
        self.book.begin()
        new = apply_trades(base, self.book, trades, self.ctx, version)
        upd = self.sign(new, tuple(trades))
        self.updates.append(upd)
        self.changes[upd.signed.state.version] = self.book.commit_oldest()
        return upd

    def persist(self, update: SignedUpdate) -> PersistState:
        """The ``PersistState`` a machine hands its store for ``update``: with the slots the
        update changed."""
        changes = self.changes.get(update.signed.state.version)
        return PersistState(self.channel_id, update, changes=changes)

    def option(self, writer: int = 0, kind: OptionKind = OptionKind.CALL) -> OpenOption:
        pid = self.next_position
        self.next_position += 1
        position = Position(
            id=PositionId(pid),
            underlying=symbol("ETH-USD"),
            kind=kind,
            strike=Price(2_000 * PRICE_SCALE + pid),
            expiry=Timestamp(NOW + 30 * DAY),
            quantity=Quantity(QUANTITY_SCALE // 10),
            writer=writer,
            collateral=Amount(1_000_000 + pid),
        )
        return OpenOption(position, Amount(1_000))

    def unwind(self, pid: int, share: int = 10) -> Unwind:
        return Unwind(PositionId(pid), Amount(share))

    def pay(self, amount: int = 1, payer: int = 0) -> Pay:
        return Pay(payer, Amount(amount))

    def random_update(self, rng: random.Random) -> SignedUpdate:
        """One update of 1-4 random trades: opens, unwinds (often reusing freed slots), pays."""
        trades: list[Trade] = []
        open_ids = [p.id for p in self.book]
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.45 or not open_ids:
                trades.append(self.option(writer=rng.randint(0, 1)))
            elif roll < 0.85:
                pid = open_ids.pop(rng.randrange(len(open_ids)))
                trades.append(self.unwind(pid, rng.randint(0, 1000)))
            else:
                trades.append(self.pay(rng.randint(1, 1000), rng.randint(0, 1)))
        return self.update(*trades)
