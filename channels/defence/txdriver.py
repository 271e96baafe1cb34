"""Dispute transactions that land: the driver the watcher and the watchtower share.

Each time-critical transaction (refute/register, conclude after timeout, settle/release,
withdraw) is recorded as an intent before it is sent, then driven to an outcome: rebroadcast when
the node lost it, fee-bumped (EIP-1559 replacement, same nonce) when it is stuck, re-sent after a
reorg took it away, dropped once something newer made it unnecessary; ``Alarm("DeadlineAtRisk")``
when it is still not mined close to its deadline. See :class:`TxManager`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from adjudicator.client import (
    AdjudicatorClient,
    ChannelStatus,
)
from adjudicator.errors import ContractError
from adjudicator.rpc_types import Receipt
from adjudicator.transactions import SentTx
from channels.core.errors import ChainError, ChannelError
from channels.core.model import ChannelId
from channels.store import IntentStatus
from channels.testing.crash import crash_point

log = logging.getLogger("channels.defence.txdriver")


@dataclass(frozen=True)
class TxPolicy:
    """When a dispute transaction counts as stuck, and how close to a deadline is too close."""

    #: No receipt after this many new blocks since the last broadcast: bump (or rebroadcast).
    stuck_blocks: int = 2
    #: ... or after this many seconds (chains that do not make blocks while idle, dev nodes).
    stuck_seconds: float = 30.0
    #: Alarm ``DeadlineAtRisk`` when not mined this many chain seconds before the deadline; from
    #: then on the transaction is re-priced on every new block.
    deadline_margin: int = 600
    #: Never bump ``maxFeePerGas`` above this (wei); None: no cap. Past it we only rebroadcast.
    max_fee_per_gas: int | None = None
    #: After the contract refused a simulation, wait this long before trying the same again.
    refused_backoff: float = 5.0


class Journal(Protocol):
    """Where transaction intents are recorded (the node's store; a tower may keep none)."""

    async def add(self, kind: str, payload: bytes, channel_id: ChannelId | None) -> int: ...

    async def update(
        self,
        intent_id: int,
        status: IntentStatus | None = None,
        *,
        raw_tx: bytes | None = None,
        tx_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> None: ...


@dataclass(eq=False)
class PendingTx:
    """One dispute transaction being driven to an outcome (all versions share one nonce)."""

    key: tuple[object, ...]
    kind: str
    channel_id: ChannelId | None
    #: The contract function and raw ABI arguments; None for an intent adopted after a restart
    #: (only its signed bytes are known: it is rebroadcast and bumped, never rebuilt).
    fn: str | None
    args: tuple[Any, ...]
    deadline: int | None = None
    needed: Callable[[], Awaitable[bool]] | None = None
    on_done: Callable[[PendingTx], None] | None = None
    #: What the transaction achieves, for de-duplication (e.g. the version a register carries).
    tag: object = None
    intent: int | None = None
    sent: SentTx | None = None
    hashes: list[str] = field(default_factory=list)
    receipt: Receipt | None = None
    outcome: IntentStatus | None = None
    detail: str = ""
    acted_at: float = -math.inf
    acted_head: int = -1
    revived: bool = False
    superseded: bool = False
    at_risk: bool = False
    sends: int = 0
    rebroadcasts: int = 0
    bumps: int = 0
    done: trio.Event = field(default_factory=trio.Event)


def sent_from_raw(raw: bytes) -> SentTx:
    """A :class:`SentTx` rebuilt from signed EIP-1559 bytes (an intent persisted before a crash)."""
    decoded = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    fields: dict[str, Any] = {
        "type": 2,
        "chainId": int(decoded["chainId"]),
        "gas": int(decoded["gas"]),
        "maxFeePerGas": int(decoded["maxFeePerGas"]),
        "maxPriorityFeePerGas": int(decoded["maxPriorityFeePerGas"]),
        "value": int(decoded["value"]),
        "data": bytes(decoded["data"]),
        "nonce": int(decoded["nonce"]),
    }
    if decoded.get("to"):
        fields["to"] = "0x" + bytes(decoded["to"]).hex()
    tx_hash = "0x" + keccak(raw).hex()
    return SentTx(hash=tx_hash, nonce=fields["nonce"], raw=raw, fields=fields, versions=[tx_hash])


class TxManager:
    """Drives dispute transactions to inclusion, one trio task each, beside the poll loop.

    ``submit`` records the intent, then a task simulates and sends it and, every ``tick``,
    looks for a receipt of any version; when none comes it re-prices (``TransactionSender
    .replace``: both fee caps up by at least 12.5 % and at least to the current suggestion, so a
    base-fee spike is followed) or, past the fee cap, rebroadcasts the same bytes. A nonce taken
    by another transaction or a gap below ours (a reorg) leads to a fresh send. Submitting again
    with the same key while one is live returns the live one (idempotent); with new arguments it
    supersedes it. Submitting again after it was mined (a reorg removed it) drives the same signed
    transaction again.
    """

    def __init__(
        self,
        client: AdjudicatorClient,
        *,
        now: Callable[[], int],
        alarm: Callable[[ChannelId | None, str, str], None],
        journal: Journal | None = None,
        policy: TxPolicy | None = None,
        tick: float = 0.5,
    ) -> None:
        self.client = client
        self.now = now
        self.alarm = alarm
        self.journal = journal
        self.policy = policy or TxPolicy()
        self.tick = tick
        self.live: dict[tuple[object, ...], PendingTx] = {}
        self.finished: dict[tuple[object, ...], PendingTx] = {}
        self.history: list[PendingTx] = []
        self.max_head = -1
        self.errors = 0
        self._refused: dict[tuple[object, ...], float] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the driver tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def busy(self, key: tuple[object, ...]) -> bool:
        """A transaction with ``key`` is being driven, or was refused a moment ago."""
        if key in self.live:
            return True
        refused = self._refused.get(key)
        return refused is not None and trio.current_time() - refused < self.policy.refused_backoff

    async def submit(
        self,
        key: tuple[object, ...],
        kind: str,
        channel_id: ChannelId | None,
        fn: str,
        args: tuple[Any, ...],
        *,
        payload: bytes = b"",
        deadline: int | None = None,
        needed: Callable[[], Awaitable[bool]] | None = None,
        on_done: Callable[[PendingTx], None] | None = None,
        tag: object = None,
    ) -> PendingTx:
        live = self.live.get(key)
        if live is not None:
            same = live.tag == tag if tag is not None else (live.fn, live.args) == (fn, args)
            if same:
                if deadline is not None:
                    live.deadline = deadline
                return live
            live.superseded = True  # new content for the same purpose (e.g. a newer state)
        tx = PendingTx(
            key,
            kind,
            channel_id,
            fn,
            args,
            deadline=deadline,
            needed=needed,
            on_done=on_done,
            tag=tag,
        )
        prev = self.finished.get(key)
        if (
            prev is not None
            and prev.sent is not None
            and prev.fn == fn
            and prev.args == args
            and prev.outcome is not IntentStatus.FAILED
        ):
            # Mined (or dropped as superseded) and now needed again: a reorg took it away. The
            # same signed transaction is still valid if its nonce is free again.
            tx.sent, tx.hashes, tx.intent = prev.sent, list(prev.hashes), prev.intent
            tx.revived = True
            log.warning("%s: needed again after it was mined (reorg?): re-sending", kind)
            await self._journal_update(tx, IntentStatus.SENT)
        elif self.journal is not None:
            crash_point("chain_tx", "pre_write")
            tx.intent = await self.journal.add(kind, payload, channel_id)
            crash_point("chain_tx", "post_write_pre_send")
        self._start(tx)
        return tx

    def adopt(self, tx: PendingTx) -> None:
        """Drive a transaction known from a persisted intent (after a restart)."""
        tx.revived = True
        if tx.key in self.live:
            self.live[tx.key].superseded = True
        self._start(tx)

    def _start(self, tx: PendingTx) -> None:
        if self._nursery is None:
            raise RuntimeError("TxManager.run is not running")
        self.live[tx.key] = tx
        self.history.append(tx)
        self._nursery.start_soon(self._drive, tx)

    # the driver ---------------------------------------------------------------------------
    async def _drive(self, tx: PendingTx) -> None:
        while tx.outcome is None:
            try:
                await self._step(tx)
            except ContractError as exc:
                self._refused[tx.key] = trio.current_time()
                log.info("%s refused by the contract: %s", tx.kind, exc)
                await self._finish(tx, IntentStatus.FAILED, f"refused: {exc}")
            except (ChainError, ChannelError, OSError) as exc:
                self.errors += 1
                log.warning("%s: %s: %s (retrying)", tx.kind, type(exc).__name__, exc)
            if tx.outcome is None:
                await trio.sleep(self.tick)

    async def _step(self, tx: PendingTx) -> None:
        if tx.superseded:
            await self._finish(tx, IntentStatus.CANCELLED, "superseded by a newer submission")
            return
        if tx.sent is None:
            if tx.needed is not None and not await tx.needed():
                await self._finish(tx, IntentStatus.CANCELLED, "no longer needed")
                return
            await self._send_new(tx)
            return
        if await self._settled_by_receipt(tx):
            return
        if tx.needed is not None and not await tx.needed():
            # Our transaction may have been mined between the receipt lookup and this check
            # (that is often why it is no longer needed): then it did the job, it is not
            # cancelled.
            if not await self._settled_by_receipt(tx):
                await self._finish(tx, IntentStatus.CANCELLED, "no longer needed (superseded)")
            return
        head = max(await self.client.head(), self.max_head)
        self.max_head = head
        policy = self.policy
        if tx.deadline is not None and not tx.at_risk:
            left = tx.deadline - self.now()
            if left <= policy.deadline_margin:
                tx.at_risk = True
                self.alarm(
                    tx.channel_id,
                    "DeadlineAtRisk",
                    f"{tx.kind} {tx.sent.hash} not mined {left}s before the deadline "
                    f"({tx.bumps} fee bumps, {tx.rebroadcasts} rebroadcasts)",
                )
        stuck = (
            head - tx.acted_head >= policy.stuck_blocks
            or trio.current_time() - tx.acted_at >= policy.stuck_seconds
            or (tx.at_risk and head > tx.acted_head)
        )
        if stuck:
            await self._unstick(tx, head)

    async def _unstick(self, tx: PendingTx, head: int) -> None:
        assert tx.sent is not None
        sender = self.client.sender
        assert sender is not None
        nonce = tx.sent.nonce
        mined = await self.client.rpc.get_transaction_count(sender.address, "latest")
        if mined > nonce:
            # The nonce is used, yet none of our versions has a receipt: another transaction
            # from this key took it (or the receipt is lagging: look once more).
            if await self._receipt(tx) is not None:
                return
            if tx.fn is None:
                await self._finish(tx, IntentStatus.CANCELLED, f"nonce {nonce} used by another tx")
                return
            log.warning("%s: nonce %d taken by another transaction: sending anew", tx.kind, nonce)
            await self._send_new(tx, resync=True)
            return
        if mined < nonce and tx.fn is not None and not self._covered(mined, nonce, tx):
            # A gap below our nonce that no live transaction of ours fills (a reorg or a lost
            # transaction): ours can never be mined as it is.
            log.warning("%s: nonce gap %d..%d: sending anew", tx.kind, mined, nonce)
            await self._send_new(tx, resync=True)
            return
        fee = int(tx.sent.fields["maxFeePerGas"])
        cap = self.policy.max_fee_per_gas
        if (tx.revived and tx.rebroadcasts == 0) or (cap is not None and fee >= cap):
            await sender.rebroadcast(tx.sent)
            tx.rebroadcasts += 1
            log.warning("%s: rebroadcast %s", tx.kind, tx.sent.hash)
        else:
            new = await sender.replace(tx.sent)
            tx.sent = new
            tx.hashes.append(new.hash)
            tx.bumps += 1
            log.warning(
                "%s: no receipt, fee bump to %s/%s: %s",
                tx.kind,
                new.fields["maxFeePerGas"],
                new.fields["maxPriorityFeePerGas"],
                new.hash,
            )
            await self._journal_update(tx, IntentStatus.SENT)
        tx.acted_at = trio.current_time()
        tx.acted_head = head

    def _covered(self, low: int, high: int, tx: PendingTx) -> bool:
        return any(
            other is not tx and other.sent is not None and low <= other.sent.nonce < high
            for other in self.live.values()
        )

    async def _send_new(self, tx: PendingTx, *, resync: bool = False) -> None:
        assert tx.fn is not None
        sender = self.client.sender
        if sender is None:
            tx.sent = None
            await self._finish(tx, IntentStatus.FAILED, "no transaction key")
            self.alarm(tx.channel_id, "ChainTxFailed", f"{tx.kind}: no transaction key")
            return
        others = any(o is not tx and o.sent is not None for o in self.live.values())
        if resync or not others:
            # Time-critical: never inherit a stale local nonce (a reorg or a lost transaction).
            await sender.sync_nonce()
        sent = await self.client.send_transaction(tx.fn, *tx.args)
        crash_point("chain_tx", "post_send")
        tx.sent = sent
        tx.hashes.append(sent.hash)
        tx.sends += 1
        tx.acted_at = trio.current_time()
        tx.acted_head = max(self.max_head, sender.rpc.max_head_seen)
        await self._journal_update(tx, IntentStatus.SENT)

    async def _settled_by_receipt(self, tx: PendingTx) -> bool:
        """Finish ``tx`` if one of its versions has a receipt; say whether it did."""
        receipt = await self._receipt(tx)
        if receipt is None:
            return False
        tx.receipt = receipt
        if receipt.status == 1:
            await self._finish(tx, IntentStatus.CONFIRMED, "mined")
        else:
            await self._finish(tx, IntentStatus.FAILED, "reverted on chain")
        return True

    async def _receipt(self, tx: PendingTx) -> Receipt | None:
        for h in reversed(tx.hashes):
            receipt = await self.client.rpc.get_transaction_receipt(h)
            if receipt is not None:
                return receipt
        return None

    async def _journal_update(self, tx: PendingTx, status: IntentStatus) -> None:
        if self.journal is None or tx.intent is None:
            return
        sent = tx.sent
        tx_hash: bytes | None
        if tx.receipt is not None:
            tx_hash = bytes.fromhex(tx.receipt.transaction_hash[2:])
        else:
            tx_hash = bytes.fromhex(sent.hash[2:]) if sent is not None else None
        await self.journal.update(
            tx.intent,
            status,
            raw_tx=sent.raw if sent is not None else None,
            tx_hash=tx_hash,
            nonce=sent.nonce if sent is not None else None,
        )

    async def _finish(self, tx: PendingTx, outcome: IntentStatus, detail: str) -> None:
        # Journal first, publish after: whoever sees `tx.outcome` set (the watcher, a caller
        # waiting on it) may read the journal next and must find the same outcome there.
        try:
            await self._journal_update(tx, outcome)
        except ChannelError as exc:  # the outcome is re-derived from the chain after a restart
            log.warning("could not record the outcome of %s: %s", tx.kind, exc)
        tx.outcome = outcome
        tx.detail = detail
        if self.live.get(tx.key) is tx:
            del self.live[tx.key]
            self.finished[tx.key] = tx
        if tx.sent is not None and self.client.sender is not None:
            self.client.sender.forget(tx.sent.nonce)
        if outcome is IntentStatus.FAILED and tx.channel_id is not None and tx.sent is not None:
            self.alarm(tx.channel_id, "ChainTxFailed", f"{tx.kind}: {detail}")
        if tx.on_done is not None:
            tx.on_done(tx)
        tx.done.set()


#: Intent kinds and the key that makes them idempotent (one live transaction per purpose).
def intent_key(kind: str, channel_id: ChannelId | None, extra: object = None) -> tuple[object, ...]:
    if kind in ("refute", "register"):
        return ("register", channel_id)
    if kind == "conclude":
        return ("conclude", channel_id)
    if kind in ("settle", "release"):
        return ("settle", channel_id)  # one at a time: each proof is against the current root
    if kind == "withdraw":
        return ("withdraw", extra)
    return (kind, channel_id, extra)


async def register_needed(
    chain: AdjudicatorClient, channel_id: bytes, version: int, now: Callable[[], int]
) -> bool:
    """Whether registering ``version`` still changes anything: the channel is not concluded, its
    record is older, and (if disputed) the deadline has not passed."""
    view = await chain.channel(channel_id)
    if view.status is ChannelStatus.CONCLUDED or view.version >= version:
        return False
    return not (view.status is ChannelStatus.DISPUTED and now() > view.deadline)


async def conclude_needed(chain: AdjudicatorClient, channel_id: bytes) -> bool:
    return (await chain.channel(channel_id)).status is ChannelStatus.DISPUTED


# ---- the node's watcher ----------------------------------------------------------------------


def bind_register_needed(
    chain: AdjudicatorClient, cid: bytes, version: int, now: Callable[[], int]
) -> Callable[[], Awaitable[bool]]:
    async def needed() -> bool:
        return await register_needed(chain, cid, version, now)

    return needed


def bind_conclude_needed(chain: AdjudicatorClient, cid: bytes) -> Callable[[], Awaitable[bool]]:
    async def needed() -> bool:
        return await conclude_needed(chain, cid)

    return needed
