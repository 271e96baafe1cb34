"""Controls only dev chains (anvil) implement: time, mining, snapshots, reorgs, balances.
Never use these against a real chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .rpc_types import hex_data, parse_quantity, to_hex_quantity


class Requester(Protocol):
    """What the dev controls need of a client: one JSON-RPC call."""

    async def request(self, method: str, params: Sequence[Any] = ()) -> Any: ...


class DevRpc:
    """Methods only dev nodes (anvil) implement. Never use these against a real chain."""

    def __init__(self, rpc: Requester) -> None:
        self._rpc = rpc

    async def increase_time(self, seconds: int) -> int:
        """``evm_increaseTime``: shift the next block's timestamp; returns the total offset."""
        return parse_quantity(await self._rpc.request("evm_increaseTime", [seconds]))

    async def set_next_block_timestamp(self, timestamp: int) -> None:
        await self._rpc.request("evm_setNextBlockTimestamp", [timestamp])

    async def evm_mine(self, timestamp: int | None = None) -> None:
        """Mine one block (optionally with the given timestamp)."""
        await self._rpc.request("evm_mine", [] if timestamp is None else [timestamp])

    async def mine(self, blocks: int = 1, interval: int | None = None) -> None:
        """``anvil_mine``: mine ``blocks`` blocks, ``interval`` seconds apart."""
        params: list[Any] = [to_hex_quantity(blocks)]
        if interval is not None:
            params.append(to_hex_quantity(interval))
        await self._rpc.request("anvil_mine", params)

    async def snapshot(self) -> str:
        res = await self._rpc.request("evm_snapshot")
        return str(res)

    async def revert(self, snapshot_id: str) -> bool:
        """Revert to a snapshot. The snapshot is consumed; take a new one to revert again."""
        return bool(await self._rpc.request("evm_revert", [snapshot_id]))

    async def set_automine(self, enabled: bool) -> None:
        await self._rpc.request("anvil_setAutomine", [enabled])

    async def get_automine(self) -> bool:
        return bool(await self._rpc.request("anvil_getAutomine"))

    async def set_interval_mining(self, seconds: int) -> None:
        await self._rpc.request("anvil_setIntervalMining", [seconds])

    async def drop_transaction(self, tx_hash: str) -> None:
        await self._rpc.request("anvil_dropTransaction", [tx_hash])

    async def drop_all_transactions(self) -> None:
        await self._rpc.request("anvil_dropAllTransactions")

    async def set_balance(self, address: str, wei: int) -> None:
        await self._rpc.request("anvil_setBalance", [address, to_hex_quantity(wei)])

    async def set_code(self, address: str, code: bytes) -> None:
        await self._rpc.request("anvil_setCode", [address, hex_data(code)])

    async def set_next_block_base_fee_per_gas(self, wei: int) -> None:
        await self._rpc.request("anvil_setNextBlockBaseFeePerGas", [to_hex_quantity(wei)])

    async def reorg(self, depth: int, txs: Sequence[tuple[bytes, int]] = ()) -> None:
        """``anvil_reorg``: replace the last ``depth`` blocks; ``txs`` are (signed raw tx,
        block offset from the new base) pairs included in the new blocks."""
        await self._rpc.request(
            "anvil_reorg", [depth, [[hex_data(raw), offset] for raw, offset in txs]]
        )

    async def impersonate(self, address: str) -> None:
        await self._rpc.request("anvil_impersonateAccount", [address])

    async def stop_impersonating(self, address: str) -> None:
        await self._rpc.request("anvil_stopImpersonatingAccount", [address])
