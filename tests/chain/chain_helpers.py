"""A tiny hand-assembled test contract (no compiler needed).

Runtime:
* empty calldata: ``revert Nope(42)``;
* otherwise: ``x = calldataload(4)``; ``sstore(0, x)``; ``emit Stored(msg.sender indexed, x)``.
  So ``set(uint256)`` calls from ``STORE_ABI`` work (the selector itself is ignored).
Constructor: stores its single ``uint256`` argument (if given) in slot 1.
"""

from eth_utils.crypto import keccak

STORE_ABI: list[dict[str, object]] = [
    {"type": "constructor", "inputs": [{"name": "initial", "type": "uint256"}]},
    {
        "type": "function", "name": "set", "stateMutability": "nonpayable",
        "inputs": [{"name": "x", "type": "uint256"}], "outputs": [],
    },
    {
        "type": "event", "name": "Stored", "anonymous": False,
        "inputs": [
            {"name": "by", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
    {"type": "error", "name": "Nope", "inputs": [{"name": "code", "type": "uint256"}]},
]

NOPE_SELECTOR = keccak(text="Nope(uint256)")[:4]
STORED_TOPIC = keccak(text="Stored(address,uint256)")


def push(data: bytes) -> bytes:
    assert 1 <= len(data) <= 32
    return bytes([0x5F + len(data)]) + data


def _runtime() -> bytes:
    head = bytes([0x36, 0x15])  # CALLDATASIZE ISZERO
    store = (
        push(b"\x04") + b"\x35"  # CALLDATALOAD(4)
        + b"\x80"  # DUP1
        + push(b"\x00") + b"\x55"  # SSTORE(0, x)
        + push(b"\x00") + b"\x52"  # MSTORE(0, x)
        + b"\x33"  # CALLER
        + push(STORED_TOPIC)
        + push(b"\x20") + push(b"\x00") + b"\xa2"  # LOG2(0, 32, topic0, caller)
        + b"\x00"  # STOP
    )
    revert = (
        b"\x5b"  # JUMPDEST
        + push(NOPE_SELECTOR) + push(b"\xe0") + b"\x1b"  # SHL(224, selector)
        + push(b"\x00") + b"\x52"
        + push(b"\x2a") + push(b"\x04") + b"\x52"  # MSTORE(4, 42)
        + push(b"\x24") + push(b"\x00") + b"\xfd"  # REVERT(0, 36)
    )
    jump_target = len(head) + 2 + 1 + len(store)  # PUSH1 target, JUMPI
    return head + push(bytes([jump_target])) + b"\x57" + store + revert


RUNTIME = _runtime()


def _init() -> bytes:
    init_len = 29
    rlen = len(RUNTIME).to_bytes(2, "big")
    roff = init_len.to_bytes(2, "big")
    argoff = (init_len + len(RUNTIME)).to_bytes(2, "big")
    code = (
        push(b"\x20") + push(argoff) + push(b"\x00") + b"\x39"  # CODECOPY(0, argoff, 32)
        + push(b"\x00") + b"\x51" + push(b"\x01") + b"\x55"  # SSTORE(1, MLOAD(0))
        + push(rlen) + push(roff) + push(b"\x00") + b"\x39"  # CODECOPY(0, roff, rlen)
        + push(rlen) + push(b"\x00") + b"\xf3"  # RETURN(0, rlen)
    )
    assert len(code) == init_len, len(code)
    return code + RUNTIME


INIT_CODE = _init()
