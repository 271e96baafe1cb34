"""Hypothesis strategies and fixed keys shared by the core tests (real crypto, no mocks)."""

from __future__ import annotations

from hypothesis import strategies as st

from channels.core import eip712, model
from channels.core.hashing import keccak256
from channels.core.signing import LocalSigner


def uint(bits: int) -> st.SearchStrategy[int]:
    """Any uint of ``bits`` bits, with the edges 0, 1 and 2**bits-1 drawn often."""
    top = 2**bits - 1
    return st.one_of(
        st.sampled_from([0, 1, top, top - 1, 2 ** (bits - 1)]),
        st.integers(0, 2**16),
        st.integers(0, top),
    )


bytes32 = st.one_of(st.sampled_from([bytes(32), b"\xff" * 32]), st.binary(min_size=32, max_size=32))
address = st.binary(min_size=20, max_size=20)
nonzero_address = address.filter(lambda a: a != model.ZERO_ADDRESS)
pair128 = st.tuples(uint(128), uint(128))

domains = st.builds(eip712.Domain, chain_id=uint(256), verifying_contract=address)

states = st.builds(
    model.State,
    channel_id=bytes32,
    version=uint(64),
    balances=pair128,
    deposited=pair128,
    withdrawn=pair128,
    locked=uint(128),
    positions_root=bytes32,
    position_count=uint(32),
    is_final=st.booleans(),
)

attestations = st.builds(model.Attestation, underlying=bytes32, expiry=uint(64), price=uint(256))

withdrawals = st.builds(
    model.Withdrawal,
    channel_id=bytes32,
    version=uint(64),
    participant=st.sampled_from([0, 1]),
    amount=uint(128),
    recipient=nonzero_address,
)

positions = st.builds(
    model.Position,
    id=uint(64),
    underlying=bytes32,
    kind=st.sampled_from([model.OptionKind.CALL, model.OptionKind.PUT]),
    strike=uint(256),
    expiry=uint(64),
    quantity=uint(256),
    writer=st.sampled_from([0, 1]),
    collateral=uint(128),
)


def secret(name: str) -> bytes:
    return keccak256(name.encode())


ALICE = LocalSigner(secret("alice"))
BOB = LocalSigner(secret("bob"))
ORACLE = LocalSigner(secret("oracle"))
MALLORY = LocalSigner(secret("mallory"))
ADJUDICATOR = model.address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
DOMAIN = eip712.Domain(31337, ADJUDICATOR)
