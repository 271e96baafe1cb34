"""The wire codec: protocol objects to msgpack bytes and back, and a length-prefix framer (sans-IO).

Envelope
--------
Every encoded object is the msgpack array ``[schema_version, tag, fields]``: ``schema_version`` is
:data:`PROTOCOL_VERSION` (1), ``tag`` a small int naming the type, ``fields`` a map with exactly
the string keys listed below (no key missing, no key unknown, no key twice).

==== ===================== ===================================================================
tag  type                  keys of ``fields``
==== ===================== ===================================================================
1    OpenProposal          params (Params map), deposits (u256 pair), signature
2    OpenAccept            channel_id, signature
3    UpdateRequest         channel_id, request_id, trades
4    Proposal              channel_id, base_version, trades, state (State map), signature,
                           request_id (int | nil), withdrawal_signature (sig | nil)
5    Accept                channel_id, version, signature, withdrawal_signature (sig | nil)
6    Reject                channel_id, version (int | nil), request_id (int | nil), rule, reason
7    Reestablish           channel_id, state (State map), signatures (sig pair), book (Book map)
32   SignedUpdate (store)  state (State map), signatures (pair of sig | nil), trades,
                           withdrawal (Withdrawal map | nil), withdrawal_signatures (sig pair | nil)
33   Params (store)        the Params map below
34   State (store)         the State map below
35   BookSnapshot (store)  the Book map below
36   trades (store)        trades
==== ===================== ===================================================================

Tags 1-7 are peer messages (:func:`decode_message` accepts only these); 32-36 are records for the
store, each read by its own decoder. Nested maps carry no envelope:

* Params: chain_id (u256), adjudicator, asset, asset_decimals, participants (address pair),
  challenge_period, oracle, nonce (u256)
* State: channel_id, version, balances, deposited, withdrawn (u256 pairs), locked (u256),
  positions_root (hash), position_count, is_final (bool)
* Position: id, underlying (hash), kind (0 call, 1 put), strike, quantity, collateral (u256),
  expiry, writer (0 or 1)
* Book: high_water (at most ``positions.MAX_SLOTS``), slots (array of ``[slot, Position map]``,
  each slot below ``MAX_SLOTS``)
* Withdrawal: channel_id, version, participant, amount (u256), recipient (address)
* Attestation: underlying (hash), expiry, price (u256)

``trades`` is an array (at most :data:`MAX_TRADES`) of ``[trade_tag, fields]``:

==== =============== =====================================================
tag  trade           keys
==== =============== =====================================================
1    Pay             payer, amount
2    OpenOption      position (Position map), premium; a fill of a firm quote also has
                     quote_id (32-byte bin; channels/core/quote_wire.py, PROTOCOL.md)
3    Unwind          position_id, holder_share
4    Settle          position_id, attestation (Attestation map), signature
5    CreditDeposit   participant, amount
6    DebitWithdrawal participant, amount, recipient
7    Finalize        (empty map)
==== =============== =====================================================

Value types
-----------
* uint256/uint128 (amounts, prices, quantities, chain id, nonce, shares, premiums): a 32-byte
  big-endian ``bin``, never a msgpack int (msgpack ints stop at 64 bits).
* uint64 and smaller (versions, expiries, ids, slots, request ids, decimals, kinds, participant
  indexes, the challenge period): a non-negative msgpack int; never a bool.
* addresses: 20-byte ``bin``; channel ids, hashes, underlyings: 32-byte ``bin``; signatures:
  65-byte ``bin`` (their contents are checked by :mod:`channels.core.signing`, not here).
* bool (``is_final`` only): a msgpack bool, never an int. ``rule`` and ``reason``: str of at most
  :data:`MAX_RULE_LEN` / :data:`MAX_REASON_LEN` characters. Pairs: arrays of exactly two.

Decoding is strict: no floats, ExtType or Timestamp, no trailing bytes, non-str map keys, wrong
``bin`` lengths; msgpack's own nesting limit stops deep nesting. Every decode failure is a
:class:`~channels.core.errors.WireError` (a ``RemoteProtocolError``): :class:`MalformedMessage`
for bytes that are not one clean msgpack object, :class:`SchemaError` for a schema or value-range
violation (the data model's own checks included), :class:`UnsupportedVersion`,
:class:`UnknownType`, :class:`FrameTooLarge`. Encoding a value the format cannot carry raises
:class:`~channels.core.errors.UnencodableMessage` (a ``LocalProtocolError``).

Framing
-------
On a byte stream each payload is preceded by its length as a 4-byte big-endian unsigned int
(:func:`frame`, :class:`FrameDecoder`). A payload is at most :data:`MAX_FRAME` bytes (1 MiB); a
larger length prefix is refused before its body is buffered. At about 225 bytes per position, a
``Reestablish`` carries a book of up to about 4,500 open positions. Store records are not framed and
may be up to :data:`MAX_RECORD` bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NoReturn

import msgpack

from channels.core.errors import (
    ChannelError,
    FrameTooLarge,
    MalformedMessage,
    RuleViolation,
    SchemaError,
    UnencodableMessage,
    UnknownType,
    UnsupportedVersion,
)
from channels.core.machine import SignedUpdate
from channels.core.messages import (
    Accept,
    Message,
    OpenAccept,
    OpenProposal,
    Proposal,
    Reestablish,
    Reject,
    UpdateRequest,
)
from channels.core.model import (
    UINT64_MAX,
    Attestation,
    OptionKind,
    Params,
    Position,
    SignedState,
    State,
    Withdrawal,
)
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Trade,
    Unwind,
)
from channels.core.positions import MAX_SLOTS, BookSnapshot

__all__ = [
    "MAX_FRAME",
    "MAX_REASON_LEN",
    "MAX_RECORD",
    "MAX_RULE_LEN",
    "MAX_TRADES",
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "decode_book",
    "decode_message",
    "decode_params",
    "decode_state",
    "decode_trades",
    "decode_update",
    "encode_book",
    "encode_message",
    "encode_params",
    "encode_state",
    "encode_trades",
    "encode_update",
    "frame",
]

PROTOCOL_VERSION = 1
#: Largest framed payload (bytes). A peer message above it is refused before it is buffered.
MAX_FRAME = 1 << 20
#: Largest store record (bytes): a SignedUpdate or a book snapshot read back from disk.
MAX_RECORD = 1 << 26
#: Most trades in one trades array (the default ``Limits.max_trades_per_update``).
MAX_TRADES = 10_000
MAX_RULE_LEN = 64
MAX_REASON_LEN = 4096

_ADDRESS_LEN = 20
_HASH_LEN = 32
_WORD_LEN = 32
_SIGNATURE_LEN = 65
_LENGTH_PREFIX = struct.Struct(">I")

_Fields = dict[str, object]

# Message tags (peer messages) and record tags (store).
TAG_OPEN_PROPOSAL = 1
TAG_OPEN_ACCEPT = 2
TAG_UPDATE_REQUEST = 3
TAG_PROPOSAL = 4
TAG_ACCEPT = 5
TAG_REJECT = 6
TAG_REESTABLISH = 7
TAG_SIGNED_UPDATE = 32
TAG_PARAMS = 33
TAG_STATE = 34
TAG_BOOK = 35
TAG_TRADES = 36

# Trade tags (inside a trades array).
TRADE_PAY = 1
TRADE_OPEN_OPTION = 2
TRADE_UNWIND = 3
TRADE_SETTLE = 4
TRADE_CREDIT_DEPOSIT = 5
TRADE_DEBIT_WITHDRAWAL = 6
TRADE_FINALIZE = 7


# =================================================================================================
# Encoding. Each helper checks the exact type (a bool is not an int) and the range, so that what
# is encoded always decodes to an equal object; errors become UnencodableMessage at the top.
# =================================================================================================


class _Unencodable(Exception):
    """Internal: a value does not fit its field (turned into UnencodableMessage)."""


def _eu256(value: int) -> bytes:
    if type(value) is not int:
        raise _Unencodable(f"expected an int, got {type(value).__name__}")
    return value.to_bytes(_WORD_LEN, "big")  # OverflowError for negative or >= 2**256


def _eu64(value: int) -> int:
    if type(value) is not int or not 0 <= value <= UINT64_MAX:
        raise _Unencodable(f"expected a uint64, got {value!r}")
    return value


def _eopt_u64(value: int | None) -> int | None:
    return None if value is None else _eu64(value)


def _ebytes(value: bytes, length: int) -> bytes:
    if type(value) is not bytes or len(value) != length:
        raise _Unencodable(f"expected {length} raw bytes")
    return value


def _esig(value: bytes) -> bytes:
    if type(value) is not bytes or len(value) != _SIGNATURE_LEN:
        raise _Unencodable("a signature must be 65 raw bytes")
    return value


def _eopt_sig(value: bytes | None) -> bytes | None:
    return None if value is None else _esig(value)


def _estr(value: str, limit: int) -> str:
    if type(value) is not str or len(value) > limit:
        raise _Unencodable(f"expected a str of at most {limit} characters")
    return value


def _eu256_pair(pair: tuple[int, int]) -> tuple[bytes, bytes]:
    if type(pair) is not tuple or len(pair) != 2:
        raise _Unencodable("expected a pair")
    return (_eu256(pair[0]), _eu256(pair[1]))


def _esig_pair(pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    if type(pair) is not tuple or len(pair) != 2:
        raise _Unencodable("expected a pair of signatures")
    return (_esig(pair[0]), _esig(pair[1]))


def _e_params(p: Params) -> _Fields:
    participants = p.participants
    if type(participants) is not tuple or len(participants) != 2:
        raise _Unencodable("participants must be a pair")
    return {
        "chain_id": _eu256(p.chain_id),
        "adjudicator": _ebytes(p.adjudicator, _ADDRESS_LEN),
        "asset": _ebytes(p.asset, _ADDRESS_LEN),
        "asset_decimals": _eu64(p.asset_decimals),
        "participants": (
            _ebytes(participants[0], _ADDRESS_LEN),
            _ebytes(participants[1], _ADDRESS_LEN),
        ),
        "challenge_period": _eu64(p.challenge_period),
        "oracle": _ebytes(p.oracle, _ADDRESS_LEN),
        "nonce": _eu256(p.nonce),
    }


def _e_state(s: State) -> _Fields:
    if type(s.is_final) is not bool:
        raise _Unencodable("is_final must be a bool")
    return {
        "channel_id": _ebytes(s.channel_id, _HASH_LEN),
        "version": _eu64(s.version),
        "balances": _eu256_pair(s.balances),
        "deposited": _eu256_pair(s.deposited),
        "withdrawn": _eu256_pair(s.withdrawn),
        "locked": _eu256(s.locked),
        "positions_root": _ebytes(s.positions_root, _HASH_LEN),
        "position_count": _eu64(s.position_count),
        "is_final": s.is_final,
    }


def _e_position(p: Position) -> _Fields:
    return {
        "id": _eu64(p.id),
        "underlying": _ebytes(p.underlying, _HASH_LEN),
        "kind": int(p.kind),  # OptionKind, checked by Position itself
        "strike": _eu256(p.strike),
        "expiry": _eu64(p.expiry),
        "quantity": _eu256(p.quantity),
        "writer": _eu64(p.writer),
        "collateral": _eu256(p.collateral),
    }


def _eslot(value: int) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SLOTS:
        raise _Unencodable(f"expected a slot count in [0, {MAX_SLOTS}], got {value!r}")
    return value


def _e_book(b: BookSnapshot) -> _Fields:
    high_water = _eslot(b.high_water)
    slots = []
    for slot, pos in b.slots:
        if _eslot(slot) == MAX_SLOTS:
            raise _Unencodable(f"slot {slot} is not below {MAX_SLOTS}")
        slots.append((slot, _e_position(pos)))
    return {"high_water": high_water, "slots": tuple(slots)}


def _e_withdrawal(w: Withdrawal) -> _Fields:
    return {
        "channel_id": _ebytes(w.channel_id, _HASH_LEN),
        "version": _eu64(w.version),
        "participant": _eu64(w.participant),
        "amount": _eu256(w.amount),
        "recipient": _ebytes(w.recipient, _ADDRESS_LEN),
    }


def _e_attestation(a: Attestation) -> _Fields:
    return {
        "underlying": _ebytes(a.underlying, _HASH_LEN),
        "expiry": _eu64(a.expiry),
        "price": _eu256(a.price),
    }


def _e_pay(t: Pay) -> _Fields:
    return {"payer": _eu64(t.payer), "amount": _eu256(t.amount)}


def _e_open_option(t: OpenOption) -> _Fields:
    fields: _Fields = {"position": _e_position(t.position), "premium": _eu256(t.premium)}
    if t.quote_id is not None:  # a fill of a firm quote; plain trades keep the two-key map
        fields["quote_id"] = _ebytes(t.quote_id, _HASH_LEN)
    return fields


def _e_unwind(t: Unwind) -> _Fields:
    return {"position_id": _eu64(t.position_id), "holder_share": _eu256(t.holder_share)}


def _e_settle(t: Settle) -> _Fields:
    return {
        "position_id": _eu64(t.position_id),
        "attestation": _e_attestation(t.attestation),
        "signature": _esig(t.signature),
    }


def _e_credit_deposit(t: CreditDeposit) -> _Fields:
    return {"participant": _eu64(t.participant), "amount": _eu256(t.amount)}


def _e_debit_withdrawal(t: DebitWithdrawal) -> _Fields:
    return {
        "participant": _eu64(t.participant),
        "amount": _eu256(t.amount),
        "recipient": _ebytes(t.recipient, _ADDRESS_LEN),
    }


def _e_finalize(t: Finalize) -> _Fields:
    return {}


_TRADE_ENCODERS: dict[type, tuple[int, Callable[[Any], _Fields]]] = {
    Pay: (TRADE_PAY, _e_pay),
    OpenOption: (TRADE_OPEN_OPTION, _e_open_option),
    Unwind: (TRADE_UNWIND, _e_unwind),
    Settle: (TRADE_SETTLE, _e_settle),
    CreditDeposit: (TRADE_CREDIT_DEPOSIT, _e_credit_deposit),
    DebitWithdrawal: (TRADE_DEBIT_WITHDRAWAL, _e_debit_withdrawal),
    Finalize: (TRADE_FINALIZE, _e_finalize),
}


def _e_trades(trades: tuple[Trade, ...]) -> tuple[tuple[int, _Fields], ...]:
    if type(trades) is not tuple:
        raise _Unencodable("trades must be a tuple")
    if len(trades) > MAX_TRADES:
        raise _Unencodable(f"more than {MAX_TRADES} trades")
    out = []
    for trade in trades:
        entry = _TRADE_ENCODERS.get(type(trade))
        if entry is None:
            raise _Unencodable(f"not a trade: {type(trade).__name__}")
        tag, encode = entry
        out.append((tag, encode(trade)))
    return tuple(out)


def _e_open_proposal(m: OpenProposal) -> _Fields:
    return {
        "params": _e_params(m.params),
        "deposits": _eu256_pair(m.deposits),
        "signature": _esig(m.signature),
    }


def _e_open_accept(m: OpenAccept) -> _Fields:
    return {"channel_id": _ebytes(m.channel_id, _HASH_LEN), "signature": _esig(m.signature)}


def _e_update_request(m: UpdateRequest) -> _Fields:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "request_id": _eu64(m.request_id),
        "trades": _e_trades(m.trades),
    }


def _e_proposal(m: Proposal) -> _Fields:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "base_version": _eu64(m.base_version),
        "trades": _e_trades(m.trades),
        "state": _e_state(m.state),
        "signature": _esig(m.signature),
        "request_id": _eopt_u64(m.request_id),
        "withdrawal_signature": _eopt_sig(m.withdrawal_signature),
    }


def _e_accept(m: Accept) -> _Fields:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "version": _eu64(m.version),
        "signature": _esig(m.signature),
        "withdrawal_signature": _eopt_sig(m.withdrawal_signature),
    }


def _e_reject(m: Reject) -> _Fields:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "version": _eopt_u64(m.version),
        "request_id": _eopt_u64(m.request_id),
        "rule": _estr(m.rule, MAX_RULE_LEN),
        "reason": _estr(m.reason, MAX_REASON_LEN),
    }


def _e_reestablish(m: Reestablish) -> _Fields:
    return {
        "channel_id": _ebytes(m.channel_id, _HASH_LEN),
        "state": _e_state(m.state),
        "signatures": _esig_pair(m.signatures),
        "book": _e_book(m.book),
    }


def _e_signed_update(u: SignedUpdate) -> _Fields:
    signed = u.signed
    if type(signed) is not SignedState:
        raise _Unencodable("signed must be a SignedState")
    sigs = signed.signatures
    if type(sigs) is not tuple or len(sigs) != 2:
        raise _Unencodable("signatures must be a pair")
    withdrawal = u.withdrawal
    withdrawal_sigs = u.withdrawal_signatures
    return {
        "state": _e_state(signed.state),
        "signatures": (_eopt_sig(sigs[0]), _eopt_sig(sigs[1])),
        "trades": _e_trades(u.trades),
        "withdrawal": None if withdrawal is None else _e_withdrawal(withdrawal),
        "withdrawal_signatures": None if withdrawal_sigs is None else _esig_pair(withdrawal_sigs),
    }


_MESSAGE_ENCODERS: dict[type, tuple[int, Callable[[Any], _Fields]]] = {
    OpenProposal: (TAG_OPEN_PROPOSAL, _e_open_proposal),
    OpenAccept: (TAG_OPEN_ACCEPT, _e_open_accept),
    UpdateRequest: (TAG_UPDATE_REQUEST, _e_update_request),
    Proposal: (TAG_PROPOSAL, _e_proposal),
    Accept: (TAG_ACCEPT, _e_accept),
    Reject: (TAG_REJECT, _e_reject),
    Reestablish: (TAG_REESTABLISH, _e_reestablish),
}


def _pack(tag: int, encode: Callable[[Any], _Fields], obj: object) -> bytes:
    try:
        fields = encode(obj)
        packed: bytes = msgpack.packb((PROTOCOL_VERSION, tag, fields), use_bin_type=True)
    except (_Unencodable, AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise UnencodableMessage(f"cannot encode {type(obj).__name__}: {exc}") from exc
    return packed


def encode_message(msg: Message) -> bytes:
    """The envelope ``[1, tag, fields]`` of a peer message, as msgpack bytes (not framed)."""
    entry = _MESSAGE_ENCODERS.get(type(msg))
    if entry is None:
        raise UnencodableMessage(f"not a protocol message: {type(msg).__name__}")
    return _pack(entry[0], entry[1], msg)


def encode_update(update: SignedUpdate) -> bytes:
    """A store record of a signed update (tag 32)."""
    return _pack(TAG_SIGNED_UPDATE, _e_signed_update, update)


def encode_params(params: Params) -> bytes:
    """A store record of channel parameters (tag 33)."""
    return _pack(TAG_PARAMS, _e_params, params)


def encode_state(state: State) -> bytes:
    """A store record of a state (tag 34)."""
    return _pack(TAG_STATE, _e_state, state)


def encode_book(book: BookSnapshot) -> bytes:
    """A store record of a position book snapshot (tag 35)."""
    return _pack(TAG_BOOK, _e_book, book)


def encode_trades(trades: tuple[Trade, ...]) -> bytes:
    """A store record of a batch of trades (tag 36): ``{"trades": [...]}``."""
    return _pack(TAG_TRADES, lambda t: {"trades": _e_trades(t)}, trades)


# =================================================================================================
# Decoding. The scalar helpers check the exact msgpack type and length and return ``Any`` so their
# results feed the model's NewType fields without a wrapper call per value on the hot path; the
# model's constructors then check ranges (their InvalidAmount/InvalidField become SchemaError).
# =================================================================================================


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise MalformedMessage(f"msgpack ExtType {code} is not allowed")


def _map_hook(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise SchemaError("a map has a duplicate key")
    for key in result:
        if type(key) is not str:
            raise SchemaError("a map key must be a string")
    return result


def _unpack(data: bytes, limit: int) -> Any:
    try:
        size = len(data)
    except TypeError:
        raise MalformedMessage("expected bytes") from None
    if size > limit:
        raise FrameTooLarge(f"{size} bytes is above the limit of {limit}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=False,
            ext_hook=_reject_ext,
            object_pairs_hook=_map_hook,
            max_ext_len=0,  # also refuses Timestamp (ext -1), which bypasses ext_hook
        )
    except ChannelError:
        raise
    except ValueError as exc:  # FormatError, StackError, ExtraData, UnicodeDecodeError, ...
        # strict_map_key refuses keys other than str/bytes in C, before our hook sees them
        # ("<type> is not allowed for map key when strict_map_key=True"): a schema error.
        if type(exc) is ValueError and "not allowed for map key" in str(exc):
            raise SchemaError("a map key must be a string") from exc
        raise MalformedMessage(f"not one valid msgpack object: {type(exc).__name__}") from exc
    except Exception as exc:  # e.g. TypeError for an object that is not bytes-like
        raise MalformedMessage(f"not one valid msgpack object: {type(exc).__name__}") from exc


def _open(data: bytes, limit: int) -> tuple[int, Any]:
    """Check the envelope; returns ``(tag, fields)``."""
    obj = _unpack(data, limit)
    if type(obj) is not tuple or not obj:
        raise SchemaError("a message is the array [schema_version, tag, fields]")
    version = obj[0]
    if type(version) is not int:
        raise SchemaError("schema_version must be an int")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(f"schema version {version} (this codec speaks {PROTOCOL_VERSION})")
    if len(obj) != 3:
        raise SchemaError("a message is the array [schema_version, tag, fields]")
    tag = obj[1]
    if type(tag) is not int:
        raise SchemaError("tag must be an int")
    return tag, obj[2]


def _fields(obj: Any, keys: frozenset[str], what: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise SchemaError(f"{what} must be a map")
    if obj.keys() != keys:
        missing = sorted(keys - obj.keys())
        unknown = sorted(obj.keys() - keys)
        raise SchemaError(f"{what}: missing keys {missing}, unknown keys {unknown}")
    return obj


def _du256(value: Any, name: str) -> Any:
    if type(value) is not bytes or len(value) != _WORD_LEN:
        raise SchemaError(f"{name} must be a {_WORD_LEN}-byte big-endian bin")
    return int.from_bytes(value, "big")


def _du64(value: Any, name: str) -> Any:
    if type(value) is not int or not 0 <= value <= UINT64_MAX:
        raise SchemaError(f"{name} must be a non-negative msgpack int (uint64)")
    return value


def _dopt_u64(value: Any, name: str) -> Any:
    return None if value is None else _du64(value, name)


def _dindex(value: Any, name: str) -> Any:
    if type(value) is not int or value not in (0, 1):
        raise SchemaError(f"{name} must be participant index 0 or 1")
    return value


def _dbytes(value: Any, length: int, name: str) -> Any:
    if type(value) is not bytes or len(value) != length:
        raise SchemaError(f"{name} must be a {length}-byte bin")
    return value


def _dsig(value: Any, name: str) -> Any:
    if type(value) is not bytes or len(value) != _SIGNATURE_LEN:
        raise SchemaError(f"{name} must be a {_SIGNATURE_LEN}-byte bin")
    return value


def _dopt_sig(value: Any, name: str) -> Any:
    return None if value is None else _dsig(value, name)


def _dstr(value: Any, limit: int, name: str) -> str:
    if type(value) is not str or len(value) > limit:
        raise SchemaError(f"{name} must be a str of at most {limit} characters")
    return value


def _dpair(value: Any, name: str) -> tuple[Any, Any]:
    if type(value) is not tuple or len(value) != 2:
        raise SchemaError(f"{name} must be an array of two")
    return value


def _du256_pair(value: Any, name: str) -> Any:
    a, b = _dpair(value, name)
    return (_du256(a, name), _du256(b, name))


def _dsig_pair(value: Any, name: str) -> Any:
    a, b = _dpair(value, name)
    return (_dsig(a, name), _dsig(b, name))


_PARAMS_KEYS = frozenset(
    (
        "chain_id",
        "adjudicator",
        "asset",
        "asset_decimals",
        "participants",
        "challenge_period",
        "oracle",
        "nonce",
    )
)


def _d_params(obj: Any) -> Params:
    f = _fields(obj, _PARAMS_KEYS, "Params")
    p0, p1 = _dpair(f["participants"], "participants")
    return Params(
        chain_id=_du256(f["chain_id"], "chain_id"),
        adjudicator=_dbytes(f["adjudicator"], _ADDRESS_LEN, "adjudicator"),
        asset=_dbytes(f["asset"], _ADDRESS_LEN, "asset"),
        asset_decimals=_du64(f["asset_decimals"], "asset_decimals"),
        participants=(
            _dbytes(p0, _ADDRESS_LEN, "participants"),
            _dbytes(p1, _ADDRESS_LEN, "participants"),
        ),
        challenge_period=_du64(f["challenge_period"], "challenge_period"),
        oracle=_dbytes(f["oracle"], _ADDRESS_LEN, "oracle"),
        nonce=_du256(f["nonce"], "nonce"),
    )


_STATE_KEYS = frozenset(
    (
        "channel_id",
        "version",
        "balances",
        "deposited",
        "withdrawn",
        "locked",
        "positions_root",
        "position_count",
        "is_final",
    )
)


def _d_state(obj: Any) -> State:
    f = _fields(obj, _STATE_KEYS, "State")
    is_final = f["is_final"]
    if type(is_final) is not bool:
        raise SchemaError("is_final must be a msgpack bool")
    return State(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        version=_du64(f["version"], "version"),
        balances=_du256_pair(f["balances"], "balances"),
        deposited=_du256_pair(f["deposited"], "deposited"),
        withdrawn=_du256_pair(f["withdrawn"], "withdrawn"),
        locked=_du256(f["locked"], "locked"),
        positions_root=_dbytes(f["positions_root"], _HASH_LEN, "positions_root"),
        position_count=_du64(f["position_count"], "position_count"),
        is_final=is_final,
    )


_POSITION_KEYS = frozenset(
    ("id", "underlying", "kind", "strike", "expiry", "quantity", "writer", "collateral")
)
_KINDS = {0: OptionKind.CALL, 1: OptionKind.PUT}


def _d_position(obj: Any) -> Position:
    f = _fields(obj, _POSITION_KEYS, "Position")
    kind = f["kind"]
    if type(kind) is not int or kind not in _KINDS:
        raise SchemaError("kind must be 0 (call) or 1 (put)")
    return Position(
        id=_du64(f["id"], "id"),
        underlying=_dbytes(f["underlying"], _HASH_LEN, "underlying"),
        kind=_KINDS[kind],
        strike=_du256(f["strike"], "strike"),
        expiry=_du64(f["expiry"], "expiry"),
        quantity=_du256(f["quantity"], "quantity"),
        writer=_dindex(f["writer"], "writer"),
        collateral=_du256(f["collateral"], "collateral"),
    )


_BOOK_KEYS = frozenset(("high_water", "slots"))


def _d_book(obj: Any) -> BookSnapshot:
    f = _fields(obj, _BOOK_KEYS, "BookSnapshot")
    high_water = _du64(f["high_water"], "high_water")
    if high_water > MAX_SLOTS:
        raise SchemaError(f"high_water is above {MAX_SLOTS}")
    slots = f["slots"]
    if type(slots) is not tuple:
        raise SchemaError("slots must be an array")
    out = []
    for entry in slots:
        slot, position = _dpair(entry, "slot entry")
        slot = _du64(slot, "slot")
        if slot >= MAX_SLOTS:
            raise SchemaError(f"slot is not below {MAX_SLOTS}")
        out.append((slot, _d_position(position)))
    return BookSnapshot(high_water=high_water, slots=tuple(out))


_WITHDRAWAL_KEYS = frozenset(("channel_id", "version", "participant", "amount", "recipient"))


def _d_withdrawal(obj: Any) -> Withdrawal:
    f = _fields(obj, _WITHDRAWAL_KEYS, "Withdrawal")
    return Withdrawal(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        version=_du64(f["version"], "version"),
        participant=_dindex(f["participant"], "participant"),
        amount=_du256(f["amount"], "amount"),
        recipient=_dbytes(f["recipient"], _ADDRESS_LEN, "recipient"),
    )


_ATTESTATION_KEYS = frozenset(("underlying", "expiry", "price"))


def _d_attestation(obj: Any) -> Attestation:
    f = _fields(obj, _ATTESTATION_KEYS, "Attestation")
    return Attestation(
        underlying=_dbytes(f["underlying"], _HASH_LEN, "underlying"),
        expiry=_du64(f["expiry"], "expiry"),
        price=_du256(f["price"], "price"),
    )


_PAY_KEYS = frozenset(("payer", "amount"))
_OPEN_OPTION_KEYS = frozenset(("position", "premium"))
_OPEN_OPTION_FILL_KEYS = frozenset(("position", "premium", "quote_id"))
_UNWIND_KEYS = frozenset(("position_id", "holder_share"))
_SETTLE_KEYS = frozenset(("position_id", "attestation", "signature"))
_CREDIT_DEPOSIT_KEYS = frozenset(("participant", "amount"))
_DEBIT_WITHDRAWAL_KEYS = frozenset(("participant", "amount", "recipient"))
_FINALIZE_KEYS: frozenset[str] = frozenset()


def _d_pay(obj: Any) -> Pay:
    f = _fields(obj, _PAY_KEYS, "Pay")
    return Pay(payer=_dindex(f["payer"], "payer"), amount=_du256(f["amount"], "amount"))


def _d_open_option(obj: Any) -> OpenOption:
    quote_id = None
    if type(obj) is dict and "quote_id" in obj:
        f = _fields(obj, _OPEN_OPTION_FILL_KEYS, "OpenOption")
        quote_id = _dbytes(f["quote_id"], _HASH_LEN, "quote_id")
    else:
        f = _fields(obj, _OPEN_OPTION_KEYS, "OpenOption")
    return OpenOption(
        position=_d_position(f["position"]),
        premium=_du256(f["premium"], "premium"),
        quote_id=quote_id,
    )


def _d_unwind(obj: Any) -> Unwind:
    f = _fields(obj, _UNWIND_KEYS, "Unwind")
    return Unwind(
        position_id=_du64(f["position_id"], "position_id"),
        holder_share=_du256(f["holder_share"], "holder_share"),
    )


def _d_settle(obj: Any) -> Settle:
    f = _fields(obj, _SETTLE_KEYS, "Settle")
    return Settle(
        position_id=_du64(f["position_id"], "position_id"),
        attestation=_d_attestation(f["attestation"]),
        signature=_dsig(f["signature"], "signature"),
    )


def _d_credit_deposit(obj: Any) -> CreditDeposit:
    f = _fields(obj, _CREDIT_DEPOSIT_KEYS, "CreditDeposit")
    return CreditDeposit(
        participant=_dindex(f["participant"], "participant"),
        amount=_du256(f["amount"], "amount"),
    )


def _d_debit_withdrawal(obj: Any) -> DebitWithdrawal:
    f = _fields(obj, _DEBIT_WITHDRAWAL_KEYS, "DebitWithdrawal")
    return DebitWithdrawal(
        participant=_dindex(f["participant"], "participant"),
        amount=_du256(f["amount"], "amount"),
        recipient=_dbytes(f["recipient"], _ADDRESS_LEN, "recipient"),
    )


def _d_finalize(obj: Any) -> Finalize:
    _fields(obj, _FINALIZE_KEYS, "Finalize")
    return Finalize()


_TRADE_DECODERS: dict[int, Callable[[Any], Trade]] = {
    TRADE_PAY: _d_pay,
    TRADE_OPEN_OPTION: _d_open_option,
    TRADE_UNWIND: _d_unwind,
    TRADE_SETTLE: _d_settle,
    TRADE_CREDIT_DEPOSIT: _d_credit_deposit,
    TRADE_DEBIT_WITHDRAWAL: _d_debit_withdrawal,
    TRADE_FINALIZE: _d_finalize,
}


def _d_trades(obj: Any) -> tuple[Trade, ...]:
    if type(obj) is not tuple:
        raise SchemaError("trades must be an array")
    if len(obj) > MAX_TRADES:
        raise SchemaError(f"more than {MAX_TRADES} trades")
    out: list[Trade] = []
    for entry in obj:
        tag, fields = _dpair(entry, "trade")
        if type(tag) is not int:
            raise SchemaError("a trade tag must be an int")
        decode = _TRADE_DECODERS.get(tag)
        if decode is None:
            raise UnknownType(f"unknown trade tag {tag}")
        out.append(decode(fields))
    return tuple(out)


_OPEN_PROPOSAL_KEYS = frozenset(("params", "deposits", "signature"))
_OPEN_ACCEPT_KEYS = frozenset(("channel_id", "signature"))
_UPDATE_REQUEST_KEYS = frozenset(("channel_id", "request_id", "trades"))
_PROPOSAL_KEYS = frozenset(
    (
        "channel_id",
        "base_version",
        "trades",
        "state",
        "signature",
        "request_id",
        "withdrawal_signature",
    )
)
_ACCEPT_KEYS = frozenset(("channel_id", "version", "signature", "withdrawal_signature"))
_REJECT_KEYS = frozenset(("channel_id", "version", "request_id", "rule", "reason"))
_REESTABLISH_KEYS = frozenset(("channel_id", "state", "signatures", "book"))
_SIGNED_UPDATE_KEYS = frozenset(
    ("state", "signatures", "trades", "withdrawal", "withdrawal_signatures")
)
_TRADES_RECORD_KEYS = frozenset(("trades",))


def _d_open_proposal(obj: Any) -> OpenProposal:
    f = _fields(obj, _OPEN_PROPOSAL_KEYS, "OpenProposal")
    return OpenProposal(
        params=_d_params(f["params"]),
        deposits=_du256_pair(f["deposits"], "deposits"),
        signature=_dsig(f["signature"], "signature"),
    )


def _d_open_accept(obj: Any) -> OpenAccept:
    f = _fields(obj, _OPEN_ACCEPT_KEYS, "OpenAccept")
    return OpenAccept(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        signature=_dsig(f["signature"], "signature"),
    )


def _d_update_request(obj: Any) -> UpdateRequest:
    f = _fields(obj, _UPDATE_REQUEST_KEYS, "UpdateRequest")
    return UpdateRequest(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        request_id=_du64(f["request_id"], "request_id"),
        trades=_d_trades(f["trades"]),
    )


def _d_proposal(obj: Any) -> Proposal:
    f = _fields(obj, _PROPOSAL_KEYS, "Proposal")
    return Proposal(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        base_version=_du64(f["base_version"], "base_version"),
        trades=_d_trades(f["trades"]),
        state=_d_state(f["state"]),
        signature=_dsig(f["signature"], "signature"),
        request_id=_dopt_u64(f["request_id"], "request_id"),
        withdrawal_signature=_dopt_sig(f["withdrawal_signature"], "withdrawal_signature"),
    )


def _d_accept(obj: Any) -> Accept:
    f = _fields(obj, _ACCEPT_KEYS, "Accept")
    return Accept(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        version=_du64(f["version"], "version"),
        signature=_dsig(f["signature"], "signature"),
        withdrawal_signature=_dopt_sig(f["withdrawal_signature"], "withdrawal_signature"),
    )


def _d_reject(obj: Any) -> Reject:
    f = _fields(obj, _REJECT_KEYS, "Reject")
    return Reject(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        version=_dopt_u64(f["version"], "version"),
        request_id=_dopt_u64(f["request_id"], "request_id"),
        rule=_dstr(f["rule"], MAX_RULE_LEN, "rule"),
        reason=_dstr(f["reason"], MAX_REASON_LEN, "reason"),
    )


def _d_reestablish(obj: Any) -> Reestablish:
    f = _fields(obj, _REESTABLISH_KEYS, "Reestablish")
    return Reestablish(
        channel_id=_dbytes(f["channel_id"], _HASH_LEN, "channel_id"),
        state=_d_state(f["state"]),
        signatures=_dsig_pair(f["signatures"], "signatures"),
        book=_d_book(f["book"]),
    )


def _d_signed_update(obj: Any) -> SignedUpdate:
    f = _fields(obj, _SIGNED_UPDATE_KEYS, "SignedUpdate")
    sig0, sig1 = _dpair(f["signatures"], "signatures")
    withdrawal = f["withdrawal"]
    withdrawal_sigs = f["withdrawal_signatures"]
    return SignedUpdate(
        signed=SignedState(
            state=_d_state(f["state"]),
            signatures=(_dopt_sig(sig0, "signatures"), _dopt_sig(sig1, "signatures")),
        ),
        trades=_d_trades(f["trades"]),
        withdrawal=None if withdrawal is None else _d_withdrawal(withdrawal),
        withdrawal_signatures=(
            None
            if withdrawal_sigs is None
            else _dsig_pair(withdrawal_sigs, "withdrawal_signatures")
        ),
    )


def _d_trades_record(obj: Any) -> tuple[Trade, ...]:
    return _d_trades(_fields(obj, _TRADES_RECORD_KEYS, "trades record")["trades"])


_MESSAGE_DECODERS: dict[int, Callable[[Any], Message]] = {
    TAG_OPEN_PROPOSAL: _d_open_proposal,
    TAG_OPEN_ACCEPT: _d_open_accept,
    TAG_UPDATE_REQUEST: _d_update_request,
    TAG_PROPOSAL: _d_proposal,
    TAG_ACCEPT: _d_accept,
    TAG_REJECT: _d_reject,
    TAG_REESTABLISH: _d_reestablish,
}


def _build(decode: Callable[[Any], Any], fields: Any) -> Any:
    try:
        return decode(fields)
    except RuleViolation as exc:  # the model's own InvalidAmount / InvalidField
        raise SchemaError(f"{type(exc).__name__}: {exc}") from exc


def decode_message(data: bytes) -> Message:
    """The peer message in ``data`` (one unframed payload of at most :data:`MAX_FRAME` bytes).

    Raises a :class:`~channels.core.errors.WireError` subclass for anything but one valid message.
    """
    tag, fields = _open(data, MAX_FRAME)
    decode = _MESSAGE_DECODERS.get(tag)
    if decode is None:
        raise UnknownType(f"unknown message tag {tag}")
    message: Message = _build(decode, fields)
    return message


def _decode_record(data: bytes, expected: int, decode: Callable[[Any], Any]) -> Any:
    tag, fields = _open(data, MAX_RECORD)
    if tag != expected:
        raise UnknownType(f"expected record tag {expected}, got {tag}")
    return _build(decode, fields)


def decode_update(data: bytes) -> SignedUpdate:
    """A signed update written by :func:`encode_update`."""
    update: SignedUpdate = _decode_record(data, TAG_SIGNED_UPDATE, _d_signed_update)
    return update


def decode_params(data: bytes) -> Params:
    """Channel parameters written by :func:`encode_params`."""
    params: Params = _decode_record(data, TAG_PARAMS, _d_params)
    return params


def decode_state(data: bytes) -> State:
    """A state written by :func:`encode_state`."""
    state: State = _decode_record(data, TAG_STATE, _d_state)
    return state


def decode_book(data: bytes) -> BookSnapshot:
    """A book snapshot written by :func:`encode_book`."""
    book: BookSnapshot = _decode_record(data, TAG_BOOK, _d_book)
    return book


def decode_trades(data: bytes) -> tuple[Trade, ...]:
    """A batch of trades written by :func:`encode_trades`."""
    trades: tuple[Trade, ...] = _decode_record(data, TAG_TRADES, _d_trades_record)
    return trades


# =================================================================================================
# Framing
# =================================================================================================


def frame(payload: bytes) -> bytes:
    """``payload`` preceded by its length (4-byte big-endian); refuses more than MAX_FRAME."""
    size = len(payload)
    if size > MAX_FRAME:
        raise UnencodableMessage(f"a {size}-byte payload is above MAX_FRAME ({MAX_FRAME})")
    return _LENGTH_PREFIX.pack(size) + payload


class FrameDecoder:
    """Splits a byte stream, fed in arbitrary pieces, into the payloads of :func:`frame`.

    A length prefix above ``max_frame`` raises :class:`FrameTooLarge` as soon as its four bytes
    are in, before any of its body is stored; the decoder then stays failed (the stream cannot be
    resynchronised), and frames completed earlier in the same ``feed`` call are dropped with it.
    At most one incomplete frame is buffered, and a frame cut short by the end of the stream is
    never returned (:attr:`pending` tells how many bytes it had).
    """

    __slots__ = ("_buffer", "_failed", "_length", "_max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()  # a partial length prefix, or the partial body of one frame
        self._length: int | None = None  # the current frame's body length once its prefix is in
        self._failed = False

    @property
    def pending(self) -> int:
        """Bytes received that do not form a complete frame yet (non-zero at EOF: truncated)."""
        return len(self._buffer) + (0 if self._length is None else 4)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; returns every frame it completes, in order (possibly none)."""
        if self._failed:
            raise FrameTooLarge("the stream already had an oversized frame")
        view = memoryview(data)
        end = len(view)
        pos = 0
        buffer = self._buffer
        frames: list[bytes] = []
        while True:
            length = self._length
            if length is None:
                take = min(4 - len(buffer), end - pos)
                buffer += view[pos : pos + take]
                pos += take
                if len(buffer) < 4:
                    break
                (length,) = _LENGTH_PREFIX.unpack(buffer)
                buffer.clear()
                if length > self._max_frame:
                    self._failed = True
                    raise FrameTooLarge(f"length prefix {length} is above {self._max_frame}")
                self._length = length
            if not buffer and end - pos >= length:  # the whole body is in ``data``: one copy
                frames.append(bytes(view[pos : pos + length]))
                pos += length
                self._length = None
                continue
            take = min(length - len(buffer), end - pos)
            buffer += view[pos : pos + take]
            pos += take
            if len(buffer) < length:
                break
            frames.append(bytes(buffer))
            buffer.clear()
            self._length = None
        return frames
