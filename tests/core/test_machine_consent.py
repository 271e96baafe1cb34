"""The consent rule inside the channel machine: nothing that moves value away from a desk gets its
signature unless it initiated exactly those trades or its gate approves (docs/PROTOCOL.md)."""

from __future__ import annotations

from channels.core.consent import Approved, Refusal, UpdateView, Verdict, strict_gate
from channels.core.messages import Accept, Reject
from channels.core.model import OptionKind, Position, PositionId
from channels.core.options import OpenOption, Pay

from .pair import ETH_USD, NOW, Pair


def call(pid: int, writer: int) -> Position:
    return Position(
        id=PositionId(pid),
        underlying=ETH_USD,
        kind=OptionKind.CALL,
        strike=1,  # the attack of issue 12: a strike of almost nothing on the whole balance
        expiry=NOW + 7 * 86_400,
        quantity=10**18,
        writer=writer,
        collateral=900_000,
    )


def strict_pair() -> Pair:
    pair = Pair()
    pair.alice.m.gate = strict_gate
    pair.bob.m.gate = strict_gate
    return pair


def test_the_leader_cannot_make_the_follower_write_an_option() -> None:
    pair = strict_pair()
    before = pair.bob.m.state
    signed_before = {v: set(h) for v, h in pair.bob.signed.items()}
    pair.request(pair.alice, OpenOption(call(1, writer=1), premium=1))
    pair.deliver_all()
    assert pair.bob.m.state == before and pair.alice.m.state == before
    assert {v: set(h) for v, h in pair.bob.signed.items()} == signed_before  # no signature left
    rejects = [
        a.message for a in pair.bob.events if isinstance(getattr(a, "message", None), Reject)
    ]
    assert rejects and rejects[-1].rule == "ConsentRequired"
    assert "we write an option" in rejects[-1].reason
    assert pair.alice.refused[-1].rule == "ConsentRequired"


def test_the_follower_cannot_make_the_leader_pay() -> None:
    pair = strict_pair()
    before = pair.alice.m.state
    pair.bob.inbox.clear()
    # Bob asks Alice to pay him: only Alice may decide that; she refuses before signing.
    pair.request(pair.bob, Pay(0, 1_000))
    pair.deliver_all()
    assert pair.alice.m.state == before
    assert pair.bob.refused[-1].rule == "ConsentRequired"


def test_what_costs_the_countersigner_nothing_goes_through() -> None:
    pair = strict_pair()
    pair.request(pair.alice, Pay(0, 1_000))  # Alice pays Bob: automatic for Bob
    pair.request(pair.bob, Pay(1, 500))  # Bob pays Alice: his own call, automatic for Alice
    pair.deliver_all()
    assert pair.bob.m.state.balances == (1_000_000 - 500, 1_000_000 + 500)
    assert not pair.alice.refused and not pair.bob.refused


def test_the_follower_countersigns_its_own_request_and_the_gate_sees_it_as_ours() -> None:
    pair = strict_pair()
    seen: list[UpdateView] = []

    def alice_gate(view: UpdateView) -> Verdict:
        seen.append(view)
        return Approved("alice's bot") if not view.initiated_by_us else strict_gate(view)

    pair.alice.m.gate = alice_gate
    # Bob buys from Alice: Alice's bot approves; Bob initiated it, so his side passes on its own.
    pair.request(pair.bob, OpenOption(call(2, writer=0), premium=10_000))
    pair.deliver_all()
    assert pair.bob.m.state.position_count == 1
    assert seen and not seen[-1].initiated_by_us
    assert pair.bob.m.state.balances[1] == 1_000_000 - 10_000
    accepts = [a for a in pair.bob.events if isinstance(getattr(a, "message", None), Accept)]
    assert accepts


def test_a_gate_refusal_names_its_rule() -> None:
    pair = strict_pair()
    pair.bob.m.gate = lambda _v: Refusal("LimitExceeded", "max open positions 0: 1 after")
    pair.request(pair.alice, OpenOption(call(3, writer=0), premium=0))
    pair.deliver_all()
    assert pair.alice.refused[-1].rule == "LimitExceeded"
    assert "max open positions" in pair.alice.refused[-1].reason
