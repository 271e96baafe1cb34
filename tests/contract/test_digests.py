"""The core's EIP-712 digests and channel id equal the contract's, for random inputs (~50 each)."""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicator.client import (
    adjudicator_abi,
    attestation_tuple,
    params_tuple,
    state_tuple,
    withdrawal_tuple,
)
from adjudicator.testing import dev_request
from channels.core import eip712
from channels.core.model import (
    CONTRACT_MIN_CHALLENGE_PERIOD,
    MAX_CHALLENGE_PERIOD,
    Address,
    Amount,
    Attestation,
    ChannelId,
    Params,
    State,
    Timestamp,
    Version,
    Withdrawal,
)

from .kit import Env

ABI = adjudicator_abi()
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

u64 = st.integers(0, 2**64 - 1)
u128 = st.integers(0, 2**128 - 1)
b32 = st.binary(min_size=32, max_size=32)
addr = st.binary(min_size=20, max_size=20).filter(lambda b: b != bytes(20))


def call(env: Env, fn: str, *args: Any) -> Any:
    data = ABI.encode_call(fn, *args)
    out = dev_request(env.url, "eth_call",
                      [{"to": "0x" + env.adjudicator.hex(), "data": "0x" + data.hex()}, "latest"])
    return ABI.decode_output(fn, bytes.fromhex(out[2:]))[0]


def domain(env: Env) -> eip712.Domain:
    return eip712.Domain(env.chain_id, Address(env.adjudicator))


states = st.builds(
    State,
    channel_id=b32.map(ChannelId),
    version=u64.map(Version),
    balances=st.tuples(u128, u128),
    deposited=st.tuples(u128, u128),
    withdrawn=st.tuples(u128, u128),
    locked=u128.map(Amount),
    positions_root=b32,
    position_count=st.integers(0, 2**32 - 1),
    is_final=st.booleans(),
)


@SETTINGS
@given(s=states)
def test_state_digest(env: Env, s: State) -> None:
    assert bytes(call(env, "stateDigest", state_tuple(s))) == eip712.state_digest(domain(env), s)


@SETTINGS
@given(a=st.builds(Attestation, b32, u64.map(Timestamp), st.integers(0, 2**256 - 1)))
def test_attestation_digest(env: Env, a: Attestation) -> None:
    got = bytes(call(env, "attestationDigest", attestation_tuple(a)))
    assert got == eip712.attestation_digest(domain(env), a)


@SETTINGS
@given(w=st.builds(Withdrawal, b32.map(ChannelId), u64.map(Version), st.integers(0, 1),
                   u128.map(Amount), addr.map(Address)))
def test_withdrawal_digest(env: Env, w: Withdrawal) -> None:
    got = bytes(call(env, "withdrawalDigest", withdrawal_tuple(w)))
    assert got == eip712.withdrawal_digest(domain(env), w)


@SETTINGS
@given(
    chain_id=st.integers(0, 2**256 - 1), adjudicator=addr, asset=st.binary(min_size=20,
                                                                          max_size=20),
    decimals=st.integers(0, 36), p=st.lists(addr, min_size=2, max_size=2, unique=True),
    period=st.integers(CONTRACT_MIN_CHALLENGE_PERIOD, MAX_CHALLENGE_PERIOD), oracle=addr,
    nonce=st.integers(0, 2**256 - 1),
)
def test_channel_id(env: Env, chain_id: int, adjudicator: bytes, asset: bytes, decimals: int,
                    p: list[bytes], period: int, oracle: bytes, nonce: int) -> None:
    params = Params(chain_id, Address(adjudicator), Address(asset), decimals,
                    (Address(p[0]), Address(p[1])), period, Address(oracle), nonce)
    assert bytes(call(env, "channelIdOf", params_tuple(params))) == params.channel_id


def test_domain_separator(env: Env) -> None:
    assert bytes(call(env, "domainSeparator")) == domain(env).separator
