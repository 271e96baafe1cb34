"""Clearing a dispute with ``checkpoint`` instead of waiting it out.

When the channel is registered with an older version than our newest fully signed state and the
peer is back (linked and in step with us), a ``refute`` would only move the dispute to our
version and the channel would still close. ``checkpoint`` records our version and returns the
channel to Open: older states can no longer be registered, and trading resumes. With the peer
away the watcher refutes as before (nobody to trade with). The node's ``checkpoint`` (CLI
``channels checkpoint``) does it on request.
"""

from __future__ import annotations

from collections.abc import Callable

from adjudicator.client import AdjudicatorClient, both_signatures, params_tuple, state_tuple
from channels.core.errors import IllegalCall
from channels.core.model import SignedState
from channels.core.wire import encode_state
from channels.defence.host import DefendedChannel
from channels.defence.txdriver import PendingTx, TxManager, bind_register_needed, intent_key


def peer_is_back(connected: bool, channel: DefendedChannel) -> bool:
    """The peer is linked (``connected``) and the two sides have compared their latest states
    since."""
    machine = channel.machine
    return connected and machine.synced and not machine.reestablishing


async def submit_checkpoint(
    txs: TxManager,
    chain: AdjudicatorClient,
    now: Callable[[], int],
    channel: DefendedChannel,
    signed: SignedState,
    *,
    deadline: int | None = None,
) -> PendingTx:
    """Record ``signed`` on chain with ``checkpoint`` (through the watcher's transaction driver:
    an intent, rebroadcast and fee bumps until mined or no longer needed)."""
    if not signed.fully_signed:
        raise IllegalCall("no fully signed state to checkpoint")
    sig0, sig1 = both_signatures(signed)
    cid = channel.machine.channel_id
    version = signed.state.version
    tx: PendingTx = await txs.submit(
        intent_key("checkpoint", cid),
        "checkpoint",
        cid,
        "checkpoint",
        (params_tuple(channel.machine.params), state_tuple(signed.state), sig0, sig1),
        payload=encode_state(signed.state),
        deadline=deadline,
        needed=bind_register_needed(chain, cid, version, now),
        tag=version,
    )
    return tx
