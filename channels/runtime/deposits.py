"""Deposits as the chain measured them: what was sent, what the adjudicator credited, the fee.

A token may take a fee on transfer (USDT with its fee switched on, deflationary tokens), so the
adjudicator credits what arrived, not what was sent. The node reads the credit from the deposit's
own ``Deposited`` event and reports the difference; it never waits for the gross amount.

A deposit is journalled before it is sent (a ``deposit`` intent, W3), so a run that dies with one
in flight does not send it twice: at the next ``fund`` an open intent is settled against the
chain first (:func:`deposit_in_flight`): while a transaction of ours is still pending the node
waits for it to be mined; then the chain's credit decides whether the deposit went out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from adjudicator.client import AdjudicatorClient
from channels.core.errors import RemoteError
from channels.core.funding import BPS, net_floor
from channels.core.model import ChannelId, Params
from channels.core.node_events import Event
from channels.store import OPEN_INTENTS, IntentStatus
from channels.store.persister import Persister

log = logging.getLogger("channels.deposits")

#: The intent kind of a deposit (the watcher leaves these to the channel runtime).
DEPOSIT_INTENT = "deposit"
#: How long a restarted node waits for a transaction of ours still pending before it decides.
PENDING_WAIT = 120.0


class DepositNotSeen(RemoteError):
    """A deposit transaction succeeded but carries no ``Deposited`` event of the channel."""


@dataclass(frozen=True, slots=True)
class DepositMeasured(Event):
    """Our deposit is mined: ``sent`` left our account, the adjudicator credited ``credited``."""

    participant: int
    sent: int
    credited: int
    tx_hash: bytes

    @property
    def fee(self) -> int:
        """What the asset kept on the way (0 for an ordinary token)."""
        return self.sent - self.credited


class DepositFeeRefused(RemoteError):
    """The asset kept more of our deposit than this desk consented to lose to a transfer fee.

    The deposit is on chain (credited as measured) but the channel does not count it as made:
    set ``max_deposit_fee_bps`` (``[node]`` in the TOML) to consent to the fee, or close the
    channel (its version 0 refunds every credited deposit).
    """

    rule = "DepositFeeRefused"


def check_fee(measured: DepositMeasured, max_fee_bps: int) -> None:
    """Refuse a deposit whose fee is above ``max_fee_bps`` of what was sent (0: any fee)."""
    if measured.credited >= net_floor(measured.sent, max_fee_bps):
        return
    bps = -(-measured.fee * BPS // measured.sent)
    raise DepositFeeRefused(
        f"the asset kept {measured.fee} of the {measured.sent} deposited (about {bps} bps); this "
        f"desk accepts at most {max_fee_bps} bps: set max_deposit_fee_bps to consent to the fee, "
        "or close the channel (version 0 refunds what was credited)"
    )


async def deposit_measured(
    chain: AdjudicatorClient, params: Params, participant: int, amount: int
) -> DepositMeasured:
    """Deposit ``amount`` for ``participant`` and return what the adjudicator credited."""
    receipt = await chain.deposit(params, participant, amount)
    cid = params.channel_id
    credited = [
        int(str(event.args["amount"]))
        for event in chain.decode_receipt_events(receipt)
        if event.name == "Deposited"
        and event.channel_id == cid
        and int(str(event.args["participant"])) == participant
    ]
    if not credited:
        raise DepositNotSeen(f"deposit {receipt.transaction_hash} shows no Deposited event")
    tx_hash = bytes.fromhex(receipt.transaction_hash[2:])
    return DepositMeasured(ChannelId(cid), participant, amount, sum(credited), tx_hash)


async def deposit_in_flight(
    chain: AdjudicatorClient, store: Persister, channel_id: ChannelId, participant: int, floor: int
) -> bool:
    """Settle the deposit intents a previous run left open for the channel; True if the chain
    now credits ``participant`` at least ``floor`` (so nothing is to be sent again).

    An open intent means the deposit may or may not have been broadcast. While a transaction of
    our account is pending (its ``pending`` nonce above its ``latest``), wait for it (bounded by
    :data:`PENDING_WAIT`); once nothing of ours is in flight the chain's credit is final.
    """
    open_ = await store.intents(OPEN_INTENTS, channel_id, DEPOSIT_INTENT)
    if not open_:
        return False
    sender = chain.sender
    if sender is not None:
        rpc = chain.rpc
        with trio.move_on_after(PENDING_WAIT):
            told = False
            while await rpc.get_transaction_count(
                sender.address, "pending"
            ) > await rpc.get_transaction_count(sender.address, "latest"):
                if not told:
                    log.warning(
                        "0x%s: a deposit of a previous run may be in flight: waiting for our "
                        "pending transactions before deciding",
                        channel_id.hex()[:12],
                    )
                    told = True
                await trio.sleep(1.0)
    view = await chain.channel(channel_id)
    seen = (view.deposits0, view.deposits1)[participant] >= floor
    for intent in open_:
        await store.update_intent(
            intent.id, IntentStatus.CONFIRMED if seen else IntentStatus.CANCELLED
        )
    return seen
