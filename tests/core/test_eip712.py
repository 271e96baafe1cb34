"""The hand-written EIP-712 encoder against eth-account's generic one, and the ABI encodings
against eth-abi (docs/PROTOCOL.md sections 2 to 5)."""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.core import eip712, model
from channels.core.errors import InvalidAmount, InvalidField
from channels.core.hashing import keccak256

from ._strategies import (
    ADJUDICATOR,
    DOMAIN,
    address,
    attestations,
    domains,
    nonzero_address,
    positions,
    states,
    uint,
    withdrawals,
)

FAST = settings(max_examples=300, deadline=None)
MANY = settings(max_examples=1000, deadline=None)

# The type strings exactly as docs/PROTOCOL.md writes them (line breaks removed, no spaces).
SPEC_TYPES = {
    "EIP712Domain": "EIP712Domain(string name,string version,uint256 chainId,"
    "address verifyingContract)",
    "State": "State(bytes32 channelId,uint64 version,uint256 balance0,uint256 balance1,"
    "uint256 deposited0,uint256 deposited1,uint256 withdrawn0,uint256 withdrawn1,"
    "uint256 locked,bytes32 positionsRoot,uint32 positionCount,bool isFinal)",
    "Attestation": "Attestation(bytes32 underlying,uint64 expiry,uint256 price)",
    "Withdrawal": "Withdrawal(bytes32 channelId,uint64 version,uint8 participant,uint256 amount,"
    "address recipient)",
}

PARAMS_TYPES = [
    "uint256",
    "address",
    "address",
    "uint8",
    "address",
    "address",
    "uint64",
    "address",
    "uint256",
]
POSITION_TYPES = [
    "uint64",
    "bytes32",
    "uint8",
    "uint256",
    "uint64",
    "uint256",
    "uint8",
    "uint256",
]


def _eth_account(domain: eip712.Domain, message: object) -> tuple[bytes, bytes, bytes]:
    """(domain separator, struct hash, digest) computed by eth-account from the JSON export."""
    signable = encode_typed_data(full_message=eip712.typed_data(domain, message))  # type: ignore[arg-type]
    return bytes(signable.header), bytes(signable.body), bytes(_hash_eip191_message(signable))


# Type hashes ----------------------------------------------------------------------------------


def test_type_strings_match_spec() -> None:
    assert eip712.DOMAIN_TYPE == SPEC_TYPES["EIP712Domain"]
    assert eip712.STATE_TYPE == SPEC_TYPES["State"]
    assert eip712.ATTESTATION_TYPE == SPEC_TYPES["Attestation"]
    assert eip712.WITHDRAWAL_TYPE == SPEC_TYPES["Withdrawal"]
    assert all(" ," not in t and ", " not in t for t in SPEC_TYPES.values())


@pytest.mark.parametrize(
    ("name", "typehash"),
    [
        ("EIP712Domain", eip712.DOMAIN_TYPEHASH),
        ("State", eip712.STATE_TYPEHASH),
        ("Attestation", eip712.ATTESTATION_TYPEHASH),
        ("Withdrawal", eip712.WITHDRAWAL_TYPEHASH),
    ],
)
def test_type_hashes_are_keccak_of_spec_strings(name: str, typehash: bytes) -> None:
    assert typehash == keccak256(SPEC_TYPES[name].encode())


def test_type_hashes_are_distinct() -> None:
    hashes = {
        eip712.DOMAIN_TYPEHASH,
        eip712.STATE_TYPEHASH,
        eip712.ATTESTATION_TYPEHASH,
        eip712.WITHDRAWAL_TYPEHASH,
    }
    assert len(hashes) == 4


def test_fixed_domain_separator_matches_eth_abi() -> None:
    expected = keccak256(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                eip712.DOMAIN_TYPEHASH,
                keccak256(b"OptionChannels"),
                keccak256(b"1"),
                31337,
                model.to_checksum(ADJUDICATOR),
            ],
        )
    )
    assert DOMAIN.separator == expected


# Digests against eth-account --------------------------------------------------------------------


@MANY
@given(domains, states)
def test_state_digest_matches_eth_account(domain: eip712.Domain, s: model.State) -> None:
    header, body, digest = _eth_account(domain, s)
    assert domain.separator == header
    assert eip712.state_struct_hash(s) == body
    assert eip712.state_digest(domain, s) == digest


@MANY
@given(domains, attestations)
def test_attestation_digest_matches_eth_account(
    domain: eip712.Domain, a: model.Attestation
) -> None:
    header, body, digest = _eth_account(domain, a)
    assert domain.separator == header
    assert eip712.attestation_struct_hash(a) == body
    assert eip712.attestation_digest(domain, a) == digest


@MANY
@given(domains, withdrawals)
def test_withdrawal_digest_matches_eth_account(domain: eip712.Domain, w: model.Withdrawal) -> None:
    header, body, digest = _eth_account(domain, w)
    assert domain.separator == header
    assert eip712.withdrawal_struct_hash(w) == body
    assert eip712.withdrawal_digest(domain, w) == digest


@FAST
@given(domains, states)
def test_state_struct_hash_is_abi_encoding(domain: eip712.Domain, s: model.State) -> None:
    """The struct hash is keccak(abi.encode(typehash, fields...)) as Solidity computes it."""
    words = abi_encode(
        ["bytes32", "bytes32", "uint64"] + ["uint256"] * 7 + ["bytes32", "uint32", "bool"],
        [
            eip712.STATE_TYPEHASH,
            s.channel_id,
            s.version,
            *s.balances,
            *s.deposited,
            *s.withdrawn,
            s.locked,
            s.positions_root,
            s.position_count,
            s.is_final,
        ],
    )
    assert eip712.state_struct_hash(s) == keccak256(words)
    assert eip712.state_digest(domain, s) == keccak256(
        b"\x19\x01" + domain.separator + keccak256(words)
    )


@FAST
@given(st.data())
def test_every_field_changes_the_state_digest(data: st.DataObject) -> None:
    s = data.draw(states)
    base = eip712.state_digest(DOMAIN, s)
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(model.State)]))
    other = data.draw(states)
    changed = dataclasses.replace(s, **{field: getattr(other, field)})
    if getattr(changed, field) != getattr(s, field):
        assert eip712.state_digest(DOMAIN, changed) != base


@FAST
@given(domains, domains, states)
def test_domain_binds_the_digest(d1: eip712.Domain, d2: eip712.Domain, s: model.State) -> None:
    if (d1.chain_id, d1.verifying_contract) != (d2.chain_id, d2.verifying_contract):
        assert eip712.state_digest(d1, s) != eip712.state_digest(d2, s)


# Cross-type separation ----------------------------------------------------------------------------


@FAST
@given(domains, st.binary(min_size=32, max_size=32), uint(64), uint(128), nonzero_address)
def test_message_types_never_share_a_digest(
    domain: eip712.Domain, word: bytes, version: int, amount: int, recipient: bytes
) -> None:
    """The same field bytes under different types give different digests (cross-purpose replay)."""
    s = model.State(
        channel_id=word,
        version=version,
        balances=(0, amount),
        deposited=(amount, 0),
        withdrawn=(0, 0),
        locked=0,
        positions_root=bytes(32),
        position_count=0,
        is_final=False,
    )
    w = model.Withdrawal(
        channel_id=word, version=version, participant=0, amount=amount, recipient=recipient
    )
    a = model.Attestation(underlying=word, expiry=version, price=amount)
    digests = {
        eip712.state_digest(domain, s),
        eip712.withdrawal_digest(domain, w),
        eip712.attestation_digest(domain, a),
    }
    assert len(digests) == 3
    # A raw struct hash is never mistaken for a digest either.
    assert eip712.state_struct_hash(s) not in digests


# ABI encodings: channel id and position leaf ------------------------------------------------

params_strategy = st.builds(
    model.Params,
    chain_id=uint(256),
    adjudicator=address,
    asset=address,
    asset_decimals=st.integers(0, 36),
    participants=st.tuples(nonzero_address, nonzero_address).filter(lambda p: p[0] != p[1]),
    challenge_period=st.integers(model.CONTRACT_MIN_CHALLENGE_PERIOD, model.MAX_CHALLENGE_PERIOD),
    oracle=nonzero_address,
    nonce=uint(256),
)


@FAST
@given(params_strategy)
def test_channel_id_hashes_the_params_hash_and_the_asset(p: model.Params) -> None:
    encoded = abi_encode(
        PARAMS_TYPES,
        [
            p.chain_id,
            model.to_checksum(p.adjudicator),
            model.to_checksum(p.asset),
            p.asset_decimals,
            model.to_checksum(p.participants[0]),
            model.to_checksum(p.participants[1]),
            p.challenge_period,
            model.to_checksum(p.oracle),
            p.nonce,
        ],
    )
    assert p.abi_encode() == encoded
    assert len(encoded) == 9 * 32
    # PROTOCOL.md 3: the id hashes the params hash and the asset (a deposit names only those two)
    assert p.params_hash == keccak256(encoded)
    id_input = abi_encode(["bytes32", "address"], [p.params_hash, model.to_checksum(p.asset)])
    assert p.channel_id == keccak256(id_input)


@FAST
@given(params_strategy, st.sampled_from(["chain_id", "nonce", "challenge_period"]))
def test_channel_id_depends_on_every_field(p: model.Params, name: str) -> None:
    bumped = getattr(p, name) + 1 if name != "challenge_period" else p.challenge_period ^ 1
    if name != "challenge_period" and bumped >= 2**256:
        bumped = 0
    try:
        q = dataclasses.replace(p, **{name: bumped})
    except (InvalidField, InvalidAmount):
        return
    assert q.channel_id != p.channel_id


@FAST
@given(positions)
def test_position_leaf_is_double_keccak_of_abi_encode(pos: model.Position) -> None:
    encoded = abi_encode(
        POSITION_TYPES,
        [
            pos.id,
            pos.underlying,
            int(pos.kind),
            pos.strike,
            pos.expiry,
            pos.quantity,
            pos.writer,
            pos.collateral,
        ],
    )
    assert pos.abi_encode() == encoded
    assert pos.leaf() == keccak256(keccak256(encoded))
    assert pos.leaf() != keccak256(encoded)


def test_symbol_is_right_padded_ascii() -> None:
    assert model.symbol("ETH-USD") == b"ETH-USD" + bytes(25)
    assert model.symbol_text(model.symbol("ETH-USD")) == "ETH-USD"
    with pytest.raises(InvalidField):
        model.symbol("")
    with pytest.raises(InvalidField):
        model.symbol("X" * 33)


@given(address)
@settings(max_examples=200, deadline=None)
def test_checksum_matches_eth_utils(addr: bytes) -> None:
    from eth_utils import to_checksum_address

    assert model.to_checksum(addr) == to_checksum_address(addr)
    assert model.address(model.to_checksum(addr)) == addr


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (model.State, {"version": 2**64}),
        (model.State, {"balances": (2**128, 0)}),
        (model.State, {"locked": -1}),
        (model.State, {"position_count": 2**32}),
        (model.State, {"version": True}),
    ],
)
def test_state_refuses_out_of_range_fields(cls: type, kwargs: dict[str, object]) -> None:
    base = {
        "channel_id": bytes(32),
        "version": 0,
        "balances": (0, 0),
        "deposited": (0, 0),
        "withdrawn": (0, 0),
        "locked": 0,
        "positions_root": bytes(32),
        "position_count": 0,
        "is_final": False,
    }
    base.update(kwargs)
    with pytest.raises(InvalidAmount):
        cls(**base)
