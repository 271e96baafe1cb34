"""The golden vectors in tests/vectors/eip712.json, recomputed independently.

Each vector is checked twice: with the core (a change in the core that alters a byte fails here)
and with independent tools (eth-account's generic EIP-712 encoder and signer, eth-abi, a
from-scratch Merkle tree, exact fractions), so the file itself is known to be right.
"""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from math import floor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from channels.core import eip712, model, options
from channels.core.errors import BadSignature
from channels.core.hashing import keccak256
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.signing import recover

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS_FILE = VECTORS_DIR / "eip712.json"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vectors_generate", VECTORS_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
V: dict[str, Any] = json.loads(VECTORS_FILE.read_text())
SECRETS = {k["name"]: bytes.fromhex(k["secret"][2:]) for k in V["keys"]}
ADDRESSES = {k["name"]: k["address"] for k in V["keys"]}


def b(text: str) -> bytes:
    assert text.startswith("0x")
    assert text == text.lower() or len(text) == 42  # hex is lowercase, addresses are EIP-55
    return bytes.fromhex(text[2:])


def u(text: str) -> int:
    assert isinstance(text, str) and text.isdigit()
    return int(text)


DOMAIN = eip712.Domain(u(V["domain"]["chainId"]), b(V["domain"]["verifyingContract"]))


def _eth_account_digest(message: object) -> tuple[bytes, bytes]:
    signable = encode_typed_data(full_message=eip712.typed_data(DOMAIN, message))  # type: ignore[arg-type]
    return bytes(signable.body), bytes(_hash_eip191_message(signable))


def _check_signatures(digest: bytes, signatures: dict[str, str]) -> None:
    assert signatures
    for name, sig_hex in signatures.items():
        sig = b(sig_hex)
        expected = Account.unsafe_sign_hash(digest, SECRETS[name])
        assert sig == bytes(expected.signature)
        assert model.to_checksum(recover(digest, sig)) == ADDRESSES[name]
        assert Account._recover_hash(digest, signature=sig) == ADDRESSES[name]


# The file itself -------------------------------------------------------------------------------


def test_regenerating_gives_the_identical_file() -> None:
    assert GEN.render() == VECTORS_FILE.read_text()


def test_generator_check_mode() -> None:
    assert GEN.main(["--check"]) == 0


def test_fixed_inputs() -> None:
    assert V["domain"]["chainId"] == "31337"
    assert V["domain"]["verifyingContract"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    for entry in V["keys"]:
        assert b(entry["secret"]) == keccak256(entry["name"].encode())
        assert Account.from_key(b(entry["secret"])).address == entry["address"]


def test_type_hashes() -> None:
    spec = {
        "EIP712Domain": eip712.DOMAIN_TYPE,
        "State": eip712.STATE_TYPE,
        "Attestation": eip712.ATTESTATION_TYPE,
        "Withdrawal": eip712.WITHDRAWAL_TYPE,
    }
    assert list(V["typeHashes"]) == list(spec)
    for name, entry in V["typeHashes"].items():
        assert entry["type"] == spec[name]
        assert b(entry["hash"]) == keccak256(entry["type"].encode())


def test_domain_separator() -> None:
    d = V["domain"]
    expected = keccak256(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak256(eip712.DOMAIN_TYPE.encode()),
                keccak256(d["name"].encode()),
                keccak256(d["version"].encode()),
                u(d["chainId"]),
                d["verifyingContract"],
            ],
        )
    )
    assert b(d["separator"]) == expected == DOMAIN.separator


@pytest.mark.parametrize("entry", V["params"], ids=lambda e: e["nonce"][:8])
def test_params(entry: dict[str, Any]) -> None:
    values = [
        u(entry["chainId"]),
        entry["adjudicator"],
        entry["asset"],
        u(entry["assetDecimals"]),
        entry["participant0"],
        entry["participant1"],
        u(entry["challengePeriod"]),
        entry["oracle"],
        u(entry["nonce"]),
    ]
    types = ["uint256", "address", "address", "uint8", "address", "address", "uint64"]
    encoded = abi_encode([*types, "address", "uint256"], values)
    assert b(entry["abiEncoded"]) == encoded
    params_hash = keccak256(encoded)
    assert b(entry["channelId"]) == keccak256(
        abi_encode(["bytes32", "address"], [params_hash, entry["asset"]])
    )
    p = model.Params(
        u(entry["chainId"]),
        b(entry["adjudicator"]),
        b(entry["asset"]),
        u(entry["assetDecimals"]),
        (b(entry["participant0"]), b(entry["participant1"])),
        u(entry["challengePeriod"]),
        b(entry["oracle"]),
        u(entry["nonce"]),
    )
    assert p.channel_id == b(entry["channelId"]) and p.params_hash == params_hash


def _state(f: dict[str, Any]) -> model.State:
    return model.State(
        channel_id=b(f["channelId"]),
        version=u(f["version"]),
        balances=(u(f["balance0"]), u(f["balance1"])),
        deposited=(u(f["deposited0"]), u(f["deposited1"])),
        withdrawn=(u(f["withdrawn0"]), u(f["withdrawn1"])),
        locked=u(f["locked"]),
        positions_root=b(f["positionsRoot"]),
        position_count=u(f["positionCount"]),
        is_final=f["isFinal"],
    )


@pytest.mark.parametrize("entry", V["states"], ids=lambda e: e["state"]["version"])
def test_states(entry: dict[str, Any]) -> None:
    """Digest and both signatures; ``wellFormed`` marks the states the contract may accept."""
    s = _state(entry["state"])
    assert entry["wellFormed"] == (s.conserves() and not (s.is_final and s.position_count > 0))
    body, digest = _eth_account_digest(s)
    assert b(entry["structHash"]) == body == eip712.state_struct_hash(s)
    assert b(entry["digest"]) == digest == eip712.state_digest(DOMAIN, s)
    assert set(entry["signatures"]) == {"alice", "bob"}
    _check_signatures(digest, entry["signatures"])


@pytest.mark.parametrize("entry", V["attestations"], ids=lambda e: e["attestation"]["expiry"])
def test_attestations(entry: dict[str, Any]) -> None:
    f = entry["attestation"]
    att = model.Attestation(b(f["underlying"]), u(f["expiry"]), u(f["price"]))
    body, digest = _eth_account_digest(att)
    assert b(entry["structHash"]) == body == eip712.attestation_struct_hash(att)
    assert b(entry["digest"]) == digest == eip712.attestation_digest(DOMAIN, att)
    assert set(entry["signatures"]) == {"oracle"}
    _check_signatures(digest, entry["signatures"])


@pytest.mark.parametrize("entry", V["withdrawals"], ids=lambda e: e["withdrawal"]["version"])
def test_withdrawals(entry: dict[str, Any]) -> None:
    f = entry["withdrawal"]
    w = model.Withdrawal(
        b(f["channelId"]), u(f["version"]), u(f["participant"]), u(f["amount"]), b(f["recipient"])
    )
    body, digest = _eth_account_digest(w)
    assert b(entry["structHash"]) == body == eip712.withdrawal_struct_hash(w)
    assert b(entry["digest"]) == digest == eip712.withdrawal_digest(DOMAIN, w)
    _check_signatures(digest, entry["signatures"])


def _position(f: dict[str, Any]) -> model.Position:
    return model.Position(
        u(f["id"]),
        b(f["underlying"]),
        model.OptionKind(u(f["kind"])),
        u(f["strike"]),
        u(f["expiry"]),
        u(f["quantity"]),
        u(f["writer"]),
        u(f["collateral"]),
    )


def _position_abi(f: dict[str, Any]) -> bytes:
    return abi_encode(
        ["uint64", "bytes32", "uint8", "uint256", "uint64", "uint256", "uint8", "uint256"],
        [
            u(f["id"]),
            b(f["underlying"]),
            u(f["kind"]),
            u(f["strike"]),
            u(f["expiry"]),
            u(f["quantity"]),
            u(f["writer"]),
            u(f["collateral"]),
        ],
    )


@pytest.mark.parametrize("entry", V["positions"], ids=lambda e: e["position"]["id"])
def test_positions(entry: dict[str, Any]) -> None:
    encoded = _position_abi(entry["position"])
    assert b(entry["abiEncoded"]) == encoded
    assert b(entry["leaf"]) == keccak256(keccak256(encoded))
    assert _position(entry["position"]).leaf() == b(entry["leaf"])


def _ref_pair(x: bytes, y: bytes) -> bytes:
    return keccak256(min(x, y) + max(x, y))


@pytest.mark.parametrize("name", ["full", "afterRemovingId3"])
def test_trees(name: str) -> None:
    tree = V["trees"][name]
    high = u(tree["highWater"])
    slots = {u(e["slot"]): e for e in tree["slots"]}
    capacity = 1
    while capacity < high:
        capacity *= 2
    level = [b(slots[i]["leaf"]) if i in slots else bytes(32) for i in range(capacity)]
    layers = [level]
    while len(level) > 1:
        level = [_ref_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        layers.append(level)
    assert b(tree["root"]) == level[0]
    assert u(tree["count"]) == len(slots)
    assert u(tree["locked"]) == sum(u(e["position"]["collateral"]) for e in slots.values())
    for slot, e in slots.items():
        assert b(e["leaf"]) == keccak256(keccak256(_position_abi(e["position"])))
        expected_proof = [layers[k][(slot >> k) ^ 1] for k in range(len(layers) - 1)]
        assert [b(x) for x in e["proof"]] == expected_proof
        node = b(e["leaf"])
        for sibling in expected_proof:
            node = _ref_pair(node, sibling)
        assert node == b(tree["root"])
    # The core rebuilds the same tree from the slots.
    book = PositionBook.from_snapshot(
        BookSnapshot(high, tuple((s, _position(e["position"])) for s, e in sorted(slots.items())))
    )
    assert book.root == b(tree["root"])
    for e in slots.values():
        assert [h.hex() for h in book.proof(u(e["position"]["id"]))] == [x[2:] for x in e["proof"]]


def test_tree_has_a_hole_and_five_positions() -> None:
    assert V["trees"]["full"]["count"] == "5"
    assert V["trees"]["empty"]["root"] == "0x" + "00" * 32
    slots = [e["slot"] for e in V["trees"]["afterRemovingId3"]["slots"]]
    assert "2" not in slots and "4" in slots


@pytest.mark.parametrize("entry", V["payoffs"], ids=lambda e: f"{e['kind']}-{e['assetDecimals']}")
def test_payoffs(entry: dict[str, Any]) -> None:
    kind, strike, price = u(entry["kind"]), u(entry["strike"]), u(entry["price"])
    qty, coll, dec = u(entry["quantity"]), u(entry["collateral"]), u(entry["assetDecimals"])
    diff = price - strike if kind == 0 else strike - price
    exact = Fraction(max(diff, 0) * qty * 10**dec, 10**26)
    assert max(diff, 0) * qty * 10**dec < 2**512  # Math.mulDiv can compute it
    assert u(entry["payoff"]) == min(coll, floor(exact))
    pos = model.Position(0, model.symbol("X"), model.OptionKind(kind), strike, 0, qty, 0, coll)
    assert options.payoff(pos, price, dec) == u(entry["payoff"])
    full = Fraction(strike * qty * 10**dec, 10**26)
    ceil_full = -(-full.numerator // full.denominator)
    if ceil_full < 2**256:
        assert u(entry["fullPutCollateral"]) == ceil_full
    else:
        assert entry["fullPutCollateral"] is None


def test_invalid_signatures() -> None:
    inv = V["invalidSignatures"]
    digest = b(inv["digest"])
    assert digest == b(V["states"][1]["digest"])
    assert model.to_checksum(recover(digest, b(inv["valid"]))) == inv["signer"]
    assert len(inv["invalid"]) >= 10
    for e in inv["invalid"]:
        with pytest.raises(BadSignature):
            recover(digest, b(e["signature"]))
