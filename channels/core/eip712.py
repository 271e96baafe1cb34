"""EIP-712 encoding of every signed message type (docs/PROTOCOL.md sections 2 and 4).

Two encoders live here on purpose:

* a hand-written fixed-width encoder for the hot path (every field is a static 32-byte word, so
  a struct hash is one keccak over concatenated words);
* :func:`typed_data` exports each message as ``eth_signTypedData_v4`` JSON, which wallets and
  eth-account understand; tests check both give the same digest. Every uint is written as a
  decimal string: JSON numbers above 2**53 lose precision in JavaScript wallets (one silently
  signs another digest, another throws), and EIP-712 tooling reads decimal strings exactly.

The transport login (docs/PROTOCOL.md section 12) is an EIP-712 message too, so a wallet that only
signs typed data can prove a node's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from channels.core.hashing import keccak256
from channels.core.model import (
    Address,
    Attestation,
    Digest,
    State,
    Withdrawal,
    check_bytes,
    check_uint,
    to_checksum,
)

DOMAIN_NAME = "OptionChannels"
DOMAIN_VERSION = "1"

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
STATE_TYPE = (
    "State(bytes32 channelId,uint64 version,uint256 balance0,uint256 balance1,"
    "uint256 deposited0,uint256 deposited1,uint256 withdrawn0,uint256 withdrawn1,"
    "uint256 locked,bytes32 positionsRoot,uint32 positionCount,bool isFinal)"
)
ATTESTATION_TYPE = "Attestation(bytes32 underlying,uint64 expiry,uint256 price)"
WITHDRAWAL_TYPE = (
    "Withdrawal(bytes32 channelId,uint64 version,uint8 participant,uint256 amount,"
    "address recipient)"
)
LOGIN_TYPE = "Login(uint8 role,bytes32 handshakeHash)"

DOMAIN_TYPEHASH = keccak256(DOMAIN_TYPE.encode())
STATE_TYPEHASH = keccak256(STATE_TYPE.encode())
ATTESTATION_TYPEHASH = keccak256(ATTESTATION_TYPE.encode())
WITHDRAWAL_TYPEHASH = keccak256(WITHDRAWAL_TYPE.encode())
LOGIN_TYPEHASH = keccak256(LOGIN_TYPE.encode())

_NAME_HASH = keccak256(DOMAIN_NAME.encode())
_VERSION_HASH = keccak256(DOMAIN_VERSION.encode())
_PREFIX = b"\x19\x01"
_TRUE = (1).to_bytes(32, "big")
_FALSE = bytes(32)


def _w(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class Domain:
    """The EIP-712 domain: one chain and one adjudicator deployment."""

    chain_id: int
    verifying_contract: Address
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_uint(self.chain_id, 256, "chain_id")
        check_bytes(self.verifying_contract, 20, "verifying_contract")
        separator = keccak256(
            DOMAIN_TYPEHASH
            + _NAME_HASH
            + _VERSION_HASH
            + _w(self.chain_id)
            + bytes(12)
            + self.verifying_contract
        )
        object.__setattr__(self, "separator", separator)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": str(self.chain_id),
            "verifyingContract": to_checksum(self.verifying_contract),
        }


def state_struct_hash(s: State) -> bytes:
    return keccak256(
        b"".join(
            (
                STATE_TYPEHASH,
                s.channel_id,
                _w(s.version),
                _w(s.balances[0]),
                _w(s.balances[1]),
                _w(s.deposited[0]),
                _w(s.deposited[1]),
                _w(s.withdrawn[0]),
                _w(s.withdrawn[1]),
                _w(s.locked),
                s.positions_root,
                _w(s.position_count),
                _TRUE if s.is_final else _FALSE,
            )
        )
    )


def attestation_struct_hash(a: Attestation) -> bytes:
    return keccak256(ATTESTATION_TYPEHASH + a.underlying + _w(a.expiry) + _w(a.price))


def withdrawal_struct_hash(w: Withdrawal) -> bytes:
    return keccak256(
        WITHDRAWAL_TYPEHASH
        + w.channel_id
        + _w(w.version)
        + _w(w.participant)
        + _w(w.amount)
        + bytes(12)
        + w.recipient
    )


@dataclass(frozen=True, slots=True)
class Login:
    """The transport login proof: "I hold this channel key and speak as ``role`` in the session
    whose Noise handshake hash is ``handshake_hash``" (the domain binds chain and adjudicator)."""

    role: int
    handshake_hash: bytes

    def __post_init__(self) -> None:
        check_uint(self.role, 8, "role")
        check_bytes(self.handshake_hash, 32, "handshake_hash")


def login_struct_hash(login: Login) -> bytes:
    return keccak256(LOGIN_TYPEHASH + _w(login.role) + login.handshake_hash)


def digest(domain: Domain, struct_hash: bytes) -> Digest:
    return Digest(keccak256(_PREFIX + domain.separator + struct_hash))


def state_digest(domain: Domain, s: State) -> Digest:
    return digest(domain, state_struct_hash(s))


def attestation_digest(domain: Domain, a: Attestation) -> Digest:
    return digest(domain, attestation_struct_hash(a))


def withdrawal_digest(domain: Domain, w: Withdrawal) -> Digest:
    return digest(domain, withdrawal_struct_hash(w))


def login_digest(domain: Domain, login: Login) -> Digest:
    return digest(domain, login_struct_hash(login))


#: Every message type defined here (a firm quote is defined in channels.core.quotes).
SignedMessage = State | Attestation | Withdrawal | Login
SIGNED_MESSAGES = (State, Attestation, Withdrawal, Login)


def message_digest(domain: Domain, message: SignedMessage) -> Digest:
    """The EIP-712 digest of any signed message type."""
    if isinstance(message, State):
        return state_digest(domain, message)
    if isinstance(message, Withdrawal):
        return withdrawal_digest(domain, message)
    if isinstance(message, Attestation):
        return attestation_digest(domain, message)
    if isinstance(message, Login):
        return login_digest(domain, message)
    raise TypeError(f"not a signed message type: {type(message).__name__}")


# eth_signTypedData_v4 export --------------------------------------------------------------------

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _fields(type_string: str) -> list[dict[str, str]]:
    inner = type_string[type_string.index("(") + 1 : -1]
    out = []
    for part in inner.split(","):
        typ, name = part.split(" ")
        out.append({"name": name, "type": typ})
    return out


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def typed_data(domain: Domain, message: SignedMessage) -> dict[str, Any]:
    """The message as ``eth_signTypedData_v4`` JSON (a wallet or eth-account can sign it).

    Uints are decimal strings, so ``json.dumps`` of the result is exact in every wallet."""
    if isinstance(message, State):
        primary, type_string = "State", STATE_TYPE
        body: dict[str, Any] = {
            "channelId": _hex(message.channel_id),
            "version": str(message.version),
            "balance0": str(message.balances[0]),
            "balance1": str(message.balances[1]),
            "deposited0": str(message.deposited[0]),
            "deposited1": str(message.deposited[1]),
            "withdrawn0": str(message.withdrawn[0]),
            "withdrawn1": str(message.withdrawn[1]),
            "locked": str(message.locked),
            "positionsRoot": _hex(message.positions_root),
            "positionCount": str(message.position_count),
            "isFinal": message.is_final,
        }
    elif isinstance(message, Attestation):
        primary, type_string = "Attestation", ATTESTATION_TYPE
        body = {
            "underlying": _hex(message.underlying),
            "expiry": str(message.expiry),
            "price": str(message.price),
        }
    elif isinstance(message, Withdrawal):
        primary, type_string = "Withdrawal", WITHDRAWAL_TYPE
        body = {
            "channelId": _hex(message.channel_id),
            "version": str(message.version),
            "participant": str(message.participant),
            "amount": str(message.amount),
            "recipient": to_checksum(message.recipient),
        }
    elif isinstance(message, Login):
        primary, type_string = "Login", LOGIN_TYPE
        body = {"role": str(message.role), "handshakeHash": _hex(message.handshake_hash)}
    else:  # pragma: no cover - guarded by the type annotation
        raise TypeError(f"not a signed message type: {type(message).__name__}")
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, primary: _fields(type_string)},
        "primaryType": primary,
        "domain": domain.as_json(),
        "message": body,
    }
