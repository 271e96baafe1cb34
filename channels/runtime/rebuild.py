"""Rebuilding a wiped store from the desk's watchtowers, the chain and the peer.

With the store lost and only the key left, a node started with its towers asks each for the
channels it holds for this desk (``list``) and their newest fully signed states (``get``). Each
state is checked (our chain and adjudicator, both participants' signatures, we are one of them)
and, unless the chain says the channel is concluded, stored as the channel's latest state with
the peer's endpoint from the desk's config; the node then starts as after any restart: not known
current until the towers (or the peer's reestablish, which also brings anything newer than the
towers held) say so. A tower keeps only the newest state of a channel, so the history before it
is not recovered. The node pushes a state's open positions with it, and the tower keeps them
(checked against the state's commitment, here again): such a channel is rebuilt with its
positions. A state with positions the tower does not hold is not rebuilt: it is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from adjudicator.client import ChannelStatus
from channels.core import eip712
from channels.core.errors import ChannelError
from channels.core.model import Address, ChannelId, Params, SignedState, SignedUpdate
from channels.core.positions import BookSnapshot, PositionBook
from channels.core.protocol import Phase
from channels.core.signing import verify
from channels.defence.towerproto import decode_held, decode_held_book, tower_call
from channels.store.ops import AddChannel, AppendState
from channels.transport import Prologue

log = logging.getLogger("channels.rebuild")

REQUEST_TIMEOUT = 10.0


@dataclass
class RebuildReport:
    """What a rebuild found: channels stored again (with their versions) and those it could not."""

    rebuilt: dict[ChannelId, int] = field(default_factory=dict)
    skipped: dict[ChannelId, str] = field(default_factory=dict)
    #: The open positions recovered per rebuilt channel.
    positions: dict[ChannelId, int] = field(default_factory=dict)


def _check(params: Params, signed: SignedState, me: Address, chain_id: int, adj: bytes) -> None:
    if me not in params.participants:
        raise ValueError("we are not a participant")
    if params.chain_id != chain_id or params.adjudicator != adj:
        raise ValueError("another chain or adjudicator")
    if signed.state.channel_id != params.channel_id or not signed.fully_signed:
        raise ValueError("not a fully signed state of this channel")
    digest = eip712.state_digest(eip712.Domain(chain_id, Address(adj)), signed.state)
    for who, sig in zip(params.participants, signed.signatures, strict=True):
        assert sig is not None
        verify(digest, sig, who)


async def rebuild_from_towers(
    node: Any, towers: Any, peers: Mapping[bytes, tuple[str, int]]
) -> RebuildReport:
    """Store every channel a tower holds for us that the store lacks (see the module doc)."""
    report = RebuildReport()
    known = set(await node.store.run(lambda s: s.channel_ids()))
    prologue = Prologue(node.chain_id, Address(node.chain.address))
    found: dict[ChannelId, tuple[Params, SignedState, BookSnapshot | None]] = {}
    for tower in towers:
        endpoint = (tower.host, tower.port)
        try:
            listing = await tower_call(
                endpoint,
                tower.address,
                node.signer,
                prologue,
                {"t": "list"},
                timeout=REQUEST_TIMEOUT,
            )
            ids = [ChannelId(bytes(c)) for c in listing.get("channels", [])]
            for cid in ids:
                if cid in known:
                    continue
                reply = await tower_call(
                    endpoint,
                    tower.address,
                    node.signer,
                    prologue,
                    {"t": "get", "channel": bytes(cid)},
                    timeout=REQUEST_TIMEOUT,
                )
                held = decode_held(reply.get("held"))
                if held is None:
                    continue
                params, signed = held
                try:
                    _check(params, signed, node.address, node.chain_id, node.chain.address)
                    book = decode_held_book(reply.get("held"), signed.state)
                except (ValueError, ChannelError) as exc:
                    report.skipped[cid] = f"refused from the tower: {exc}"
                    continue
                best = found.get(cid)
                if best is None or (best[1].state.version, best[2] is not None) < (
                    signed.state.version,
                    book is not None,
                ):
                    found[cid] = (params, signed, book)
        except (ChannelError, OSError, trio.TooSlowError, ValueError, TypeError) as exc:
            log.warning("tower %s:%d: %s", tower.host, tower.port, exc)
    for cid, (params, signed, book) in found.items():
        state = signed.state
        if state.position_count and book is None:
            report.skipped[cid] = f"v{state.version} has open positions the tower does not hold"
            continue
        view = await node.chain.channel(cid)
        if view.status is ChannelStatus.CONCLUDED:
            report.skipped[cid] = "concluded on chain"
            continue
        index = params.index_of(node.address)
        other = params.participants[1 - index]
        phase = Phase.DISPUTED if view.status is ChannelStatus.DISPUTED else Phase.OPEN
        if state.is_final:
            phase = Phase.FINAL
        deposits = (int(state.deposited[0]), int(state.deposited[1]))
        await node.store.persist(
            [
                AddChannel(params, index, deposits, phase, peers.get(other)),
                AppendState(cid, SignedUpdate(signed, ()), book or PositionBook().snapshot()),
            ]
        )
        report.rebuilt[cid] = int(state.version)
        report.positions[cid] = state.position_count
        log.warning("0x%s: rebuilt from the towers at v%d", cid.hex()[:12], state.version)
    return report
