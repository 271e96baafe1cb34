"""The channel's data model: frozen, typed dataclasses checked on construction.

Money and prices are ints, never floats (scales in docs/PROTOCOL.md section 1):

* amounts: uint256 in the asset's smallest unit;
* prices (strike, oracle price): 8 decimals (``PRICE_SCALE``);
* quantities: 18 decimals (``QUANTITY_SCALE``);
* times: unix seconds (uint64), always passed in, never read from a clock.

Addresses are 20 raw bytes and ids 32 raw bytes; :func:`to_checksum` gives the display form.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NewType

from channels.core.errors import InvalidAmount, InvalidField
from channels.core.hashing import keccak256

if TYPE_CHECKING:  # options builds on this module; the trade types are only named here
    from channels.core.options import Trade

Address = NewType("Address", bytes)
ChannelId = NewType("ChannelId", bytes)
Digest = NewType("Digest", bytes)
Version = NewType("Version", int)
Amount = NewType("Amount", int)
Price = NewType("Price", int)
Quantity = NewType("Quantity", int)
Timestamp = NewType("Timestamp", int)
PositionId = NewType("PositionId", int)

PRICE_DECIMALS = 8
QUANTITY_DECIMALS = 18
PRICE_SCALE = 10**PRICE_DECIMALS
QUANTITY_SCALE = 10**QUANTITY_DECIMALS

UINT8_MAX = 2**8 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
UINT128_MAX = 2**128 - 1
UINT256_MAX = 2**256 - 1

ZERO_ADDRESS = Address(bytes(20))
ZERO_HASH = bytes(32)

#: The shortest challenge period the adjudicator contract accepts (seconds); the node asks for
#: much more before it trusts a channel (``watcher.SAFE_MIN_CHALLENGE_PERIOD``).
CONTRACT_MIN_CHALLENGE_PERIOD = 60
MAX_CHALLENGE_PERIOD = 30 * 24 * 3600
#: The most decimals an asset may have (``Params`` refuses more; so does the node reading a
#: token's ``decimals()``, adjudicator/tokens.py).
MAX_ASSET_DECIMALS = 36
# >>> gas (issue 16): the adjudicator's cap on a channel's deposits
#: The adjudicator caps a channel's cumulative deposits, both participants together, at 2**96 - 1
#: (its record keeps every amount of a channel in 96 bits); more cannot be funded.
MAX_CHANNEL_DEPOSITS = 2**96 - 1
MAX_FUNDING = MAX_CHANNEL_DEPOSITS
# <<< gas


# >>> gas (issue 16)
def check_channel_deposits(deposits: Sequence[int]) -> None:
    """Refuse deposits the adjudicator cannot hold: both together above MAX_CHANNEL_DEPOSITS."""
    if sum(deposits) > MAX_CHANNEL_DEPOSITS:
        raise InvalidAmount(
            f"a channel's deposits, both participants together, must not exceed 2**96 - 1 "
            f"(the adjudicator's cap), got {sum(deposits)}"
        )
# <<< gas


def check_uint(value: object, bits: int, name: str) -> int:
    """Return ``value`` if it is an int (not a bool) in ``[0, 2**bits)``, else raise."""
    if type(value) is not int:  # bool is an int subclass and is refused on purpose
        raise InvalidAmount(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value >> bits:
        raise InvalidAmount(f"{name}={value} does not fit uint{bits}")
    return value


def check_bytes(value: object, length: int, name: str) -> bytes:
    """Return ``value`` if it is exactly ``length`` raw bytes, else raise."""
    if type(value) is not bytes or len(value) != length:
        raise InvalidField(f"{name} must be {length} raw bytes")
    return value


def address(value: str | bytes) -> Address:
    """Parse an address from 20 bytes or a 0x-prefixed hex string (any case)."""
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        if len(text) != 40:
            raise InvalidField(f"address {value!r} must have 40 hex digits")
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise InvalidField(f"address {value!r} is not hex") from exc
        return Address(raw)
    return Address(check_bytes(value, 20, "address"))


def to_checksum(addr: bytes) -> str:
    """EIP-55 mixed-case form of a 20-byte address."""
    hex_addr = addr.hex()
    digest = keccak256(hex_addr.encode()).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_addr)
    )


def symbol(text: str) -> bytes:
    """The bytes32 form of an underlying's symbol: ASCII, right-padded with zeros."""
    raw = text.encode("ascii")
    if not raw or len(raw) > 32:
        raise InvalidField(f"symbol {text!r} must be 1 to 32 ASCII characters")
    return raw.ljust(32, b"\0")


def symbol_text(raw: bytes) -> str:
    """The readable form of a bytes32 symbol."""
    return raw.rstrip(b"\0").decode("ascii", errors="replace")


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr_word(addr: bytes) -> bytes:
    return bytes(12) + addr


@dataclass(frozen=True, slots=True)
class Params:
    """What both participants fix at opening; the channel id is the hash of its hash and the asset.

    Participant 0 is the leader: it signs every new version first (docs/PROTOCOL.md section 7).
    ``asset`` is the zero address for ETH.
    """

    chain_id: int
    adjudicator: Address
    asset: Address
    asset_decimals: int
    participants: tuple[Address, Address]
    challenge_period: int
    oracle: Address
    nonce: int
    channel_id: ChannelId = field(init=False, repr=False, compare=False)
    params_hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_uint(self.chain_id, 256, "chain_id")
        check_bytes(self.adjudicator, 20, "adjudicator")
        check_bytes(self.asset, 20, "asset")
        check_uint(self.asset_decimals, 8, "asset_decimals")
        if self.asset_decimals > MAX_ASSET_DECIMALS:
            raise InvalidField(f"asset_decimals above {MAX_ASSET_DECIMALS} is not supported")
        if type(self.participants) is not tuple or len(self.participants) != 2:
            raise InvalidField("participants must be a pair")
        for p in self.participants:
            check_bytes(p, 20, "participant")
            if p == ZERO_ADDRESS:
                raise InvalidField("a participant cannot be the zero address")
        if self.participants[0] == self.participants[1]:
            raise InvalidField("the two participants must differ")
        check_uint(self.challenge_period, 64, "challenge_period")
        if not CONTRACT_MIN_CHALLENGE_PERIOD <= self.challenge_period <= MAX_CHALLENGE_PERIOD:
            raise InvalidField(
                "challenge_period must be within "
                f"[{CONTRACT_MIN_CHALLENGE_PERIOD}, {MAX_CHALLENGE_PERIOD}]"
            )
        check_bytes(self.oracle, 20, "oracle")
        if self.oracle == ZERO_ADDRESS:
            raise InvalidField("the oracle cannot be the zero address")
        check_uint(self.nonce, 256, "nonce")
        # The id hashes the asset once more beside the params hash: a deposit names only the params
        # hash and its asset, and the adjudicator derives the id from both (PROTOCOL.md section 3).
        params_hash = keccak256(self.abi_encode())
        object.__setattr__(self, "params_hash", params_hash)
        object.__setattr__(
            self, "channel_id", ChannelId(keccak256(params_hash + _addr_word(self.asset)))
        )

    def abi_encode(self) -> bytes:
        """``abi.encode`` of the nine static fields, as the contract hashes them."""
        return b"".join(
            (
                _word(self.chain_id),
                _addr_word(self.adjudicator),
                _addr_word(self.asset),
                _word(self.asset_decimals),
                _addr_word(self.participants[0]),
                _addr_word(self.participants[1]),
                _word(self.challenge_period),
                _addr_word(self.oracle),
                _word(self.nonce),
            )
        )

    def index_of(self, addr: bytes) -> int:
        """Participant index (0 or 1) of ``addr``."""
        if addr == self.participants[0]:
            return 0
        if addr == self.participants[1]:
            return 1
        raise InvalidField(f"{to_checksum(addr)} is not a participant of this channel")


class OptionKind(enum.IntEnum):
    CALL = 0
    PUT = 1


@dataclass(frozen=True, slots=True)
class Position:
    """One open European, cash-settled option. The holder is the participant that is not the writer.

    The holder's payoff is capped by ``collateral`` (locked from the writer's balance at opening).
    """

    id: PositionId
    underlying: bytes
    kind: OptionKind
    strike: Price
    expiry: Timestamp
    quantity: Quantity
    writer: int
    collateral: Amount

    def __post_init__(self) -> None:
        check_uint(self.id, 64, "position id")
        check_bytes(self.underlying, 32, "underlying")
        if type(self.kind) is not OptionKind:
            if type(self.kind) is int and self.kind in (0, 1):
                object.__setattr__(self, "kind", OptionKind(self.kind))
            else:
                raise InvalidField("kind must be OptionKind.CALL or OptionKind.PUT")
        check_uint(self.strike, 256, "strike")
        check_uint(self.expiry, 64, "expiry")
        check_uint(self.quantity, 256, "quantity")
        if type(self.writer) is not int or self.writer not in (0, 1):
            raise InvalidField("writer must be participant index 0 or 1")
        check_uint(self.collateral, 128, "collateral")

    @property
    def holder(self) -> int:
        return 1 - self.writer

    def abi_encode(self) -> bytes:
        # to_bytes inline, not through _word: every position opened is encoded once for its leaf
        # on the update's hot path (the kind is an IntEnum: its to_bytes is the int's).
        return b"".join(
            (
                self.id.to_bytes(32, "big"),
                self.underlying,
                self.kind.to_bytes(32, "big"),
                self.strike.to_bytes(32, "big"),
                self.expiry.to_bytes(32, "big"),
                self.quantity.to_bytes(32, "big"),
                self.writer.to_bytes(32, "big"),
                self.collateral.to_bytes(32, "big"),
            )
        )

    def leaf(self) -> bytes:
        """Double-hashed leaf (second-preimage safe, as OpenZeppelin's MerkleProof expects)."""
        return keccak256(keccak256(self.abi_encode()))


@dataclass(frozen=True, slots=True)
class State:
    """The signed part of a channel state (docs/PROTOCOL.md section 4).

    The open positions are represented by their Merkle root and count; the positions themselves
    live in a :class:`channels.core.positions.PositionBook` next to it.
    """

    channel_id: ChannelId
    version: Version
    balances: tuple[Amount, Amount]
    deposited: tuple[Amount, Amount]
    withdrawn: tuple[Amount, Amount]
    locked: Amount
    positions_root: bytes
    position_count: int
    is_final: bool

    def __post_init__(self) -> None:
        check_bytes(self.channel_id, 32, "channel_id")
        check_uint(self.version, 64, "version")
        for name in ("balances", "deposited", "withdrawn"):
            pair = getattr(self, name)
            if type(pair) is not tuple or len(pair) != 2:
                raise InvalidField(f"{name} must be a pair")
            check_uint(pair[0], 128, name)
            check_uint(pair[1], 128, name)
        check_uint(self.locked, 128, "locked")
        check_bytes(self.positions_root, 32, "positions_root")
        check_uint(self.position_count, 32, "position_count")
        if type(self.is_final) is not bool:
            raise InvalidField("is_final must be a bool")

    @property
    def funding(self) -> int:
        """What the channel holds for this state: credited deposits less partial withdrawals."""
        return self.deposited[0] + self.deposited[1] - self.withdrawn[0] - self.withdrawn[1]

    def conserves(self) -> bool:
        return self.balances[0] + self.balances[1] + self.locked == self.funding


@dataclass(frozen=True, slots=True)
class SignedState:
    """A state with the signatures gathered so far (index = participant)."""

    state: State
    signatures: tuple[bytes | None, bytes | None]

    @property
    def fully_signed(self) -> bool:
        return self.signatures[0] is not None and self.signatures[1] is not None


@dataclass(frozen=True, slots=True)
class Attestation:
    """An oracle's signed statement: the price of ``underlying`` at time ``expiry``."""

    underlying: bytes
    expiry: Timestamp
    price: Price

    def __post_init__(self) -> None:
        check_bytes(self.underlying, 32, "underlying")
        check_uint(self.expiry, 64, "expiry")
        check_uint(self.price, 256, "price")


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Authorises ``participant`` to take ``amount`` out of an open channel (both must sign).

    ``version`` names the state that already debits the amount.
    """

    channel_id: ChannelId
    version: Version
    participant: int
    amount: Amount
    recipient: Address

    def __post_init__(self) -> None:
        check_bytes(self.channel_id, 32, "channel_id")
        check_uint(self.version, 64, "version")
        if type(self.participant) is not int or self.participant not in (0, 1):
            raise InvalidField("participant must be 0 or 1")
        check_uint(self.amount, 128, "amount")
        check_bytes(self.recipient, 20, "recipient")
        if self.recipient == ZERO_ADDRESS:
            raise InvalidField("recipient cannot be the zero address")


@dataclass(frozen=True, slots=True)
class SignedUpdate:
    """A fully signed state with the trades that produced it (the store's append-only record)."""

    signed: SignedState
    trades: tuple[Trade, ...]
    withdrawal: Withdrawal | None = None
    withdrawal_signatures: tuple[bytes, bytes] | None = None
