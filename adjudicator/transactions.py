"""Send EIP-1559 transactions from one account: local nonces, gas estimation, receipts,
revert decoding, fee-bump replacement, rebroadcast, contract deployment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from eth_utils.address import to_checksum_address

from channels.core.errors import ChainError

from .abi import ContractAbi, DecodedError
from .rpc import RpcClient
from .rpc_errors import ExecutionReverted, NonceTooLow
from .rpc_types import Receipt, parse_data, parse_quantity
from .tx_signing import KeyTransactionSigner, TransactionSigner, sign_transaction

ErrorDecoder = Callable[[bytes], DecodedError | None]


class TransactionError(ChainError):
    """Base of the sender's own errors."""


class TransactionReverted(TransactionError):
    """A mined transaction has status 0. ``revert_data`` comes from replaying the transaction
    as ``eth_call`` at the receipt's block (None if the replay did not revert, e.g. because the
    state changed); ``decoded`` is the custom error if a decoder knew it."""

    def __init__(
        self,
        receipt: Receipt,
        revert_data: bytes | None,
        decoded: DecodedError | None,
    ) -> None:
        what = (
            str(decoded)
            if decoded
            else ("0x" + revert_data.hex() if revert_data is not None else "no revert data")
        )
        super().__init__(f"transaction {receipt.transaction_hash} reverted: {what}")
        self.receipt = receipt
        self.tx_hash = receipt.transaction_hash
        self.revert_data = revert_data
        self.decoded = decoded


class ReceiptTimeout(TransactionError):
    """No receipt within the caller's timeout. The transaction may still be mined later."""

    def __init__(self, tx_hashes: Sequence[str], timeout: float) -> None:
        super().__init__(f"no receipt for {', '.join(tx_hashes)} after {timeout}s")
        self.tx_hashes = tuple(tx_hashes)


class NonceConsumed(TransactionError):
    """The account's nonce moved past this transaction's nonce but none of the known versions
    of the transaction was mined (another transaction with the same nonce won)."""

    def __init__(self, nonce: int, tx_hashes: Sequence[str]) -> None:
        super().__init__(f"nonce {nonce} was used by another transaction than {tx_hashes}")
        self.nonce = nonce
        self.tx_hashes = tuple(tx_hashes)


class UnknownTransaction(TransactionError):
    """This sender has no record of the given hash (or nonce)."""


@dataclass
class SentTx:
    """A signed, broadcast transaction. Persist ``raw`` before/after sending if the caller
    must be able to rebroadcast it after a restart (docs/THREATS.md W3, W7)."""

    hash: str
    nonce: int
    raw: bytes
    fields: Mapping[str, Any]
    replaces: str | None = None
    """Hash of the transaction this one replaced (fee bump), if any."""
    versions: list[str] = field(default_factory=list)
    """All hashes sent with this nonce by this sender, oldest first (includes ``hash``)."""


@dataclass(frozen=True)
class FeeSettings:
    """How fees are chosen: max fee = base fee * ``base_fee_multiplier`` + priority fee."""

    priority_fee: int | None = None
    """Fixed tip (wei); None asks the node (``eth_maxPriorityFeePerGas``)."""
    base_fee_multiplier: int = 2
    min_bump_permille: int = 125
    """Minimum increase of both fee caps when replacing (125 = 12.5%; geth wants 10%)."""


def bump(value: int, permille: int) -> int:
    """``value`` raised by at least ``permille``/1000, rounded up, and by at least 1 wei."""
    return max(value + 1, value + -(-value * permille // 1000))


class TransactionSender:
    """Sends transactions for one account through one ``RpcClient``; the account is a private
    key or any :class:`TransactionSigner` (a keystore, a remote signer).

    Nonces are kept locally (fetched once from the pending count, then incremented) so that
    concurrent ``send`` calls from many trio tasks get distinct, gap-free nonces: signing and
    broadcasting happen under a lock; estimation and waiting do not.
    """

    def __init__(
        self,
        rpc: RpcClient,
        private_key: str | bytes | TransactionSigner,
        *,
        chain_id: int | None = None,
        fees: FeeSettings | None = None,
        gas_margin_percent: int = 20,
        poll_interval: float = 0.05,
        errors: ContractAbi | ErrorDecoder | None = None,
    ) -> None:
        self.rpc = rpc
        self._signer: TransactionSigner = (
            KeyTransactionSigner(private_key)
            if isinstance(private_key, str | bytes)
            else private_key
        )
        self.address: str = to_checksum_address(bytes(self._signer.address))
        self._chain_id = chain_id
        self.fees = fees or FeeSettings()
        self.gas_margin_percent = gas_margin_percent
        self.poll_interval = poll_interval
        self._decode_error = _as_decoder(errors)
        self._nonce: int | None = None
        self._lock = trio.Lock()
        self._by_hash: dict[str, SentTx] = {}
        self._by_nonce: dict[int, list[SentTx]] = {}

    # ---- nonces and fees --------------------------------------------------------------------

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = await self.rpc.chain_id()
        return self._chain_id

    async def sync_nonce(self) -> int:
        """Reload the next nonce from the node's pending transaction count."""
        async with self._lock:
            self._nonce = await self.rpc.get_transaction_count(self.address, "pending")
            return self._nonce

    @property
    def next_nonce(self) -> int | None:
        """The nonce the next ``send`` will use, if known."""
        return self._nonce

    async def suggest_fees(self) -> tuple[int, int]:
        """(max fee per gas, max priority fee per gas) for the next block."""
        if self.fees.priority_fee is not None:
            tip = self.fees.priority_fee
        else:
            tip = await self.rpc.max_priority_fee_per_gas()
        block = await self.rpc.get_block("pending")
        if block is None or block.base_fee_per_gas is None:
            block = await self.rpc.get_block("latest")
        base = block.base_fee_per_gas if block and block.base_fee_per_gas is not None else 0
        return base * self.fees.base_fee_multiplier + tip, tip

    async def estimate_gas(self, to: str | None, data: bytes, value: int) -> int:
        """Estimate with the configured margin. A revert raises ``ExecutionReverted`` with
        ``decoded`` filled in when the error decoder knows it."""
        tx: dict[str, Any] = {"from": self.address, "data": data, "value": value}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        try:
            est = await self.rpc.estimate_gas(tx)
        except ExecutionReverted as exc:
            exc.decoded = self._decode_error(exc.revert_data)
            raise
        return est * (100 + self.gas_margin_percent) // 100

    # ---- sending ----------------------------------------------------------------------------

    async def send(
        self,
        to: str | None,
        data: bytes = b"",
        value: int = 0,
        *,
        gas: int | None = None,
        max_fee_per_gas: int | None = None,
        max_priority_fee_per_gas: int | None = None,
        nonce_retries: int = 2,
    ) -> SentTx:
        """Sign and broadcast; return at once (see ``wait_receipt``).
        ``to=None`` creates a contract."""
        if gas is None:
            gas = await self.estimate_gas(to, data, value)
        if max_fee_per_gas is None or max_priority_fee_per_gas is None:
            max_fee, tip = await self.suggest_fees()
            max_fee_per_gas = max_fee if max_fee_per_gas is None else max_fee_per_gas
            if max_priority_fee_per_gas is None:
                max_priority_fee_per_gas = min(tip, max_fee_per_gas)
        chain_id = await self.chain_id()
        fields: dict[str, Any] = {
            "type": 2,
            "chainId": chain_id,
            "gas": gas,
            "maxFeePerGas": max_fee_per_gas,
            "maxPriorityFeePerGas": max_priority_fee_per_gas,
            "value": value,
            "data": data,
        }
        if to is not None:
            fields["to"] = to_checksum_address(to)
        async with self._lock:
            for attempt in range(nonce_retries + 1):
                if self._nonce is None:
                    self._nonce = await self.rpc.get_transaction_count(self.address, "pending")
                nonce = self._nonce
                fields["nonce"] = nonce
                raw, tx_hash = await sign_transaction(self._signer, fields)
                try:
                    await self.rpc.send_raw_transaction(raw)
                except NonceTooLow:
                    self._nonce = None  # another sender used this key: resync and re-sign
                    if attempt == nonce_retries:
                        raise
                    continue
                except BaseException:
                    # The node may or may not have accepted it (e.g. a transport error after
                    # all retries, or cancellation): resync from the pending count next time.
                    self._nonce = None
                    raise
                self._nonce = nonce + 1
                sent = SentTx(hash=tx_hash, nonce=nonce, raw=raw, fields=dict(fields))
                self._track(sent)
                return sent
        raise AssertionError("unreachable")

    def _track(self, sent: SentTx) -> None:
        versions = self._by_nonce.setdefault(sent.nonce, [])
        versions.append(sent)
        hashes = [s.hash for s in versions]
        for s in versions:
            s.versions = hashes
        self._by_hash[sent.hash] = sent

    def forget(self, nonce: int) -> None:
        """Drop the records of every version sent with ``nonce``."""
        for s in self._by_nonce.pop(nonce, []):
            self._by_hash.pop(s.hash, None)

    def tracked(self, tx_hash: str) -> SentTx:
        try:
            return self._by_hash[tx_hash.lower()]
        except KeyError:
            raise UnknownTransaction(tx_hash) from None

    async def transact(
        self,
        to: str | None,
        data: bytes = b"",
        value: int = 0,
        *,
        timeout: float,
        gas: int | None = None,
    ) -> Receipt:
        """``send`` then ``wait_receipt``."""
        sent = await self.send(to, data, value, gas=gas)
        return await self.wait_receipt(sent, timeout=timeout)

    async def deploy(
        self,
        bytecode: bytes,
        constructor_args: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        timeout: float,
    ) -> str:
        """Deploy ``bytecode + constructor_args`` (see ``ContractAbi.encode_constructor``);
        return the checksummed contract address once mined."""
        receipt = await self.transact(
            None, bytecode + constructor_args, value, timeout=timeout, gas=gas
        )
        if receipt.contract_address is None:
            raise TransactionError(f"deployment {receipt.transaction_hash} has no address")
        return receipt.contract_address

    # ---- receipts ---------------------------------------------------------------------------

    async def wait_receipt(
        self,
        tx: SentTx | str,
        *,
        timeout: float,
        check_status: bool = True,
    ) -> Receipt:
        """Poll until one version of ``tx`` (the original or a fee-bump replacement sent by this
        sender) is mined. Raises ``TransactionReverted`` on status 0 (if ``check_status``),
        ``ReceiptTimeout``, or ``NonceConsumed`` if an unknown transaction took the nonce."""
        if isinstance(tx, str):
            sent = self._by_hash.get(tx.lower())
            if sent is None:
                return await wait_receipt(
                    self.rpc,
                    tx,
                    timeout=timeout,
                    poll_interval=self.poll_interval,
                    check_status=check_status,
                    errors=self._decode_error,
                )
        else:
            sent = tx
        nonce = sent.nonce
        receipt: Receipt | None = None
        with trio.move_on_after(timeout):
            polls = 0
            consumed_checks = 0
            while receipt is None:
                hashes = [s.hash for s in self._by_nonce.get(nonce, [sent])]
                for h in reversed(hashes):  # newest first: usually the one that gets mined
                    receipt = await self.rpc.get_transaction_receipt(h)
                    if receipt is not None:
                        break
                if receipt is not None:
                    break
                polls += 1
                if polls % 10 == 0:
                    mined = await self.rpc.get_transaction_count(self.address, "latest")
                    # Require two consecutive sightings: receipt indexing can lag the count,
                    # and a load-balanced endpoint may answer from different backends.
                    consumed_checks = consumed_checks + 1 if mined > nonce else 0
                    if consumed_checks >= 2:
                        raise NonceConsumed(nonce, hashes)
                await trio.sleep(self.poll_interval)
        if receipt is None:
            raise ReceiptTimeout([s.hash for s in self._by_nonce.get(nonce, [sent])], timeout)
        self.forget(nonce)  # mined: the caller keeps the SentTx if it wants to rebroadcast
        if check_status and receipt.status == 0:
            await _raise_reverted(self.rpc, receipt, self._decode_error)
        return receipt

    # ---- stuck transactions -----------------------------------------------------------------

    async def replace(
        self,
        tx: SentTx | str,
        *,
        max_fee_per_gas: int | None = None,
        max_priority_fee_per_gas: int | None = None,
    ) -> SentTx:
        """Re-sign the newest version of ``tx`` with the same nonce and higher fees: both caps
        rise by at least ``fees.min_bump_permille`` and at least to the current suggestion
        (so a replacement follows a base-fee spike). Explicit fees are raised to the minimum
        bump if lower."""
        sent = self.tracked(tx) if isinstance(tx, str) else tx
        latest = self._by_nonce.get(sent.nonce, [sent])[-1]
        old_fee = int(latest.fields["maxFeePerGas"])
        old_tip = int(latest.fields["maxPriorityFeePerGas"])
        permille = self.fees.min_bump_permille
        if max_fee_per_gas is None or max_priority_fee_per_gas is None:
            market_fee, market_tip = await self.suggest_fees()
        else:
            market_fee, market_tip = 0, 0
        tip = max(bump(old_tip, permille), max_priority_fee_per_gas or market_tip)
        fee = max(bump(old_fee, permille), max_fee_per_gas or market_fee, tip)
        fields = dict(latest.fields)
        fields["maxFeePerGas"] = fee
        fields["maxPriorityFeePerGas"] = tip
        raw, tx_hash = await sign_transaction(self._signer, fields)
        await self.rpc.send_raw_transaction(raw)
        new = SentTx(hash=tx_hash, nonce=sent.nonce, raw=raw, fields=fields, replaces=latest.hash)
        self._track(new)
        return new

    async def rebroadcast(self, tx: SentTx | str) -> str:
        """Send a tracked transaction's raw bytes again (e.g. the node dropped it, or a reorg
        removed it). "already known" is success. Raises ``NonceTooLow`` if the nonce is used."""
        sent = self.tracked(tx) if isinstance(tx, str) else tx
        return await self.rpc.send_raw_transaction(sent.raw)


def _as_decoder(errors: ContractAbi | ErrorDecoder | None) -> ErrorDecoder:
    if errors is None:
        return ContractAbi([]).decode_error  # Error(string) and Panic(uint256) only
    if isinstance(errors, ContractAbi):
        return errors.decode_error
    return errors


async def revert_data_of(rpc: RpcClient, receipt: Receipt) -> bytes | None:
    """Replay a mined transaction as ``eth_call`` at its block to recover the revert data.

    A reverted transaction changes no state except the sender's nonce and balance, so the
    state after its block is the state it ran in, except for later transactions in the same
    block. None if the replay does not revert (the state moved on)."""
    tx = await rpc.get_transaction(receipt.transaction_hash)
    if tx is None:
        return None
    call: dict[str, Any] = {
        "from": tx["from"],
        "data": parse_data(tx.get("input", tx.get("data", "0x"))),
        "value": parse_quantity(tx.get("value", "0x0")),
        "gas": parse_quantity(tx["gas"]),
    }
    if tx.get("to") is not None:
        call["to"] = tx["to"]
    try:
        await rpc.call(call, receipt.block_number)
    except ExecutionReverted as exc:
        return exc.revert_data
    return None


async def _raise_reverted(rpc: RpcClient, receipt: Receipt, decode: ErrorDecoder) -> None:
    data = await revert_data_of(rpc, receipt)
    decoded = decode(data) if data else None
    raise TransactionReverted(receipt, data, decoded)


async def wait_receipt(
    rpc: RpcClient,
    tx_hash: str,
    *,
    timeout: float,
    poll_interval: float = 0.05,
    check_status: bool = True,
    errors: ContractAbi | ErrorDecoder | None = None,
) -> Receipt:
    """Poll ``eth_getTransactionReceipt`` (null right after sending is normal) until mined."""
    receipt: Receipt | None = None
    with trio.move_on_after(timeout):
        while True:
            receipt = await rpc.get_transaction_receipt(tx_hash)
            if receipt is not None:
                break
            await trio.sleep(poll_interval)
    if receipt is None:
        raise ReceiptTimeout([tx_hash], timeout)
    if check_status and receipt.status == 0:
        await _raise_reverted(rpc, receipt, _as_decoder(errors))
    return receipt
