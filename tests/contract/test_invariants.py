"""THREATS C13 (and THREATS section 7's on-chain global properties) as a Hypothesis stateful test
against anvil: random sequences of deposit / register / refute (a newer register) / checkpoint /
warp / conclude / concludeAfterTimeout / withdrawPartial / pull on two token channels with
pre-signed states, a blocklist toggle that makes bob's pushes fail (credits), and a model of the
PROTOCOL.md section 8 rules that predicts every outcome (success, no-op or the exact error).

Invariants after every step:
* the adjudicator's token balance covers (here: equals) everything it owes: deposits less executed
  withdrawals of open/disputed channels, collateral still locked in concluded ones, and credits;
* Σ paid <= Σ deposited (and Σ paid + balance == Σ deposited);
* every channel record equals the model (status, version, deadline, minVersion, amounts);
and at the events: a dispute's deadline is fixed by its first registration and never moves; a
timeout conclusion pays exactly the highest version registered before the deadline.

Each example runs between ``evm_snapshot`` and ``evm_revert``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adjudicator import errors
from adjudicator.client import (
    both_signatures,
    params_tuple,
    signature_tuple,
    state_tuple,
    withdrawal_terms_tuple,
)
from channels.core import eip712
from channels.core.model import Address, Params, SignedState
from channels.core.signing import LocalSigner

from .kit import Channel, Env, SyncChain, artifact_abi, deploy_artifact_sync, key_bytes

ADJ = artifact_abi("Adjudicator")
ERC20 = artifact_abi("TestERC20")
PERIOD = 600
MARGIN = 20  # seconds: a deadline this close to the head is "either" (block time is wall time)
ROOT = b"\x42" * 32
MINTED = 10**9


@dataclass
class Setup:
    env: Env
    chain: SyncChain
    token: bytes
    alice: bytes
    bob: bytes
    carol: bytes
    channels: list[Channel]
    states: list[list[SignedState]]  # per channel, index = version
    withdrawals: list[tuple[tuple[Any, ...], tuple[bytes, bytes]]]


@pytest.fixture(scope="module")
def setup(env: Env) -> Iterator[Setup]:
    chain = SyncChain(env.url)
    token = deploy_artifact_sync(env, "TestERC20", "Invariant USD", "IUSD", 6)
    alice, bob, oracle = (LocalSigner(key_bytes(k)) for k in env.keys[1:4])
    carol = LocalSigner(key_bytes(env.keys[0])).address
    for who in (alice.address, bob.address):
        chain.send(carol, token, ERC20.encode_call("mint", who, MINTED))
        chain.send(who, token, ERC20.encode_call("approve", env.adjudicator, 2**256 - 1))
    channels, states, withdrawals = [], [], []
    for nonce in (1, 2):
        params = Params(env.chain_id, Address(env.adjudicator), Address(token), 6,
                        (alice.address, bob.address), PERIOD, oracle.address, nonce)
        ch = Channel(params, eip712.Domain(env.chain_id, Address(env.adjudicator)),
                     (alice, bob))
        pool = [
            ch.signed(0),
            ch.signed(1, balances=(100, 100)),
            ch.signed(2, balances=(70, 130), deposited=(100, 100)),
            ch.signed(3, balances=(40, 120), deposited=(100, 100), locked=40, root=ROOT,
                      count=1),
            ch.signed(4, balances=(20, 150), deposited=(100, 100), withdrawn=(30, 0)),
            ch.signed(5, balances=(100, 120), deposited=(150, 100), withdrawn=(30, 0)),
            ch.signed(6, balances=(60, 160), deposited=(150, 100), withdrawn=(30, 0),
                      final=True),
        ]
        for v, s in enumerate(pool):
            assert s.state.version == v and s.state.conserves()
        w, sigs = ch.withdrawal(4, 0, 30, alice.address)
        channels.append(ch)
        states.append(pool)
        compact = (signature_tuple(sigs[0]), signature_tuple(sigs[1]))
        withdrawals.append((withdrawal_terms_tuple(w), compact))
    yield Setup(env, chain, token, alice.address, bob.address, carol, channels, states,
                withdrawals)
    chain.close()


@dataclass
class Model:
    status: str = "open"  # open | disputed | concluded
    version: int = 0
    deadline: int = 0
    min_version: int = 0
    deposits: list[int] = field(default_factory=lambda: [0, 0])
    withdrawn: list[int] = field(default_factory=lambda: [0, 0])
    locked: int = 0
    root: bytes = bytes(32)
    registered: list[int] = field(default_factory=list)  # versions registered in this dispute


Expect = type[errors.ContractError] | str | None  # None: success; "noop"; "either": time-bound


class AdjudicatorMachine(RuleBasedStateMachine):
    s: Setup

    def __init__(self) -> None:
        super().__init__()
        self.chain = self.s.chain
        self.snap = self.chain.rpc("evm_snapshot")
        self.models = [Model(), Model()]
        self.blocked = False
        self.credits = {self.s.alice: 0, self.s.bob: 0}
        self.deposited = 0
        self.start = self._balance(self.s.alice) + self._balance(self.s.bob)
        for i, ch in enumerate(self.s.channels):  # funded as v1 expects; more comes by rules
            for who, sender in enumerate((self.s.alice, self.s.bob)):
                data = ADJ.encode_call(
                    "depositToken", ch.params.params_hash, ch.params.asset, who, 100
                )
                self.chain.send(sender, self.s.env.adjudicator, data)
                self.models[i].deposits[who] += 100
                self.deposited += 100

    def teardown(self) -> None:
        assert self.chain.rpc("evm_revert", [self.snap]) is True

    # ---- helpers ---------------------------------------------------------------------------

    def _balance(self, who: bytes) -> int:
        out = self.chain.call(self.s.token, ERC20.encode_call("balanceOf", who))
        return int(ERC20.decode_output("balanceOf", out)[0])

    def _view(self, i: int) -> tuple[Any, ...]:
        out = self.chain.call(self.s.env.adjudicator,
                              ADJ.encode_call("getChannel", self.s.channels[i].id))
        return tuple(ADJ.decode_output("getChannel", out)[0])

    def _expired(self, m: Model) -> bool | None:
        """Will the next block be at/after the dispute deadline? None if too close to tell."""
        now = self.chain.timestamp()
        if now >= m.deadline:
            return True
        if m.deadline - now > MARGIN:
            return False
        return None

    def _send(self, sender: bytes, data: bytes, expect: Expect,
              on_success: Callable[[dict[str, Any]], None]) -> None:
        try:
            receipt = self.chain.send(sender, self.s.env.adjudicator, data)
        except errors.ContractError as exc:
            assert expect not in (None, "noop"), f"unexpected {exc!r}"
            if not isinstance(expect, str):
                assert isinstance(exc, expect), f"expected {expect.__name__}, got {exc!r}"
            return
        assert expect in (None, "noop", "either"), f"expected {expect}, call succeeded"
        on_success(receipt)

    def _events(self, receipt: dict[str, Any]) -> list[Any]:
        out = []
        for log in receipt["logs"]:
            if log["address"].lower() != "0x" + self.s.env.adjudicator.hex():
                continue
            ev = ADJ.decode_log([bytes.fromhex(t[2:]) for t in log["topics"]],
                                bytes.fromhex(log["data"][2:]))
            if ev is not None:
                out.append(ev)
        return out

    def _finalize(self, i: int, version: int, receipt: dict[str, Any]) -> None:
        """Apply a conclusion with state ``version``: check the payouts and the credits."""
        m, st_ = self.models[i], self.s.states[i][version].state
        if st_.deposited[0] > m.deposits[0] or st_.deposited[1] > m.deposits[1]:
            raise AssertionError("an underfunded state concluded")
        pay = [st_.balances[k] + (m.deposits[k] - st_.deposited[k])
               + (st_.withdrawn[k] - m.withdrawn[k]) for k in (0, 1)]
        events = self._events(receipt)
        (concluded,) = [e for e in events if e.name == "Concluded"]
        assert concluded.args["version"] == version
        assert [concluded.args["payout0"], concluded.args["payout1"]] == pay
        credited = [e for e in events if e.name == "PayoutCredited"]
        if self.blocked and pay[1] > 0:
            assert [(e.args["account"].lower(), e.args["amount"]) for e in credited] == [
                ("0x" + self.s.bob.hex(), pay[1])]
            self.credits[self.s.bob] += pay[1]
        else:
            assert credited == []
        self.models[i] = Model(status="concluded", version=version, locked=st_.locked,
                               root=st_.positions_root if st_.locked else bytes(32))

    def _underfunded(self, i: int, version: int) -> bool:
        m, st_ = self.models[i], self.s.states[i][version].state
        return st_.deposited[0] > m.deposits[0] or st_.deposited[1] > m.deposits[1]

    # ---- rules -----------------------------------------------------------------------------

    @rule(i=st.integers(0, 1), who=st.integers(0, 1), amount=st.sampled_from([50, 100]))
    def deposit(self, i: int, who: int, amount: int) -> None:
        m = self.models[i]
        sender = (self.s.alice, self.s.bob)[who]
        expect: Expect = errors.ChannelConcluded if m.status == "concluded" else None

        def ok(_r: dict[str, Any]) -> None:
            m.deposits[who] += amount
            self.deposited += amount

        data = ADJ.encode_call(
            "depositToken", self.s.channels[i].params.params_hash, self.s.channels[i].params.asset,
            who, amount,
        )
        self._send(sender, data, expect, ok)

    @rule(i=st.integers(0, 1), v=st.integers(0, 6), by=st.integers(0, 2))
    def register(self, i: int, v: int, by: int) -> None:
        """A first registration, a refutation (newer version) or a stale/equal one."""
        m = self.models[i]
        expect: Expect
        if m.status == "concluded":
            expect = errors.ChannelConcluded
        elif m.status == "disputed":
            expired = self._expired(m)
            if v == m.version:
                expect = "noop"
            elif expired is None:
                expect = "either"
            elif expired:
                expect = errors.ChallengeExpired
            elif v < m.version:
                expect = errors.NotNewerVersion
            elif v < m.min_version:
                expect = errors.StateBeforeWithdrawal
            else:
                expect = None
        elif v < m.version:
            expect = errors.NotNewerVersion
        elif v < m.min_version:
            expect = errors.StateBeforeWithdrawal
        else:
            expect = None
        signed = self.s.states[i][v]
        s0, s1 = both_signatures(signed)

        def ok(receipt: dict[str, Any]) -> None:
            events = self._events(receipt)
            if expect == "noop":
                assert events == []
                return
            (ev,) = events
            assert ev.name == "Registered" and ev.args["version"] == v
            if m.status == "open":
                block = self.chain.rpc("eth_getBlockByNumber", [receipt["blockNumber"], False])
                assert isinstance(block, dict)
                m.deadline = int(block["timestamp"], 16) + PERIOD
                m.status = "disputed"
                m.registered = []
            assert ev.args["deadline"] == m.deadline  # C6: set once, never moved
            m.version = v
            m.registered.append(v)

        data = ADJ.encode_call("register", params_tuple(self.s.channels[i].params),
                               state_tuple(signed.state), s0, s1)
        self._send((self.s.alice, self.s.bob, self.s.carol)[by], data, expect, ok)

    @rule(i=st.integers(0, 1), v=st.integers(0, 6))
    def checkpoint(self, i: int, v: int) -> None:
        m = self.models[i]
        expect: Expect = None
        if m.status == "concluded":
            expect = errors.ChannelConcluded
        elif m.status == "disputed":
            expired = self._expired(m)
            if expired is None:
                expect = "either"
            elif expired:
                expect = errors.ChallengeExpired
        elif v == m.version:
            expect = "noop"
        if expect is None:
            if v <= m.version:
                expect = errors.NotNewerVersion
            elif v < m.min_version:
                expect = errors.StateBeforeWithdrawal
        signed = self.s.states[i][v]
        s0, s1 = both_signatures(signed)

        def ok(receipt: dict[str, Any]) -> None:
            if expect == "noop":
                assert self._events(receipt) == []
                return
            m.status, m.version, m.deadline, m.registered = "open", v, 0, []

        data = ADJ.encode_call("checkpoint", params_tuple(self.s.channels[i].params),
                               state_tuple(signed.state), s0, s1)
        self._send(self.s.alice, data, expect, ok)

    @rule(i=st.integers(0, 1))
    def conclude(self, i: int) -> None:
        m = self.models[i]
        expect: Expect = None
        if m.status == "concluded":
            expect = errors.ChannelConcluded
        elif self._underfunded(i, 6):
            expect = errors.UnderfundedState
        signed = self.s.states[i][6]
        s0, s1 = both_signatures(signed)
        data = ADJ.encode_call("conclude", params_tuple(self.s.channels[i].params),
                               state_tuple(signed.state), s0, s1)
        self._send(self.s.carol, data, expect, lambda r: self._finalize(i, 6, r))

    @rule(i=st.integers(0, 1))
    def conclude_after_timeout(self, i: int) -> None:
        self._conclude_after_timeout(i)

    @precondition(lambda self: any(m.status == "disputed" for m in self.models))
    @rule(i=st.integers(0, 1))
    def wait_out_dispute(self, i: int) -> None:
        """warp past a dispute's deadline, then concludeAfterTimeout (so a random run reaches
        the timeout outcome often, not only by a lucky ordering of the atomic rules)."""
        if self.models[i].status != "disputed":
            i = 1 - i
        self.chain.warp(PERIOD + 100)
        self._conclude_after_timeout(i)

    def _conclude_after_timeout(self, i: int) -> None:
        m = self.models[i]
        version = m.version if m.status == "disputed" else 1
        expect: Expect = None
        if m.status == "concluded":
            expect = errors.ChannelConcluded
        elif m.status == "open":
            expect = errors.NotDisputed
        else:
            expired = self._expired(m)
            if expired is None:
                expect = "either"
            elif not expired:
                expect = errors.ChallengeNotExpired
            elif self._underfunded(i, version):
                expect = errors.UnderfundedState

        def ok(receipt: dict[str, Any]) -> None:
            # the outcome is the highest version registered before the deadline
            assert m.registered and version == max(m.registered) == m.registered[-1]
            self._finalize(i, version, receipt)

        data = ADJ.encode_call("concludeAfterTimeout", params_tuple(self.s.channels[i].params),
                               state_tuple(self.s.states[i][version].state))
        self._send(self.s.bob, data, expect, ok)

    @rule(i=st.integers(0, 1))
    def withdraw_partial(self, i: int) -> None:
        m = self.models[i]
        expect: Expect = None
        if m.status == "concluded":
            expect = errors.ChannelConcluded
        elif m.status == "disputed":
            expect = errors.ChallengeOngoing
        elif m.min_version >= 4:
            expect = errors.WithdrawalNotNewer
        elif sum(m.withdrawn) + 30 > sum(m.deposits):
            expect = errors.InsufficientHoldings

        def ok(_r: dict[str, Any]) -> None:
            m.withdrawn[0] += 30
            m.min_version = 4

        w, (s0, s1) = self.s.withdrawals[i]
        data = ADJ.encode_call("withdrawPartial", params_tuple(self.s.channels[i].params), w,
                               s0, s1)
        self._send(self.s.bob, data, expect, ok)

    @rule(seconds=st.sampled_from([30, PERIOD + 100]))
    def warp(self, seconds: int) -> None:
        self.chain.warp(seconds)

    @rule()
    def toggle_block(self) -> None:
        self.blocked = not self.blocked
        self.chain.send(self.s.carol, self.s.token,
                        ERC20.encode_call("setBlocked", self.s.bob, self.blocked))

    @rule(who=st.integers(0, 1))
    def pull(self, who: int) -> None:
        self._pull(who)

    @precondition(lambda self: any(self.credits.values()))
    @rule()
    def pull_a_credit(self) -> None:
        self._pull(0 if self.credits[self.s.alice] else 1)

    def _pull(self, who: int) -> None:
        account = (self.s.alice, self.s.bob)[who]
        expect: Expect = None
        if self.credits[account] == 0:
            expect = errors.NothingToWithdraw
        elif who == 1 and self.blocked:
            expect = errors.TransferFailed

        def ok(_r: dict[str, Any]) -> None:
            self.credits[account] = 0

        self._send(account, ADJ.encode_call("withdraw", self.s.token, account), expect, ok)

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def records_match_the_model(self) -> None:
        for i, m in enumerate(self.models):
            view = self._view(i)
            status, version, deadline, min_version, d0, d1, w0, w1, h, root, locked = view
            assert ("open", "disputed", "concluded")[status] == m.status
            assert (version, deadline, min_version) == (m.version, m.deadline, m.min_version)
            if m.status == "concluded":
                assert (d0, d1, w0, w1, h) == (0, 0, 0, 0, bytes(32))
                assert (locked, root) == (m.locked, m.root)
            else:
                assert [d0, d1] == m.deposits and [w0, w1] == m.withdrawn
                expected_hash = (eip712.state_struct_hash(self.s.states[i][m.version].state)
                                 if m.status == "disputed" else bytes(32))
                assert h == expected_hash and locked == 0
        for account, credit in self.credits.items():
            out = self.chain.call(self.s.env.adjudicator,
                                  ADJ.encode_call("credits", self.s.token, account))
            assert ADJ.decode_output("credits", out)[0] == credit

    @invariant()
    def holdings_are_covered_and_nothing_is_overpaid(self) -> None:
        held = self._balance(self.s.env.adjudicator)
        owed = sum(self.credits.values())
        for m in self.models:
            owed += m.locked if m.status == "concluded" else sum(m.deposits) - sum(m.withdrawn)
        assert held >= owed
        assert held == owed  # standard token: nothing else moves it
        paid = self._balance(self.s.alice) + self._balance(self.s.bob) - self.start \
            + self.deposited
        assert 0 <= paid <= self.deposited
        assert paid + held == self.deposited


def test_conservation_state_machine(setup: Setup) -> None:
    AdjudicatorMachine.s = setup
    run_state_machine_as_test(
        AdjudicatorMachine,
        settings=settings(max_examples=20, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture]),
    )
