"""The read side of the watchtower protocol: a desk asks what the tower holds for it.

``{"t": "get", "channel": <32 bytes>}`` -> ``{"ok": true, "held": null | {"params": <wire params>,
"state": <wire state>, "sigs": [sig0, sig1], "book": null | <wire book>}}`` (the book: the open
positions of that state, if the desk pushed them); ``{"t": "list"}`` -> ``{"ok": true, "channels":
[<32 bytes>, ...]}`` (at most :data:`MAX_LIST`). A client only ever sees channels it is a
participant of. Used at start to establish that the node is current and to rebuild a wiped
store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgpack
import trio

from channels.core.errors import RemoteError
from channels.core.model import Address, ChannelId, Params, SignedState, State
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.signing import Signer
from channels.core.wire import (
    decode_book,
    decode_params,
    decode_state,
    encode_book,
    encode_params,
    encode_state,
)
from channels.transport import Prologue, connect

MAX_LIST = 10_000


class TowerRefused(RemoteError):
    """The tower did not accept a request (the reason is its error text)."""


class TowerReplyError(RemoteError):
    """A tower's reply is not what the protocol says."""

    rule = "TowerReplyError"


class HeldRecord(Protocol):
    @property
    def params(self) -> Params: ...

    @property
    def signed(self) -> SignedState: ...

    @property
    def book(self) -> bytes | None: ...


def check_book(state: State, book: bytes) -> BookSnapshot:
    """The positions book ``book`` (wire bytes) if it is the one ``state`` commits to."""
    snapshot = decode_book(book)
    positions = PositionBook.from_snapshot(snapshot)
    if (positions.root, len(positions), positions.locked) != (
        state.positions_root,
        state.position_count,
        state.locked,
    ):
        raise TowerReplyError("the positions do not match the state's commitment")
    return snapshot


def tower_read(
    held: Mapping[ChannelId, HeldRecord], client: Address, req: Mapping[str, Any]
) -> dict[str, Any]:
    """The tower's answer to a ``get`` or ``list`` request of ``client``."""
    if req.get("t") == "list":
        ids = [cid for cid, h in held.items() if client in h.params.participants]
        return {"ok": True, "channels": ids[:MAX_LIST]}
    cid = ChannelId(bytes(req["channel"]))
    record = held.get(cid)
    if record is None or client not in record.params.participants:
        return {"ok": True, "held": None}
    return {"ok": True, "held": {**encode_held(record.params, record.signed), "book": record.book}}


def encode_held(params: Params, signed: SignedState) -> dict[str, Any]:
    sig0, sig1 = signed.signatures
    return {
        "params": encode_params(params),
        "state": encode_state(signed.state),
        "sigs": [sig0, sig1],
    }


def decode_held_book(raw: object, state: State) -> BookSnapshot | None:
    """The positions book of a ``held`` record, checked against ``state`` (None if absent)."""
    book = raw.get("book") if isinstance(raw, dict) else None
    if book is None:
        return None
    if not isinstance(book, bytes):
        raise TowerReplyError("a held book must be bytes")
    return check_book(state, book)


def decode_held(raw: object) -> tuple[Params, SignedState] | None:
    """A ``held`` record of a reply (None if the tower holds nothing)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TowerReplyError("a held record must be a map")
    sigs = raw.get("sigs")
    if not isinstance(sigs, list) or len(sigs) != 2:
        raise TowerReplyError("a held record has two signatures")
    params = decode_params(bytes(raw["params"]))
    state = decode_state(bytes(raw["state"]))
    return params, SignedState(state, (bytes(sigs[0]), bytes(sigs[1])))


async def tower_call(
    endpoint: tuple[str, int],
    tower_address: Address,
    signer: Signer,
    prologue: Prologue,
    request: Mapping[str, Any],
    *,
    timeout: float,
) -> dict[str, Any]:
    """One authenticated request to a tower and its reply (``{"ok": true, ...}``); raises
    :class:`TowerReplyError` for a refusal, a ``TransportError``, ``OSError`` or
    ``trio.TooSlowError`` if the tower cannot be reached in time."""
    with trio.fail_after(timeout):
        secure = await connect(
            endpoint[0], endpoint[1], signer, tower_address, prologue, timeout=timeout
        )
        async with secure:
            await secure.send(msgpack.packb(dict(request), use_bin_type=True))
            reply: Any = msgpack.unpackb(await secure.receive(), raw=False)
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        error = reply.get("error") if isinstance(reply, dict) else repr(reply)
        raise TowerReplyError(f"the tower refused: {str(error)[:200]}")
    return reply


def push_request(
    params: Params, signed: SignedState, book: BookSnapshot | None = None
) -> dict[str, Any]:
    """A push of ``signed``; with ``book`` (its open positions) when it has any."""
    request = {"t": "push", **encode_held(params, signed)}
    if book is not None:
        request["book"] = encode_book(book)
    return request
