"""The channel state machine, driven through two wired machines with no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from channels.core import eip712
from channels.core.errors import (
    BadSignature,
    ChannelError,
    IllegalCall,
    NonCanonicalSignature,
    StaleVersion,
    TooManyPending,
    UnexpectedMessage,
    WrongDomain,
)
from channels.core.messages import Accept, OpenProposal, Proposal, Reject
from channels.core.model import Address, Attestation, OptionKind, Position, PositionId
from channels.core.options import (
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Unwind,
)
from channels.core.protocol import (
    ChannelMachine,
    Config,
    DepositsObserved,
    DisputeObserved,
    Phase,
    Received,
    RequestUpdate,
    Send,
)
from channels.core.signing import malleate, recover

from .pair import (
    ADJUDICATOR,
    CHAIN_ID,
    DAY,
    ETH_USD,
    NOW,
    ORACLE_SIGNER,
    Pair,
    make_params,
    make_signer,
)


def option(
    pid: int, writer: int = 1, kind: OptionKind = OptionKind.CALL, expiry: int = NOW + 7 * DAY
) -> Position:
    return Position(
        id=PositionId(pid),
        underlying=ETH_USD,
        kind=kind,
        strike=3000_00000000,
        expiry=expiry,
        quantity=10**18,
        writer=writer,
        collateral=500_000,
    )


def snapshot(pair: Pair) -> tuple[object, ...]:
    """Everything assert_unchanged compares."""
    out = []
    for side in (pair.alice, pair.bob):
        m = side.m
        out.append(
            (
                m.latest,
                m.book.root,
                len(m.book),
                m.book.locked,
                m.phase,
                m.highest_signed,
                tuple(m.pending_versions),
                dict(side.stored),
                {v: set(h) for v, h in side.signed.items()},
            )
        )
    return tuple(out)


# opening ------------------------------------------------------------------------------------------


def test_open_signs_version_zero_then_credits_deposits() -> None:
    pair = Pair()
    for side in (pair.alice, pair.bob):
        assert side.m.phase is Phase.OPEN
        assert side.m.state.version == 1
        assert side.m.state.balances == (1_000_000, 1_000_000)
        assert side.m.state.deposited == (1_000_000, 1_000_000)
        assert 0 in side.stored and 1 in side.stored
    pair.assert_invariants()


def test_version_zero_signatures_recover_to_both_participants() -> None:
    pair = Pair(open_=False)
    _machine, actions = ChannelMachine.initiate(
        pair.params, pair.alice.signer, pair.config, pair.deposits
    )
    proposal = next(a.message for a in actions if isinstance(a, Send))
    assert isinstance(proposal, OpenProposal)
    bob, _bob_actions = ChannelMachine.accept_open(proposal, pair.bob.signer, pair.config)
    digest = eip712.state_digest(pair.domain, bob.state)
    sigs = bob.latest.signed.signatures
    assert sigs[0] is not None and sigs[1] is not None
    assert recover(digest, sigs[0]) == pair.alice.signer.address
    assert recover(digest, sigs[1]) == pair.bob.signer.address
    assert bob.phase is Phase.FUNDING


def test_open_proposal_for_another_chain_is_refused_before_signing() -> None:
    pair = Pair(open_=False)
    params = make_params(pair.alice.signer, pair.bob.signer, chain_id=1)
    _machine, actions = ChannelMachine.initiate(
        params, pair.alice.signer, Config(1, ADJUDICATOR), pair.deposits
    )
    proposal = next(a.message for a in actions if isinstance(a, Send))
    assert isinstance(proposal, OpenProposal)
    with pytest.raises(WrongDomain):
        ChannelMachine.accept_open(proposal, pair.bob.signer, pair.config)
    with pytest.raises(WrongDomain):
        ChannelMachine.accept_open(
            proposal, pair.bob.signer, Config(1, Address(bytes(19) + b"\x01"))
        )


def test_open_proposal_not_naming_us_or_badly_signed_is_refused() -> None:
    pair = Pair(open_=False)
    _, actions = ChannelMachine.initiate(pair.params, pair.alice.signer, pair.config, pair.deposits)
    proposal = next(a.message for a in actions if isinstance(a, Send))
    assert isinstance(proposal, OpenProposal)
    with pytest.raises(WrongDomain):
        ChannelMachine.accept_open(proposal, make_signer("carol"), pair.config)
    forged = dataclasses.replace(proposal, signature=make_signer("carol").sign_digest(b"\x01" * 32))
    with pytest.raises(BadSignature):
        ChannelMachine.accept_open(forged, pair.bob.signer, pair.config)
    with pytest.raises(NonCanonicalSignature):
        ChannelMachine.accept_open(
            dataclasses.replace(proposal, signature=malleate(proposal.signature)),
            pair.bob.signer,
            pair.config,
        )


def test_no_trading_before_version_zero_is_countersigned() -> None:
    pair = Pair(open_=False)
    machine, _ = ChannelMachine.initiate(pair.params, pair.alice.signer, pair.config, pair.deposits)
    with pytest.raises(IllegalCall):
        machine.handle(RequestUpdate((Pay(0, 1),), 1), now=NOW)


def test_deposits_not_confirmed_cannot_be_credited() -> None:
    pair = Pair(open_=False)
    machine, actions = ChannelMachine.initiate(
        pair.params, pair.alice.signer, pair.config, pair.deposits
    )
    pair.alice.machine = machine
    pair.perform(pair.alice, actions)
    proposal = pair.bob.inbox.pop(0)
    assert isinstance(proposal, OpenProposal)
    bob, bob_actions = ChannelMachine.accept_open(proposal, pair.bob.signer, pair.config)
    pair.bob.machine = bob
    pair.perform(pair.bob, bob_actions)
    pair.deliver_all()
    # Alice sees both deposits, Bob only hers (his own is not confirmed for him yet).
    pair.handle(
        pair.alice,
        DepositsObserved((1_000_000, 1_000_000)),
    )
    pair.handle(
        pair.bob,
        DepositsObserved((1_000_000, 0)),
    )
    pair.request(pair.alice, *pair.alice.m.credit_trades())
    pair.deliver_all()
    assert pair.bob.m.state.version == 0
    assert pair.alice.m.state.version == 0
    assert [r.rule for r in pair.alice.refused] == ["UnconfirmedDeposit"]
    assert pair.bob.m.phase is Phase.FUNDING


# trading ------------------------------------------------------------------------------------------


def test_leader_and_follower_payments_both_ways() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 100))
    pair.request(pair.bob, Pay(1, 30))
    pair.deliver_all()
    for side in (pair.alice, pair.bob):
        assert side.m.state.balances == (1_000_000 - 70, 1_000_000 + 70)
        assert side.m.state.version == 3
    assert [a.ours for a in pair.bob.applied[-2:]] == [False, True]
    pair.assert_invariants()


def test_crossing_requests_never_give_two_states_of_one_version() -> None:
    pair = Pair()
    # Both start a trade before seeing the other's: the leader orders them.
    for i in range(20):
        pair.request(pair.alice, Pay(0, 1 + i))
        pair.request(pair.bob, Pay(1, 2 + i))
    pair.deliver_all()
    assert pair.alice.m.state == pair.bob.m.state
    assert pair.alice.m.state.version == 41
    pair.assert_invariants()


def test_pipelined_proposals_are_each_built_on_the_previous() -> None:
    pair = Pair()
    for _ in range(10):
        pair.request(pair.alice, Pay(0, 5))
    assert pair.alice.m.pending_versions == list(range(2, 12))
    pair.deliver_all()
    assert pair.bob.m.state.balances == (1_000_000 - 50, 1_000_000 + 50)
    assert pair.alice.m.pending_versions == []
    pair.assert_invariants()


def test_option_lifecycle_open_unwind_settle_and_close() -> None:
    pair = Pair()
    pair.request(pair.bob, OpenOption(option(1, writer=1), premium=25_000))
    pair.request(pair.alice, OpenOption(option(2, writer=0, kind=OptionKind.PUT), premium=10_000))
    pair.deliver_all()
    st = pair.alice.m.state
    assert st.position_count == 2 and st.locked == 1_000_000
    assert st.balances == (
        1_000_000 - 25_000 + 10_000 - 500_000,
        1_000_000 + 25_000 - 10_000 - 500_000,
    )
    pair.request(pair.alice, Unwind(PositionId(2), holder_share=123))
    pair.deliver_all()
    pair.now = NOW + 7 * DAY
    att = Attestation(ETH_USD, NOW + 7 * DAY, 3100_00000000)
    sig = ORACLE_SIGNER.sign_digest(eip712.attestation_digest(pair.domain, att))
    pair.request(pair.bob, Settle(PositionId(1), att, sig))
    pair.deliver_all()
    st = pair.bob.m.state
    # Alice holds a call on 1 ETH at 3000 settled at 3100: 100 USD = 100_000_000 units, capped
    # by the 500_000 collateral. Her put was unwound with 123 to Bob, the rest back to her.
    assert st.position_count == 0 and st.locked == 0
    assert st.balances[0] == 1_000_000 - 25_000 + 10_000 - 500_000 + (500_000 - 123) + 500_000
    assert sum(st.balances) == 2_000_000
    pair.request(pair.alice, Finalize())
    pair.deliver_all()
    for side in (pair.alice, pair.bob):
        assert side.m.phase is Phase.FINAL
        assert side.m.state.is_final
    with pytest.raises(IllegalCall):
        pair.request(pair.alice, Pay(0, 1))
    pair.assert_invariants()


def test_partial_withdrawal_is_cosigned_with_its_state() -> None:
    pair = Pair()
    recipient = make_signer("cold wallet").address
    pair.request(pair.bob, DebitWithdrawal(1, 400_000, recipient))
    pair.deliver_all()
    for side in (pair.alice, pair.bob):
        update = side.m.latest
        assert update.withdrawal is not None and update.withdrawal_signatures is not None
        assert update.withdrawal.version == update.signed.state.version
        digest = eip712.withdrawal_digest(pair.domain, update.withdrawal)
        assert recover(digest, update.withdrawal_signatures[0]) == pair.alice.signer.address
        assert recover(digest, update.withdrawal_signatures[1]) == pair.bob.signer.address
        assert side.m.state.withdrawn == (0, 400_000)
        assert side.m.state.balances == (1_000_000, 600_000)


# refusals leave everything unchanged -----------------------------------------------------------


def test_follower_request_breaking_a_rule_is_refused_with_the_rule_name() -> None:
    pair = Pair()
    before = snapshot(pair)
    # Bob's own check refuses at once (his caller's fault).
    with pytest.raises(ChannelError) as info:
        pair.request(pair.bob, Pay(1, 2_000_000))
    assert info.value.rule == "InsufficientFunds"
    assert snapshot(pair) == before


def test_leader_refuses_request_that_no_longer_fits_its_head() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 999_000))  # in flight: Alice will have 1_000 left
    # Fine on Bob's view (Alice can pay the premium), not on the leader's head.
    request_id = pair.request(pair.bob, OpenOption(option(1, writer=1), premium=25_000))
    pair.deliver_all()
    assert [(r.rule, r.request_id) for r in pair.bob.refused] == [("InsufficientFunds", request_id)]
    assert pair.bob.m.state.balances == (1_000, 1_999_000)
    pair.assert_invariants()


def test_follower_refusal_rolls_back_the_leader_and_burns_the_version() -> None:
    pair = Pair()
    refused_once = {"done": False}

    def policy(view: object) -> str | None:
        if not refused_once["done"]:
            refused_once["done"] = True
            return "exposure limit"
        return None

    pair.bob.m.policy = policy
    pair.request(pair.alice, Pay(0, 10))
    pair.request(pair.alice, Pay(0, 20))  # built on the refused one: dropped too
    pair.deliver_all()
    assert [r.rule for r in pair.alice.refused] == ["PolicyRefused", "BaseRefused"]
    assert pair.alice.m.state.version == 1 and pair.alice.m.pending_versions == []
    assert pair.alice.m.book.pending_change_sets == 0
    pair.request(pair.alice, Pay(0, 5))
    pair.deliver_all()
    # Versions 2 and 3 are burned (Alice signed them); the next state is version 4.
    assert pair.bob.m.state.version == 4
    assert pair.bob.m.state.balances == (999_995, 1_000_005)
    pair.assert_invariants()


def test_proposal_with_wrong_state_is_refused_and_nothing_signed() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 10))
    proposal = pair.bob.inbox.pop(0)
    assert isinstance(proposal, Proposal)
    cheat = dataclasses.replace(
        proposal.state, balances=(proposal.state.balances[0] + 10, proposal.state.balances[1] - 10)
    )
    sig = pair.alice.signer.sign_digest(eip712.state_digest(pair.domain, cheat))
    before = snapshot(pair)
    actions = pair.handle(
        pair.bob, Received(dataclasses.replace(proposal, state=cheat, signature=sig))
    )
    assert len(actions) == 1 and isinstance(actions[0], Send)
    reject = actions[0].message
    assert isinstance(reject, Reject) and reject.rule in ("StateMismatch", "ConservationViolation")
    after = snapshot(pair)
    assert after[1] == before[1]  # Bob unchanged


@pytest.mark.parametrize("how", ["wrong key", "high s", "truncated", "other domain"])
def test_badly_signed_proposal_raises_and_changes_nothing(how: str) -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 10))
    proposal = pair.bob.inbox.pop(0)
    assert isinstance(proposal, Proposal)
    digest = eip712.state_digest(pair.domain, proposal.state)
    if how == "wrong key":
        sig = make_signer("mallory").sign_digest(digest)
    elif how == "high s":
        sig = malleate(proposal.signature)
    elif how == "truncated":
        sig = proposal.signature[:64]
    else:
        other = eip712.Domain(CHAIN_ID + 1, ADJUDICATOR)
        sig = pair.alice.signer.sign_digest(eip712.state_digest(other, proposal.state))
    before = snapshot(pair)
    with pytest.raises(BadSignature):
        pair.handle(pair.bob, Received(dataclasses.replace(proposal, signature=sig)))
    assert snapshot(pair) == before
    assert pair.alice.inbox == []


def test_replays_of_old_messages_are_stale_or_idempotent() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 1))
    old_proposal = pair.bob.inbox[0]
    pair.deliver_all()
    old_accept = next(
        a.message for a in pair.bob.events if isinstance(a, Send) and isinstance(a.message, Accept)
    )
    for _ in range(3):
        pair.request(pair.alice, Pay(0, 1))
    pair.deliver_all()
    before = snapshot(pair)
    with pytest.raises(StaleVersion):
        pair.handle(pair.bob, Received(old_proposal))
    with pytest.raises(StaleVersion):
        pair.handle(pair.alice, Received(old_accept))
    assert snapshot(pair) == before
    # The current accept again: a harmless no-op.
    current_accept = [
        a.message for a in pair.bob.events if isinstance(a, Send) and isinstance(a.message, Accept)
    ][-1]
    assert pair.handle(pair.alice, Received(current_accept)) == []
    assert snapshot(pair) == before


def test_message_for_another_channel_is_refused() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 1))
    proposal = pair.bob.inbox.pop(0)
    assert isinstance(proposal, Proposal)
    with pytest.raises(WrongDomain):
        pair.handle(pair.bob, Received(dataclasses.replace(proposal, channel_id=b"\x07" * 32)))


def test_roles_are_enforced() -> None:
    pair = Pair()
    pair.request(pair.alice, Pay(0, 1))
    proposal = pair.bob.inbox.pop(0)
    with pytest.raises(UnexpectedMessage):
        pair.handle(pair.alice, Received(proposal))  # the leader never takes proposals
    with pytest.raises(UnexpectedMessage):
        pair.handle(pair.bob, Received(Accept(pair.params.channel_id, 2, b"\x00" * 65)))


def test_too_many_pending_proposals_are_refused() -> None:
    pair = Pair()
    for _ in range(pair.config.max_pending):
        pair.request(pair.alice, Pay(0, 1))
    with pytest.raises(TooManyPending):
        pair.request(pair.alice, Pay(0, 1))
    # Bob floods requests: the leader refuses the excess with the rule's name.
    for _ in range(pair.config.max_requests):
        pair.request(pair.bob, Pay(1, 1))
    with pytest.raises(TooManyPending):
        pair.request(pair.bob, Pay(1, 1))
    pair.deliver_all()
    pair.assert_invariants()


def test_dispute_stops_updates() -> None:
    pair = Pair()
    pair.handle(pair.alice, DisputeObserved(1))
    assert pair.alice.m.phase is Phase.DISPUTED
    with pytest.raises(IllegalCall):
        pair.request(pair.alice, Pay(0, 1))
