"""ABI helpers against eth_utils/eth_abi as oracles, on a small handwritten ABI."""

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import event_signature_to_log_topic, function_signature_to_4byte_selector
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from adjudicator.abi import AbiError, ContractAbi, canonical_type, named

POSITION = {
    "name": "pos",
    "type": "tuple",
    "components": [
        {"name": "id", "type": "uint256"},
        {"name": "holder", "type": "address"},
        {"name": "strikes", "type": "uint128[]"},
    ],
}
STATE = {
    "name": "state",
    "type": "tuple",
    "components": [
        {"name": "version", "type": "uint64"},
        {"name": "root", "type": "bytes32"},
        {**POSITION, "name": "positions", "type": "tuple[]"},
    ],
}

ABI: list[dict[str, Any]] = [
    {
        "type": "function", "name": "transfer", "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function", "name": "register", "stateMutability": "nonpayable",
        "inputs": [STATE, {"name": "sig", "type": "bytes"}],
        "outputs": [{"name": "ok", "type": "bool"}, POSITION],
    },
    {"type": "function", "name": "f", "inputs": [{"name": "a", "type": "uint8"}], "outputs": []},
    {"type": "function", "name": "f", "inputs": [{"name": "a", "type": "bytes"}], "outputs": []},
    {
        "type": "event", "name": "Registered", "anonymous": False,
        "inputs": [
            {"name": "channelId", "type": "bytes32", "indexed": True},
            {"name": "who", "type": "address", "indexed": True},
            {"name": "note", "type": "string", "indexed": True},
            {"name": "version", "type": "uint64", "indexed": False},
            {"name": "deadline", "type": "uint256", "indexed": False},
        ],
    },
    {
        "type": "error", "name": "VersionNotNewer",
        "inputs": [{"name": "have", "type": "uint64"}, {"name": "got", "type": "uint64"}],
    },
    {"type": "error", "name": "Unauthorized", "inputs": []},
    {"type": "constructor", "inputs": [{"name": "owner", "type": "address"}]},
]

ADDR = "0x" + "ab" * 20
ABI_IDX = ContractAbi(ABI)


def test_canonical_types() -> None:
    assert canonical_type(POSITION) == "(uint256,address,uint128[])"
    assert canonical_type(STATE) == "(uint64,bytes32,(uint256,address,uint128[])[])"
    assert canonical_type({"type": "tuple[2][]", "components": [{"type": "bool"}]}) == "(bool)[2][]"
    assert canonical_type({"type": "uint256[3]"}) == "uint256[3]"


def test_selectors_match_eth_utils() -> None:
    for sig in ("transfer(address,uint256)", "f(uint8)", "f(bytes)"):
        assert ABI_IDX.function(sig).selector == function_signature_to_4byte_selector(sig)
    reg = ABI_IDX.function("register")
    assert reg.signature == "register((uint64,bytes32,(uint256,address,uint128[])[]),bytes)"
    assert reg.selector == function_signature_to_4byte_selector(reg.signature)
    assert ABI_IDX.function("transfer").selector.hex() == "a9059cbb"


def test_overloads_need_signature() -> None:
    with pytest.raises(AbiError, match="overloaded"):
        ABI_IDX.function("f")
    with pytest.raises(AbiError):
        ABI_IDX.function("nope")


def test_encode_call_matches_eth_abi() -> None:
    data = ABI_IDX.encode_call("transfer", ADDR, 10**18)
    ref = abi_encode(["address", "uint256"], [ADDR, 10**18])
    assert data == bytes.fromhex("a9059cbb") + ref
    assert ABI_IDX.function("transfer").decode_input(data) == (ADDR, 10**18)


def test_struct_args_as_dict_or_tuple() -> None:
    pos = {"id": 7, "holder": ADDR, "strikes": [1, 2]}
    state_dict = {"version": 3, "root": b"\x11" * 32, "positions": [pos, pos]}
    state_tuple = (3, b"\x11" * 32, [(7, ADDR, [1, 2]), (7, ADDR, (1, 2))])
    fn = ABI_IDX.function("register")
    a = fn.encode_call(state_dict, b"sig")
    b = fn.encode_call(state_tuple, b"sig")
    assert a == b
    ref = abi_encode(
        ["(uint64,bytes32,(uint256,address,uint128[])[])", "bytes"],
        [(3, b"\x11" * 32, [(7, ADDR, [1, 2]), (7, ADDR, [1, 2])]), b"sig"],
    )
    assert a == fn.selector + ref
    decoded_state, sig = fn.decode_input(a)
    assert sig == b"sig"
    assert named(STATE, decoded_state) == {
        "version": 3, "root": b"\x11" * 32,
        "positions": [{"id": 7, "holder": ADDR, "strikes": [1, 2]}] * 2,
    }
    with pytest.raises(AbiError, match="missing field"):
        fn.encode_call({"version": 3, "root": b"\x11" * 32}, b"")
    with pytest.raises(AbiError, match="arguments"):
        fn.encode_call(state_dict)


def test_decode_output_with_struct() -> None:
    out = abi_encode(["bool", "(uint256,address,uint128[])"], [True, (1, ADDR, [5])])
    assert ABI_IDX.decode_output("register", out) == (True, (1, ADDR, (5,)))
    with pytest.raises(AbiError):
        ABI_IDX.decode_output("register", b"\x00" * 10)


def test_event_topic_and_log_decoding() -> None:
    ev = ABI_IDX.event("Registered")
    assert ev.signature == "Registered(bytes32,address,string,uint64,uint256)"
    assert ev.topic0 == event_signature_to_log_topic(ev.signature)
    cid = b"\x42" * 32
    topics = [ev.topic0, cid, b"\x00" * 12 + bytes.fromhex("ab" * 20), keccak(text="hi")]
    data = abi_encode(["uint64", "uint256"], [9, 1234])
    decoded = ABI_IDX.decode_log(topics, data)
    assert decoded is not None
    assert decoded.name == "Registered"
    assert decoded.args == {
        "channelId": cid, "who": ADDR, "note": keccak(text="hi"), "version": 9, "deadline": 1234,
    }
    assert ABI_IDX.decode_log([b"\x00" * 32], data) is None
    assert ABI_IDX.decode_log([], data) is None
    with pytest.raises(AbiError):
        ev.decode_log(topics[:2], data)
    assert ev.topics_filter(cid) == [ev.topic0, cid]
    assert ev.topics_filter(None, ADDR) == [ev.topic0, None, topics[2]]


def test_error_decoding() -> None:
    err = ABI_IDX.error("VersionNotNewer")
    assert err.selector == function_signature_to_4byte_selector("VersionNotNewer(uint64,uint64)")
    d = ABI_IDX.decode_error(err.encode(5, 4))
    assert d is not None and (d.name, d.args) == ("VersionNotNewer", (5, 4))
    d = ABI_IDX.decode_error(function_signature_to_4byte_selector("Unauthorized()"))
    assert d is not None and (d.name, d.args) == ("Unauthorized", ())
    assert str(d) == "Unauthorized()"
    # Built-ins: Error(string) and Panic(uint256).
    d = ABI_IDX.decode_error(bytes.fromhex("08c379a0") + abi_encode(["string"], ["boom"]))
    assert d is not None and (d.name, d.args) == ("Error", ("boom",))
    d = ABI_IDX.decode_error(bytes.fromhex("4e487b71") + abi_encode(["uint256"], [0x11]))
    assert d is not None and (d.name, d.args) == ("Panic", (0x11,))
    assert ABI_IDX.decode_error(b"") is None
    assert ABI_IDX.decode_error(b"\xde\xad\xbe\xef") is None
    assert ABI_IDX.decode_error(err.selector + b"\x01") is None  # truncated args


def test_constructor() -> None:
    assert ABI_IDX.encode_constructor(ADDR) == abi_encode(["address"], [ADDR])
    assert ABI_IDX.deploy_data(b"\x60\x00", ADDR)[:2] == b"\x60\x00"


@given(
    version=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    positions=st.lists(
        st.tuples(st.integers(0, 2**256 - 1), st.lists(st.integers(0, 2**128 - 1), max_size=3)),
        max_size=4,
    ),
)
def test_register_roundtrip(
    version: int, root: bytes, positions: list[tuple[int, list[int]]]
) -> None:
    fn = ABI_IDX.function("register")
    state = (version, root, [(pid, ADDR, strikes) for pid, strikes in positions])
    got_state, got_sig = fn.decode_input(fn.encode_call(state, b"\x01\x02"))
    assert got_sig == b"\x01\x02"
    assert got_state == (version, root, tuple((pid, ADDR, tuple(s)) for pid, s in positions))
