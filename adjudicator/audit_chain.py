"""Whether the chain transactions an audit export cites are on chain with the outcome it claims
(``channels verify EXPORT --rpc URL``; docs/PROTOCOL.md section 14).

The pure verifier (channels/core/audit.py) checks each transaction hash only for its shape; here
each one is looked up through a JSON-RPC endpoint: the chain must be the export's, a transaction
the export calls confirmed must be mined, succeeded, sent to the export's adjudicator and carry
the event its kind produces for its channel; one it calls failed must not have succeeded. Sent,
pending and cancelled ones have no outcome to check and are counted as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adjudicator.client import connect_adjudicator
from channels.core.audit import AuditInvalid, AuditReport, AuditTx

#: The events a transaction of each intent kind emits for its channel when it succeeds.
EXPECTED_EVENTS: dict[str, tuple[str, ...]] = {
    "register": ("Registered",),
    "refute": ("Registered",),
    "checkpoint": ("Checkpointed",),
    "conclude": ("Concluded",),
    "settle": ("PositionSettled",),
    "release": ("PositionReleased",),
    "withdraw": ("PartialWithdrawal", "CreditWithdrawn"),
    "deposit": ("Deposited",),
}


@dataclass(frozen=True, slots=True)
class ChainTxReport:
    """What the chain showed for an export's transactions."""

    confirmed: int
    """Mined, succeeded, with their event, as the export says."""
    failed: int
    """Said failed, and not succeeded on chain."""
    unsettled: int
    """Sent, pending or cancelled in the export: no outcome to check."""


async def verify_txs_on_chain(
    url: str | Sequence[str], report: AuditReport, *, timeout: float = 10.0
) -> ChainTxReport:
    """Look up every transaction of ``report`` (what :func:`verify_export` returned) on chain;
    :class:`AuditInvalid` names the first one that is not as the export says."""
    confirmed = failed = unsettled = 0
    async with connect_adjudicator(url, report.adjudicator, None, timeout=timeout) as chain:
        actual = await chain.rpc.chain_id()
        if actual != report.chain_id:
            raise AuditInvalid(
                f"the endpoint serves chain {actual}, the export is of chain {report.chain_id}"
            )
        for tx in report.chain_txs:
            receipt = await chain.rpc.get_transaction_receipt("0x" + tx.tx_hash.hex())
            if tx.status == "confirmed":
                if receipt is None:
                    raise _invalid(tx, "is not on chain")
                if not receipt.succeeded:
                    raise _invalid(tx, "reverted on chain")
                to = receipt.to_address
                if to is None or bytes.fromhex(to[2:]) != report.adjudicator:
                    raise _invalid(tx, "was not sent to the export's adjudicator")
                names = EXPECTED_EVENTS.get(tx.kind)
                events = chain.decode_receipt_events(receipt)
                if names is not None and not any(
                    e.name in names and e.channel_id in (tx.channel_id, None) for e in events
                ):
                    raise _invalid(tx, f"emitted no {' or '.join(names)} event for its channel")
                confirmed += 1
            elif tx.status == "failed":
                if receipt is not None and receipt.succeeded:
                    raise _invalid(tx, "is said to have failed but succeeded on chain")
                failed += 1
            else:
                unsettled += 1
    return ChainTxReport(confirmed, failed, unsettled)


def _invalid(tx: AuditTx, what: str) -> AuditInvalid:
    return AuditInvalid(f"line {tx.line}: {tx.kind} transaction 0x{tx.tx_hash.hex()} {what}")


__all__ = ["EXPECTED_EVENTS", "ChainTxReport", "verify_txs_on_chain"]
