"""The contract's calldata shapes (pure): core types as ABI tuples, and settlement proofs.

:func:`settlement_proof` builds the Merkle proof a ``settlePosition``/``releaseUnsettled`` needs
against the *current* on-chain root, in which every already settled or released slot is empty.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from channels.core.errors import IllegalCall, UnknownPosition
from channels.core.model import (
    Amount,
    Attestation,
    ChannelId,
    Params,
    Position,
    SignedState,
    State,
    Version,
    Withdrawal,
)
from channels.core.positions import BookSnapshot, PositionBook

# ---- ABI tuples ------------------------------------------------------------------------------


def params_tuple(p: Params) -> tuple[Any, ...]:
    return (
        p.chain_id, p.adjudicator, p.asset, p.asset_decimals, p.participants[0],
        p.participants[1], p.challenge_period, p.oracle, p.nonce,
    )


def state_tuple(s: State) -> tuple[Any, ...]:
    return (
        s.channel_id, s.version, s.balances[0], s.balances[1], s.deposited[0], s.deposited[1],
        s.withdrawn[0], s.withdrawn[1], s.locked, s.positions_root, s.position_count, s.is_final,
    )


def state_from_tuple(raw: Sequence[Any]) -> State:
    """The core State of a decoded ABI ``State`` tuple."""
    return State(
        channel_id=ChannelId(bytes(raw[0])),
        version=Version(int(raw[1])),
        balances=(Amount(int(raw[2])), Amount(int(raw[3]))),
        deposited=(Amount(int(raw[4])), Amount(int(raw[5]))),
        withdrawn=(Amount(int(raw[6])), Amount(int(raw[7]))),
        locked=Amount(int(raw[8])),
        positions_root=bytes(raw[9]),
        position_count=int(raw[10]),
        is_final=bool(raw[11]),
    )


def position_tuple(p: Position) -> tuple[Any, ...]:
    return (
        p.id, p.underlying, int(p.kind), p.strike, p.expiry, p.quantity, p.writer, p.collateral,
    )


def attestation_tuple(a: Attestation) -> tuple[Any, ...]:
    return (a.underlying, a.expiry, a.price)


def withdrawal_tuple(w: Withdrawal) -> tuple[Any, ...]:
    return (w.channel_id, w.version, w.participant, w.amount, w.recipient)


def withdrawal_terms_tuple(w: Withdrawal) -> tuple[Any, ...]:
    """What ``withdrawPartial`` takes: the Withdrawal without its channel id (the contract derives
    it from the params)."""
    return (w.version, w.participant, w.amount, w.recipient)


def signature_tuple(signature: bytes) -> tuple[bytes, bytes]:
    """The contract's ``Signature`` (compact form of EIP-2098: ``r``, and ``s`` with the recovery
    bit in its top bit) of a 65-byte ``r || s || v`` signature; two static calldata words cost
    ~430 gas less than the 65-byte ``bytes``. Refuses what the compact form cannot carry (the
    contract would refuse it anyway): another length, v not 27/28, s with its top bit set."""
    if len(signature) != 65 or signature[64] not in (27, 28) or signature[32] & 0x80:
        raise IllegalCall(
            "a signature for the adjudicator must be 65 bytes r || s || v with v 27 or 28 and "
            f"s below 2**255 (got {len(signature)} bytes); sign again with a conforming signer"
        )
    y_parity = signature[64] - 27
    return signature[:32], bytes((signature[32] | (y_parity << 7),)) + signature[33:64]


def signature_from_tuple(raw: Sequence[Any]) -> bytes:
    """The 65-byte ``r || s || v`` signature of a decoded ABI ``Signature`` tuple."""
    r, y_parity_and_s = bytes(raw[0]), bytes(raw[1])
    head = y_parity_and_s[0]
    return r + bytes((head & 0x7F,)) + y_parity_and_s[1:] + bytes((27 + (head >> 7),))


def both_signatures(signed: SignedState) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """Both participants' signatures of ``signed`` as the contract's ``Signature`` tuples."""
    sig0, sig1 = signed.signatures
    if sig0 is None or sig1 is None:
        raise IllegalCall(f"state version {signed.state.version} is not signed by both")
    return signature_tuple(sig0), signature_tuple(sig1)


# ---- settlement proofs -----------------------------------------------------------------------


def settlement_proof(
    book_snapshot: BookSnapshot, settled_ids: Collection[int], position_id: int
) -> list[bytes]:
    """Proof of ``position_id`` against the on-chain root of a concluded channel.

    ``book_snapshot`` is the positions book of the concluded state (its root is the state's
    ``positionsRoot``); ``settled_ids`` are the positions already settled or released on chain
    (their leaves are zero in the current root, see the ``PositionSettled``/``PositionReleased``
    events). Raises ``UnknownPosition`` if the position is not in the book or already settled.
    """
    if position_id in settled_ids:
        raise UnknownPosition(f"position {position_id} is already settled or released")
    book = PositionBook.from_snapshot(book_snapshot)
    for pid in settled_ids:
        if pid in book:
            book.remove(pid)  # type: ignore[arg-type]
    return book.proof(position_id)  # type: ignore[arg-type]
