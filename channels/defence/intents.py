"""Dispute transactions as intents in the store (W7): the journal the transaction driver writes
through, and the adoption of the intents a previous run left open."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from adjudicator.client import AdjudicatorClient, ChannelStatus
from channels.core.model import ChannelId
from channels.core.wire import decode_state
from channels.defence.txdriver import (
    PendingTx,
    bind_conclude_needed,
    bind_register_needed,
    conclude_needed,
    intent_key,
    register_needed,
    sent_from_raw,
)
from channels.store import Intent, IntentStatus
from channels.store.persister import Persister

log = logging.getLogger("channels.defence.intents")


class StoreJournal:
    """The transaction driver's journal, kept in the node's store."""

    def __init__(self, store: Persister) -> None:
        self._store = store

    async def add(self, kind: str, payload: bytes, channel_id: ChannelId | None) -> int:
        return await self._store.add_intent(kind, payload, channel_id)

    async def update(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        *,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None:
        await self._store.update_intent(
            intent_id, status, raw_tx=raw_tx, tx_hash=tx_hash, nonce=nonce
        )


async def adopt_intent(
    store: Persister, chain: AdjudicatorClient, now: Callable[[], int], intent: Intent
) -> PendingTx | None:
    """An open intent of a previous run: settled in the store if it is mined, never sent or no
    longer needed (None); else the pending transaction to drive on."""
    if intent.raw_tx is None or intent.tx_hash is None:
        # Never broadcast: the poll loop re-derives what is needed from the chain.
        await store.update_intent(intent.id, IntentStatus.CANCELLED)
        return None
    receipt = await chain.rpc.get_transaction_receipt("0x" + intent.tx_hash.hex())
    if receipt is not None:
        status = IntentStatus.CONFIRMED if receipt.status == 1 else IntentStatus.FAILED
        await store.update_intent(intent.id, status)
        return None
    cid = intent.channel_id
    needed: Callable[[], Awaitable[bool]] | None = None
    deadline: int | None = None
    tag: object = None
    if cid is not None and intent.kind in ("refute", "register"):
        version = decode_state(intent.payload).version
        tag = version
        if not await register_needed(chain, cid, version, now):
            await store.update_intent(intent.id, IntentStatus.CANCELLED)  # superseded
            return None
        needed = bind_register_needed(chain, cid, version, now)
        view = await chain.channel(cid)
        if view.status is ChannelStatus.DISPUTED:
            deadline = view.deadline
    elif cid is not None and intent.kind == "conclude":
        if not await conclude_needed(chain, cid):
            await store.update_intent(intent.id, IntentStatus.CANCELLED)
            return None
        needed = bind_conclude_needed(chain, cid)
    sent = sent_from_raw(intent.raw_tx)
    tx = PendingTx(
        intent_key(intent.kind, cid, None),
        intent.kind,
        cid,
        None,
        (),
        deadline=deadline,
        needed=needed,
        tag=tag,
        intent=intent.id,
        sent=sent,
        hashes=[sent.hash],
    )
    log.warning("adopting open %s intent %d (%s)", intent.kind, intent.id, sent.hash)
    return tx

