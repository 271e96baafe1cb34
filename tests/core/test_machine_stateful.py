"""Hypothesis drives two wired machines through crossing requests, lost, replayed and reordered
messages, forged messages, reconnects and time: the protocol's invariants must hold throughout,
and the two sides must always be able to agree and trade again."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from channels.core import eip712
from channels.core.errors import ChannelError
from channels.core.messages import Accept, Proposal
from channels.core.model import OptionKind, Position, PositionId
from channels.core.options import OpenOption, Pay, Unwind
from channels.core.protocol import Received
from channels.core.signing import malleate

from .pair import ADJUDICATOR, CHAIN_ID, DAY, ETH_USD, NOW, Pair, Side, make_signer
from .test_machine import snapshot


class ChannelPairMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.pair = Pair()
        self.next_position = 1
        self.errors = 0

    def _side(self, alice: bool) -> Side:
        return self.pair.alice if alice else self.pair.bob

    def _request(self, side: Side, trade: object) -> None:
        before = snapshot(self.pair)
        try:
            self.pair.request(side, trade)
        except ChannelError:
            # A refused request changes nothing at all.
            assert snapshot(self.pair) == before

    @rule(alice=st.booleans(), amount=st.integers(1, 300_000))
    def pay(self, alice: bool, amount: int) -> None:
        self._request(self._side(alice), Pay(0 if alice else 1, amount))

    @rule(
        alice=st.booleans(),
        writer=st.integers(0, 1),
        kind=st.sampled_from(OptionKind),
        premium=st.integers(0, 50_000),
        collateral=st.integers(1, 300_000),
    )
    def open_option(
        self, alice: bool, writer: int, kind: OptionKind, premium: int, collateral: int
    ) -> None:
        pid = self.next_position
        self.next_position += 1
        position = Position(
            id=PositionId(pid),
            underlying=ETH_USD,
            kind=kind,
            strike=3000_00000000,
            expiry=NOW + 30 * DAY,
            quantity=10**18,
            writer=writer,
            collateral=collateral,
        )
        self._request(self._side(alice), OpenOption(position, premium))

    @rule(alice=st.booleans(), data=st.data())
    def unwind(self, alice: bool, data: st.DataObject) -> None:
        side = self._side(alice)
        open_ids = sorted(p.id for p in side.m.book)
        if not open_ids:
            return
        pid = data.draw(st.sampled_from(open_ids))
        share = data.draw(st.integers(0, side.m.book.get(pid).collateral))
        self._request(side, Unwind(pid, share))

    def _deliver(self, side: Side) -> None:
        before = snapshot(self.pair)
        try:
            self.pair.deliver_one(side)
        except ChannelError:
            self.errors += 1
            after = snapshot(self.pair)
            assert after == before, "a refused message changed a machine"

    @precondition(lambda self: bool(self.pair.alice.inbox))
    @rule()
    def deliver_to_alice(self) -> None:
        self._deliver(self.pair.alice)

    @precondition(lambda self: bool(self.pair.bob.inbox))
    @rule()
    def deliver_to_bob(self) -> None:
        self._deliver(self.pair.bob)

    @precondition(lambda self: bool(self.pair.alice.inbox or self.pair.bob.inbox))
    @rule(alice=st.booleans(), data=st.data())
    def drop(self, alice: bool, data: st.DataObject) -> None:
        inbox = self._side(alice).inbox
        if inbox:
            inbox.pop(data.draw(st.integers(0, len(inbox) - 1)))

    @precondition(lambda self: bool(self.pair.alice.inbox or self.pair.bob.inbox))
    @rule(alice=st.booleans(), data=st.data())
    def duplicate(self, alice: bool, data: st.DataObject) -> None:
        inbox = self._side(alice).inbox
        if inbox:
            inbox.append(inbox[data.draw(st.integers(0, len(inbox) - 1))])

    @rule(alice=st.booleans(), data=st.data())
    def swap(self, alice: bool, data: st.DataObject) -> None:
        inbox = self._side(alice).inbox
        if len(inbox) >= 2:
            i = data.draw(st.integers(0, len(inbox) - 2))
            inbox[i], inbox[i + 1] = inbox[i + 1], inbox[i]

    @rule(how=st.sampled_from(["mallory", "high-s", "other-chain", "stale-accept"]))
    def forge(self, how: str) -> None:
        """Inject a message that must be refused without any change."""
        pair = self.pair
        state = pair.bob.m.state
        if how == "stale-accept":
            sig = pair.bob.signer.sign_digest(eip712.state_digest(pair.domain, state))
            msg: object = Accept(pair.params.channel_id, max(0, state.version - 1), sig)
            target = pair.alice
        else:
            bumped = dataclasses.replace(state, version=state.version + 1)
            domain = (
                pair.domain if how != "other-chain" else eip712.Domain(CHAIN_ID + 1, ADJUDICATOR)
            )
            digest = eip712.state_digest(domain, bumped)
            signer = make_signer("mallory") if how == "mallory" else pair.alice.signer
            sig = signer.sign_digest(digest)
            if how == "high-s":
                sig = malleate(sig)
            msg = Proposal(pair.params.channel_id, state.version, (Pay(0, 1),), bumped, sig)
            target = pair.bob
        before = snapshot(pair)
        try:
            actions = target.m.handle(Received(msg), now=pair.now)  # type: ignore[arg-type]
        except ChannelError:
            assert snapshot(pair) == before
        else:
            assert actions == [], f"forged {how} produced {actions}"

    @rule()
    def reconnect(self) -> None:
        self.pair.cut_and_relink()

    @invariant()
    def protocol_invariants(self) -> None:
        if hasattr(self, "pair"):
            self.pair.assert_invariants()

    def teardown(self) -> None:
        if not hasattr(self, "pair"):
            return
        pair = self.pair
        # Liveness: after any history, a reconnect brings both to one state and trading works.
        self.reconnect()
        pair.deliver_all()
        assert pair.alice.m.state == pair.bob.m.state
        assert pair.alice.m.book.root == pair.bob.m.book.root
        version = pair.alice.m.state.version
        free = pair.alice.m.state.balances
        payer = 0 if free[0] > 0 else 1
        pair.request(pair.bob if payer else pair.alice, Pay(payer, 1))
        pair.deliver_all()
        assert pair.alice.m.state == pair.bob.m.state
        assert pair.alice.m.state.version > version
        pair.assert_invariants()


ChannelPairMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChannelPair = ChannelPairMachine.TestCase
