"""ERC-20 helpers: the test token (``build/TestERC20.json``) and the few standard calls we need.

Addresses are 20 raw bytes, amounts ints. Calls that send a transaction wait for the receipt and
raise :class:`adjudicator.errors.ContractError` (usually ``UnknownRevert``: token errors are not the
adjudicator's) on a revert.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from channels.core.errors import ChainError, RemoteError
from channels.core.model import MAX_ASSET_DECIMALS, to_checksum

from .abi import ContractAbi
from .errors import ContractError, from_chain_error
from .rpc import RpcClient
from .rpc_errors import ExecutionReverted
from .rpc_types import Receipt
from .transactions import TransactionReverted, TransactionSender

BUILD_DIR = Path(__file__).resolve().parent / "build"
DEFAULT_TIMEOUT = 120.0


@cache
def load_artifact(name: str) -> tuple[ContractAbi, bytes]:
    """(ABI, creation bytecode) of ``build/<name>.json``."""
    with open(BUILD_DIR / f"{name}.json", encoding="utf-8") as fh:
        art = json.load(fh)
    code = str(art.get("bytecode", "0x"))
    return ContractAbi(art["abi"]), bytes.fromhex(code.removeprefix("0x"))


def erc20_abi() -> ContractAbi:
    return load_artifact("TestERC20")[0]


class TokenApprovalFailed(ContractError, RemoteError):
    """The token would not set the allowance a deposit needs."""


class BadTokenDecimals(ContractError, ChainError):
    """The token's ``decimals()`` reverted, answered something other than one 32-byte word, or
    a number above ``MAX_ASSET_DECIMALS``: no amount in it can be scaled, so no channel in it is
    opened."""


async def _call(rpc: RpcClient, token: bytes, fn: str, *args: Any) -> tuple[Any, ...]:
    abi = erc20_abi()
    try:
        out = await rpc.call({"to": to_checksum(token), "data": abi.encode_call(fn, *args)})
    except ExecutionReverted as exc:
        raise from_chain_error(exc) from exc
    return abi.decode_output(fn, out)


async def _transact(
    sender: TransactionSender, token: bytes, fn: str, *args: Any, timeout: float = DEFAULT_TIMEOUT
) -> Receipt:
    data = erc20_abi().encode_call(fn, *args)
    try:
        return await sender.transact(to_checksum(token), data, timeout=timeout)
    except (ExecutionReverted, TransactionReverted) as exc:
        raise from_chain_error(exc) from exc


async def deploy_test_token(
    rpc: RpcClient,
    sender: TransactionSender,
    decimals: int = 6,
    *,
    name: str = "Test USD",
    symbol: str = "TUSD",
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """Deploy a ``TestERC20`` (public mint, blocklist) and return its address."""
    abi, code = load_artifact("TestERC20")
    args = abi.encode_constructor(name, symbol, decimals)
    addr = await sender.deploy(code, args, timeout=timeout)
    return bytes.fromhex(addr[2:])


async def mint(
    rpc: RpcClient, sender: TransactionSender, token: bytes, to: bytes, amount: int
) -> Receipt:
    """``TestERC20.mint(to, amount)`` (test token only)."""
    return await _transact(sender, token, "mint", to, amount)


async def set_blocked(
    rpc: RpcClient, sender: TransactionSender, token: bytes, account: bytes, blocked: bool
) -> Receipt:
    """``TestERC20.setBlocked``: transfers to a blocked account revert (test token only)."""
    return await _transact(sender, token, "setBlocked", account, blocked)


async def approve(
    rpc: RpcClient, sender: TransactionSender, token: bytes, spender: bytes, amount: int
) -> Receipt:
    """``approve(spender, amount)`` from the sender's account."""
    return await _transact(sender, token, "approve", spender, amount)


async def force_approve(
    rpc: RpcClient, sender: TransactionSender, token: bytes, spender: bytes, amount: int
) -> None:
    """Set the allowance to exactly ``amount``, as OpenZeppelin's ``forceApprove`` does: try
    ``approve(amount)``; if the token refuses it (USDT and other approval-race tokens revert
    when a non-zero allowance is changed to another non-zero one, some return false), set it to
    zero first and approve again. Raises if the allowance still is not ``amount``."""
    owner = bytes.fromhex(sender.address[2:])
    try:
        await approve(rpc, sender, token, spender, amount)
    except ContractError:
        pass  # refused: reset to zero below
    if await allowance(rpc, token, owner, spender) == amount:
        return
    await approve(rpc, sender, token, spender, 0)
    await approve(rpc, sender, token, spender, amount)
    now = await allowance(rpc, token, owner, spender)
    if now != amount:
        raise TokenApprovalFailed(
            message=f"the token at {to_checksum(token)} left the allowance at {now}, not {amount}"
        )


async def transfer(
    rpc: RpcClient, sender: TransactionSender, token: bytes, to: bytes, amount: int
) -> Receipt:
    return await _transact(sender, token, "transfer", to, amount)


async def balance_of(rpc: RpcClient, token: bytes, account: bytes) -> int:
    return int((await _call(rpc, token, "balanceOf", account))[0])


async def allowance(rpc: RpcClient, token: bytes, owner: bytes, spender: bytes) -> int:
    return int((await _call(rpc, token, "allowance", owner, spender))[0])


async def decimals(rpc: RpcClient, token: bytes) -> int:
    """The token's ``decimals()``, checked: one 32-byte word holding 0 to ``MAX_ASSET_DECIMALS``
    (an address without code answers nothing; a hostile token may answer anything).
    Raises :class:`BadTokenDecimals` otherwise; a failing RPC node raises its own error."""
    where = f"decimals() of the token at {to_checksum(token)}"
    call = {"to": to_checksum(token), "data": erc20_abi().encode_call("decimals")}
    try:
        out = await rpc.call(call)
    except ExecutionReverted as exc:
        raise BadTokenDecimals(message=f"{where} reverted ({from_chain_error(exc)})") from exc
    if len(out) != 32:
        raise BadTokenDecimals(message=f"{where} answered {len(out)} bytes, not one 32-byte word")
    value = int.from_bytes(out, "big")
    if value > MAX_ASSET_DECIMALS:
        shown = value if value < 10**12 else f"0x{out.hex()}"
        raise BadTokenDecimals(message=f"{where} is {shown}, above {MAX_ASSET_DECIMALS}")
    return value


__all__ = [
    "BadTokenDecimals",
    "ContractError",
    "allowance",
    "approve",
    "balance_of",
    "decimals",
    "deploy_test_token",
    "load_artifact",
    "mint",
    "set_blocked",
    "transfer",
]
