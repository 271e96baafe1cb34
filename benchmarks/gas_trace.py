"""Where a transaction's gas goes, from anvil's opcode trace (``debug_traceTransaction``).

Used by ``benchmarks/gas.py --trace`` to back every "cannot meet this goal" note with figures:
the intrinsic part (21,000 + calldata), storage reads and writes, external calls (with everything
the callee spent), signature recovery, logs, hashing, the rest of the execution, and refunds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from adjudicator.rpc import RpcClient

_CALLS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}
_ECRECOVER = 1


def _category(op: str, stack: list[str]) -> str:
    if op in ("SLOAD", "SSTORE", "TLOAD", "TSTORE"):
        return op
    if op in _CALLS:
        target = int(stack[-2], 16) if len(stack) >= 2 else -1
        return "ecrecover" if target == _ECRECOVER else f"{op} (incl. callee)"
    if op.startswith("LOG"):
        return "LOG"
    if op in ("KECCAK256", "SHA3"):
        return "KECCAK256"
    if op in ("CALLDATACOPY", "CALLDATALOAD"):
        return "calldata reads"
    return "other opcodes"


async def breakdown(rpc: RpcClient, tx_hash: str, gas_used: int) -> dict[str, int]:
    """Gas of ``tx_hash`` by category; the values (refund negative) add up to ``gas_used``."""
    trace: dict[str, Any] = await rpc.request(
        "debug_traceTransaction",
        [tx_hash, {"disableStorage": True, "disableMemory": True, "enableReturnData": False}],
        timeout=60,
    )
    steps = trace["structLogs"]
    out: dict[str, int] = defaultdict(int)
    top = [s for s in steps if s["depth"] == 1]
    if not top:
        out["intrinsic (21,000 + calldata)"] = gas_used
        return dict(out)
    for cur, nxt in zip(top, [*top[1:], None], strict=True):
        cost = cur["gasCost"] if nxt is None else cur["gas"] - nxt["gas"]
        out[_category(cur["op"], cur.get("stack") or [])] += cost
    executed = sum(out.values())
    tx = await rpc.get_transaction(tx_hash)
    assert tx is not None
    # the first opcode starts with the gas limit less the intrinsic cost
    intrinsic = int(tx["gas"], 16) - top[0]["gas"]
    out["intrinsic (21,000 + calldata)"] = intrinsic
    refund = intrinsic + executed - gas_used
    if refund:
        out["refund"] = -refund
    return dict(out)


def render(name: str, parts: dict[str, int]) -> str:
    lines = [f"{name}: {sum(parts.values()):,}"]
    for key, value in sorted(parts.items(), key=lambda kv: -abs(kv[1])):
        lines.append(f"    {key:32s} {value:>9,}")
    return "\n".join(lines)
