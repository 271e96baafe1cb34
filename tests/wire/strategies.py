"""Hypothesis strategies for every type the wire codec carries (valid contents, full uint range)."""

from __future__ import annotations

from hypothesis import strategies as st

from channels.core import model
from channels.core.messages import (
    Accept,
    OpenAccept,
    OpenCounter,
    OpenProposal,
    Proposal,
    Reestablish,
    Reject,
    UpdateRequest,
)
from channels.core.model import SignedUpdate
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Unwind,
)
from channels.core.positions import MAX_SLOTS, BookSnapshot
from channels.core.terms import CounterOffer
from channels.core.wire import MAX_REASON_LEN, MAX_RULE_LEN


def uint(bits: int) -> st.SearchStrategy[int]:
    """Any uint of ``bits`` bits; the edges (0, 1, top, top-1, 2**(bits-1)) are drawn often."""
    top = 2**bits - 1
    return st.one_of(
        st.sampled_from([0, 1, top, top - 1, 2 ** (bits - 1)]),
        st.integers(0, 2**16),
        st.integers(0, top),
    )


def raw(n: int) -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from([bytes(n), b"\xff" * n]), st.binary(min_size=n, max_size=n))


hash32 = raw(32)
address = raw(20)
nonzero_address = address.filter(lambda a: a != model.ZERO_ADDRESS)
signature = raw(65)
optional_signature = st.none() | signature
index = st.sampled_from([0, 1])
pair128 = st.tuples(uint(128), uint(128))
pair256 = st.tuples(uint(256), uint(256))


@st.composite
def params(draw: st.DrawFn) -> model.Params:
    p0 = draw(nonzero_address)
    p1 = draw(nonzero_address.filter(lambda a: a != p0))
    return model.Params(
        chain_id=draw(uint(256)),
        adjudicator=draw(address),
        asset=draw(address),
        asset_decimals=draw(st.integers(0, 36)),
        participants=(p0, p1),
        challenge_period=draw(
            st.integers(model.CONTRACT_MIN_CHALLENGE_PERIOD, model.MAX_CHALLENGE_PERIOD)
        ),
        oracle=draw(nonzero_address),
        nonce=draw(uint(256)),
    )


states = st.builds(
    model.State,
    channel_id=hash32,
    version=uint(64),
    balances=pair128,
    deposited=pair128,
    withdrawn=pair128,
    locked=uint(128),
    positions_root=hash32,
    position_count=uint(32),
    is_final=st.booleans(),
)

positions = st.builds(
    model.Position,
    id=uint(64),
    underlying=hash32,
    kind=st.sampled_from([model.OptionKind.CALL, model.OptionKind.PUT]),
    strike=uint(256),
    expiry=uint(64),
    quantity=uint(256),
    writer=index,
    collateral=uint(128),
)

attestations = st.builds(model.Attestation, underlying=hash32, expiry=uint(64), price=uint(256))

withdrawals = st.builds(
    model.Withdrawal,
    channel_id=hash32,
    version=uint(64),
    participant=index,
    amount=uint(128),
    recipient=nonzero_address,
)

books = st.builds(
    BookSnapshot,
    high_water=st.one_of(st.sampled_from([0, 1, MAX_SLOTS]), st.integers(0, MAX_SLOTS)),
    slots=st.lists(
        st.tuples(
            st.one_of(st.sampled_from([0, MAX_SLOTS - 1]), st.integers(0, MAX_SLOTS - 1)), positions
        ),
        max_size=4,
    ).map(tuple),
)

trades_one = st.one_of(
    st.builds(Pay, payer=index, amount=uint(256)),
    st.builds(
        OpenOption,
        position=positions,
        premium=uint(256),
        quote_id=st.none() | st.binary(min_size=32, max_size=32),
    ),
    st.builds(Unwind, position_id=uint(64), holder_share=uint(256)),
    st.builds(Settle, position_id=uint(64), attestation=attestations, signature=signature),
    st.builds(CreditDeposit, participant=index, amount=uint(256)),
    st.builds(DebitWithdrawal, participant=index, amount=uint(256), recipient=address),
    st.just(Finalize()),
)
trade_batches = st.lists(trades_one, max_size=6).map(tuple)
optional_u64 = st.none() | uint(64)

open_proposals = st.builds(OpenProposal, params=params(), deposits=pair256, signature=signature)
open_accepts = st.builds(OpenAccept, channel_id=hash32, signature=signature)
update_requests = st.builds(
    UpdateRequest, channel_id=hash32, request_id=uint(64), trades=trade_batches
)
proposals = st.builds(
    Proposal,
    channel_id=hash32,
    base_version=uint(64),
    trades=trade_batches,
    state=states,
    signature=signature,
    request_id=optional_u64,
    withdrawal_signature=optional_signature,
)
accepts = st.builds(
    Accept,
    channel_id=hash32,
    version=uint(64),
    signature=signature,
    withdrawal_signature=optional_signature,
)
rejects = st.builds(
    Reject,
    channel_id=hash32,
    version=optional_u64,
    request_id=optional_u64,
    rule=st.text(max_size=MAX_RULE_LEN),
    reason=st.one_of(st.text(max_size=200), st.just("é" * MAX_REASON_LEN)),
)
signed_updates = st.builds(
    SignedUpdate,
    signed=st.builds(
        model.SignedState,
        state=states,
        signatures=st.tuples(optional_signature, optional_signature),
    ),
    trades=trade_batches,
    withdrawal=st.none() | withdrawals,
    withdrawal_signatures=st.none() | st.tuples(signature, signature),
)

reestablishes = st.builds(
    Reestablish,
    channel_id=hash32,
    state=states,
    signatures=st.tuples(signature, signature),
    book=books,
    recent=st.lists(signed_updates, max_size=2).map(tuple),
)

open_counters = st.builds(
    OpenCounter,
    channel_id=hash32,
    rule=st.text(max_size=MAX_RULE_LEN),
    reason=st.text(max_size=200),
    counter=st.builds(CounterOffer, deposit=uint(256), challenge_period=st.integers(1, 2**64 - 1)),
)

messages = st.one_of(
    open_proposals,
    open_accepts,
    update_requests,
    proposals,
    accepts,
    rejects,
    reestablishes,
    open_counters,
)

