"""Two channel machines wired together with no I/O (h11's ConnectionPair idea).

Messages travel through in-memory queues that a test delivers, drops, reorders or replays at will.
The pair records every signature that left each side and every state each side stored, so the
protocol's invariants can be asserted after any sequence of events.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from channels.core import eip712
from channels.core.consent import Approved, UpdateView, Verdict
from channels.core.hashing import keccak256
from channels.core.messages import Accept, Message, OpenProposal, Proposal
from channels.core.model import Address, Params, symbol
from channels.core.protocol import (
    Action,
    ChannelMachine,
    Config,
    DepositsObserved,
    Disconnected,
    PersistSignature,
    PersistState,
    Received,
    Reconnected,
    RequestUpdate,
    Send,
    UpdateApplied,
    UpdateRefused,
)
from channels.core.signing import LocalSigner

CHAIN_ID = 31337
ADJUDICATOR = Address(bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
ASSET = Address(bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512"))
ORACLE_SIGNER = LocalSigner(keccak256(b"oracle"))
ETH_USD = symbol("ETH-USD")
NOW = 1_700_000_000
DAY = 86_400


def consent_to_everything(_view: UpdateView) -> Verdict:
    return Approved("the test desk consents to every trade")


def make_signer(name: str) -> LocalSigner:
    return LocalSigner(keccak256(name.encode()))


def make_params(a: LocalSigner, b: LocalSigner, nonce: int = 1, chain_id: int = CHAIN_ID) -> Params:
    return Params(
        chain_id=chain_id,
        adjudicator=ADJUDICATOR,
        asset=ASSET,
        asset_decimals=6,
        participants=(a.address, b.address),
        challenge_period=3600,
        oracle=ORACLE_SIGNER.address,
        nonce=nonce,
    )


@dataclass
class Side:
    name: str
    signer: LocalSigner
    machine: ChannelMachine | None = None
    inbox: list[Message] = field(default_factory=list)
    stored: dict[int, bytes] = field(default_factory=dict)  # version -> state struct hash
    signed: dict[int, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    applied: list[UpdateApplied] = field(default_factory=list)
    refused: list[UpdateRefused] = field(default_factory=list)
    events: list[Action] = field(default_factory=list)

    @property
    def m(self) -> ChannelMachine:
        assert self.machine is not None
        return self.machine


class Pair:
    """Alice is participant 0 (the leader), Bob participant 1 (the follower)."""

    def __init__(self, deposits: tuple[int, int] = (1_000_000, 1_000_000), open_: bool = True):
        self.alice = Side("alice", make_signer("alice"))
        self.bob = Side("bob", make_signer("bob"))
        self.params = make_params(self.alice.signer, self.bob.signer)
        self.config = Config(CHAIN_ID, ADJUDICATOR)
        self.domain = eip712.Domain(CHAIN_ID, ADJUDICATOR)
        self.now = NOW
        self.deposits = deposits
        self._next_request = 1
        if open_:
            self.open_and_fund()

    def peer(self, side: Side) -> Side:
        return self.bob if side is self.alice else self.alice

    # plumbing ---------------------------------------------------------------------------------
    def perform(self, side: Side, actions: list[Action]) -> None:
        """Do what the shell does, checking the write-before-send rule as it goes."""
        for action in actions:
            side.events.append(action)
            if isinstance(action, PersistSignature):
                side.signed[action.version].add(action.state_hash)
            elif isinstance(action, PersistState):
                state = action.update.signed.state
                h = eip712.state_struct_hash(state)
                side.stored[state.version] = h
                side.signed[state.version].add(h)
            elif isinstance(action, Send):
                self._check_recorded_before_send(side, action.message)
                self.peer(side).inbox.append(action.message)
            elif isinstance(action, UpdateApplied):
                side.applied.append(action)
            elif isinstance(action, UpdateRefused):
                side.refused.append(action)

    def _check_recorded_before_send(self, side: Side, msg: Message) -> None:
        if isinstance(msg, Proposal):
            h = eip712.state_struct_hash(msg.state)
            assert h in side.signed[msg.state.version], "signature left before it was recorded"
        if isinstance(msg, Accept):
            assert msg.version in side.stored, "accept sent before the state was stored"

    def handle(self, side: Side, event: object) -> list[Action]:
        actions = side.m.handle(event, now=self.now)  # type: ignore[arg-type]
        self.perform(side, actions)
        return actions

    def deliver_one(self, side: Side) -> list[Action]:
        msg = side.inbox.pop(0)
        return self.handle(side, Received(msg))

    def deliver_all(self, max_rounds: int = 10_000) -> None:
        for _ in range(max_rounds):
            if self.alice.inbox:
                self.deliver_one(self.alice)
            elif self.bob.inbox:
                self.deliver_one(self.bob)
            else:
                return
        raise AssertionError("messages never stopped flowing")

    def cut_and_relink(self) -> None:
        """The link drops with whatever was in flight, and both sides see a new one."""
        self.alice.inbox.clear()
        self.bob.inbox.clear()
        for side in (self.alice, self.bob):
            self.handle(side, Disconnected())
        for side in (self.alice, self.bob):
            self.handle(side, Reconnected())

    def request(self, side: Side, *trades: object) -> int:
        request_id = self._next_request
        self._next_request += 1
        self.handle(side, RequestUpdate(tuple(trades), request_id))  # type: ignore[arg-type]
        return request_id

    # scenarios --------------------------------------------------------------------------------
    def open_and_fund(self) -> None:
        machine, actions = ChannelMachine.initiate(
            self.params, self.alice.signer, self.config, self.deposits
        )
        # These tests exercise the update protocol, not consent (tests/core/test_consent.py and
        # test_machine_consent.py do): both desks consent to every trade, explicitly.
        machine.gate = consent_to_everything
        self.alice.machine = machine
        self.perform(self.alice, actions)
        proposal = self.bob.inbox.pop(0)
        assert isinstance(proposal, OpenProposal)
        machine_b, actions_b = ChannelMachine.accept_open(proposal, self.bob.signer, self.config)
        machine_b.gate = consent_to_everything
        self.bob.machine = machine_b
        self.perform(self.bob, actions_b)
        self.deliver_all()
        for side in (self.alice, self.bob):
            self.handle(side, DepositsObserved(self.deposits))
        credit = self.alice.m.credit_trades()
        self.request(self.alice, *credit)
        self.deliver_all()

    def assert_invariants(self) -> None:
        # Each signer signed at most one state per version.
        for side in (self.alice, self.bob):
            for version, hashes in side.signed.items():
                assert len(hashes) == 1, f"{side.name} signed {len(hashes)} states of v{version}"
        # No two fully signed states of one version anywhere.
        for version in set(self.alice.stored) & set(self.bob.stored):
            assert self.alice.stored[version] == self.bob.stored[version]
        for side in (self.alice, self.bob):
            assert side.m.state.conserves()
            if not side.m.book.pending_change_sets:
                assert side.m.book.root == side.m.state.positions_root
                assert len(side.m.book) == side.m.state.position_count
