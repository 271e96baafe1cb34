"""Typed client of the deployed ``Adjudicator`` contract (docs/PROTOCOL.md section 8).

It speaks the core's types (``channels.core.model``: ``Params``, ``State``, ``SignedState``,
``Position``, ``Attestation``, ``Withdrawal``; addresses and ids as raw bytes) and hides the ABI:

* state-changing methods simulate first (``eth_estimateGas``), so a rule the contract would refuse
  surfaces as its :class:`adjudicator.errors.ContractError` subclass *before* anything is sent; then
  they send the transaction, wait for the receipt and map a mined revert the same way. They return
  the :class:`~adjudicator.rpc_types.Receipt`.
* views are ``eth_call``s, optionally at a given block (for confirmation depth);
* :meth:`AdjudicatorClient.events` decodes the contract's logs into :class:`ChainEvent`s.

The ABI tuples of the core types and the settlement proofs are in :mod:`adjudicator.calldata`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from channels.core.errors import IllegalCall
from channels.core.model import (
    ZERO_ADDRESS,
    Attestation,
    Params,
    Position,
    SignedState,
    State,
    Withdrawal,
    check_bytes,
    to_checksum,
)

from . import tokens
from .abi import ContractAbi, canonical_type
from .calldata import (
    attestation_tuple,
    both_signatures,
    params_tuple,
    position_tuple,
    settlement_proof,
    signature_from_tuple,
    signature_tuple,
    state_from_tuple,
    state_tuple,
    withdrawal_terms_tuple,
    withdrawal_tuple,
)
from .errors import ContractError, from_chain_error
from .rpc import RpcClient, open_rpc
from .rpc_errors import ExecutionReverted
from .rpc_types import BlockId, Receipt
from .transactions import SentTx, TransactionReverted, TransactionSender
from .tx_signing import TransactionSigner

ETH = ZERO_ADDRESS
"""The ``asset`` of an ETH channel."""
ETH_DECIMALS = 18
DEFAULT_RECEIPT_TIMEOUT = 120.0


def adjudicator_abi() -> ContractAbi:
    return tokens.load_artifact("Adjudicator")[0]


def adjudicator_bytecode() -> bytes:
    return tokens.load_artifact("Adjudicator")[1]


class ChannelStatus(enum.IntEnum):
    OPEN = 0
    DISPUTED = 1
    CONCLUDED = 2


@dataclass(frozen=True)
class ChannelView:
    """The decoded on-chain record of a channel (``getChannel``).

    ``version``: last checkpointed (open), registered (disputed) or concluded version.
    While open/disputed: ``deposits*``/``withdrawn*`` are the cumulative on-chain totals and
    ``state_hash`` the registered state's EIP-712 struct hash (disputed). Once concluded they are
    0 and ``positions_root``/``locked_remaining`` describe what is left to settle.
    """

    status: ChannelStatus
    version: int
    deadline: int
    min_version: int
    deposits0: int
    deposits1: int
    withdrawn0: int
    withdrawn1: int
    state_hash: bytes
    positions_root: bytes
    locked_remaining: int

    @property
    def deposits(self) -> tuple[int, int]:
        return (self.deposits0, self.deposits1)

    @property
    def withdrawn(self) -> tuple[int, int]:
        return (self.withdrawn0, self.withdrawn1)


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log of the adjudicator.

    ``args``: by parameter name as declared in ``IAdjudicator.sol`` (``bytes32`` as bytes,
    addresses as 20 raw bytes, ints as int). ``channel_id`` is ``args["channelId"]`` (None for
    ``CreditWithdrawn``). ``block_hash``/``tx_hash`` are 32 raw bytes. ``removed`` is set when a
    node reports the log as removed by a reorg.
    """

    name: str
    channel_id: bytes | None
    args: Mapping[str, Any]
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    removed: bool


# ---- log decoding helpers --------------------------------------------------------------------


def _hex_bytes(value: str | None) -> bytes:
    return b"" if value is None else bytes.fromhex(value[2:])


def _raw_value(typ: str, value: Any) -> Any:
    if typ == "address" and isinstance(value, str):
        return bytes.fromhex(value[2:])
    return value


# ---- the client ------------------------------------------------------------------------------


class AdjudicatorClient:
    """One adjudicator deployment on one chain.

    ``sender`` pays gas and signs transactions; without one, only views and events work.
    """

    def __init__(
        self,
        rpc: RpcClient,
        address: bytes,
        sender: TransactionSender | None,
        *,
        receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
        log_chunk: int = 10_000,
    ) -> None:
        self.rpc = rpc
        self.address = check_bytes(bytes(address), 20, "adjudicator address")
        self.sender = sender
        self.abi = adjudicator_abi()
        self.receipt_timeout = receipt_timeout
        self.log_chunk = log_chunk
        """Largest block range per ``eth_getLogs`` request (providers cap it)."""
        self._checksum = to_checksum(self.address)

    @classmethod
    async def deploy(
        cls,
        rpc: RpcClient,
        sender: TransactionSender,
        *,
        receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
    ) -> AdjudicatorClient:
        """Deploy a new adjudicator from ``build/Adjudicator.json`` and return its client."""
        try:
            addr = await sender.deploy(adjudicator_bytecode(), timeout=receipt_timeout)
        except (ExecutionReverted, TransactionReverted) as exc:
            raise from_chain_error(exc) from exc
        return cls(rpc, bytes.fromhex(addr[2:]), sender, receipt_timeout=receipt_timeout)

    @property
    def checksum_address(self) -> str:
        return self._checksum

    @property
    def account(self) -> bytes | None:
        """The address that sends our transactions, if any."""
        return None if self.sender is None else bytes.fromhex(self.sender.address[2:])

    # ---- plumbing ------------------------------------------------------------------------------

    async def call(self, fn: str, *args: Any, block: BlockId = "latest") -> tuple[Any, ...]:
        """``eth_call`` of ``fn`` with raw ABI arguments (see ``params_tuple`` etc.)."""
        data = self.abi.encode_call(fn, *args)
        try:
            out = await self.rpc.call({"to": self._checksum, "data": data}, block)
        except ExecutionReverted as exc:
            raise from_chain_error(exc) from exc
        return self.abi.decode_output(fn, out)

    def _require_sender(self) -> TransactionSender:
        if self.sender is None:
            raise IllegalCall("this adjudicator client has no transaction key")
        return self.sender

    async def transact(self, fn: str, *args: Any, value: int = 0) -> Receipt:
        """Simulate, send and wait for ``fn`` with raw ABI arguments; typed error on revert."""
        sender = self._require_sender()
        data = self.abi.encode_call(fn, *args)
        try:
            # Simulation first: a refused call raises its typed error before anything is sent.
            gas = await sender.estimate_gas(self._checksum, data, value)
            return await sender.transact(
                self._checksum, data, value, gas=gas, timeout=self.receipt_timeout
            )
        except (ExecutionReverted, TransactionReverted) as exc:
            raise from_chain_error(exc) from exc

    async def send_transaction(self, fn: str, *args: Any, value: int = 0) -> SentTx:
        """Simulate, then sign and broadcast ``fn`` with raw ABI arguments; return the
        :class:`SentTx` at once, without waiting for a receipt.

        For callers that drive a transaction to inclusion themselves (rebroadcast, fee bump: see
        ``channels.defence.watcher``). A refused simulation raises the typed ``ContractError``."""
        sender = self._require_sender()
        data = self.abi.encode_call(fn, *args)
        try:
            gas = await sender.estimate_gas(self._checksum, data, value)
        except ExecutionReverted as exc:
            raise from_chain_error(exc) from exc
        return await sender.send(self._checksum, data, value, gas=gas)

    # ---- assets --------------------------------------------------------------------------------

    async def asset_decimals(self, asset: bytes) -> int:
        """18 for ETH (the zero address), else the token's ``decimals()``, checked (0 to 36;
        :class:`adjudicator.tokens.BadTokenDecimals` for anything else)."""
        if asset == ETH:
            return ETH_DECIMALS
        return await tokens.decimals(self.rpc, asset)

    # ---- state-changing entry points -----------------------------------------------------------

    async def deposit(self, params: Params, participant: int, amount: int) -> Receipt:
        """Deposit ``amount`` for ``participant`` from the sender's account.

        The adjudicator is sent only the params hash and the asset (it credits the channel id it
        derives from both, so no deposit can reach a channel of another asset), and no longer checks
        the params on a deposit: money sent to params it would refuse later could never be paid out,
        so this refuses params of another adjudicator here, before anything is sent.
        ERC-20: approves the adjudicator for ``amount`` first if the allowance is short (as
        OpenZeppelin's ``forceApprove`` does, so tokens like USDT that refuse to change a
        non-zero allowance work too). The adjudicator credits what it measured arriving
        (its ``Deposited`` event), which a fee-on-transfer token makes less than ``amount``.
        """
        if params.adjudicator != self.address:
            raise IllegalCall(
                f"params name adjudicator {to_checksum(params.adjudicator)}, not this one "
                f"({self._checksum}): a deposit to them could never be paid out"
            )
        sender = self._require_sender()
        if params.asset == ETH:
            return await self.transact(
                "depositEth", params.params_hash, participant, value=amount
            )
        owner = bytes.fromhex(sender.address[2:])
        current = await tokens.allowance(self.rpc, params.asset, owner, self.address)
        if current < amount:
            await tokens.force_approve(self.rpc, sender, params.asset, self.address, amount)
        return await self.transact(
            "depositToken", params.params_hash, params.asset, participant, amount
        )

    async def conclude(self, params: Params, signed: SignedState) -> Receipt:
        """Conclude with a mutually signed final state (pays both participants)."""
        sig0, sig1 = both_signatures(signed)
        return await self.transact(
            "conclude", params_tuple(params), state_tuple(signed.state), sig0, sig1
        )

    async def register(self, params: Params, signed: SignedState) -> Receipt:
        """Start a dispute, or replace the registered state with a newer one."""
        sig0, sig1 = both_signatures(signed)
        return await self.transact(
            "register", params_tuple(params), state_tuple(signed.state), sig0, sig1
        )

    async def checkpoint(self, params: Params, signed: SignedState) -> Receipt:
        """Record a newer fully signed state; clears a dispute."""
        sig0, sig1 = both_signatures(signed)
        return await self.transact(
            "checkpoint", params_tuple(params), state_tuple(signed.state), sig0, sig1
        )

    async def conclude_after_timeout(self, params: Params, state: State) -> Receipt:
        """After the deadline, conclude with the registered state (pays both participants)."""
        return await self.transact(
            "concludeAfterTimeout", params_tuple(params), state_tuple(state)
        )

    async def settle_position(
        self,
        params: Params,
        position: Position,
        proof: Sequence[bytes],
        attestation: Attestation,
        signature: bytes,
    ) -> Receipt:
        """Settle one expired position of a concluded channel with the oracle's attestation."""
        return await self.transact(
            "settlePosition", params_tuple(params), position_tuple(position), list(proof),
            attestation_tuple(attestation), signature_tuple(signature),
        )

    async def release_unsettled(
        self, params: Params, position: Position, proof: Sequence[bytes]
    ) -> Receipt:
        """After expiry + SETTLEMENT_GRACE, return the position's collateral to its writer."""
        return await self.transact(
            "releaseUnsettled", params_tuple(params), position_tuple(position), list(proof)
        )

    async def withdraw_partial(
        self, params: Params, withdrawal: Withdrawal, signatures: tuple[bytes, bytes]
    ) -> Receipt:
        """Execute a co-signed partial withdrawal from an open, undisputed channel."""
        return await self.transact(
            "withdrawPartial", params_tuple(params), withdrawal_terms_tuple(withdrawal),
            signature_tuple(signatures[0]), signature_tuple(signatures[1]),
        )

    async def withdraw(self, asset: bytes, to: bytes) -> Receipt:
        """Pull the sender's whole credit of ``asset`` (left by failed payouts) to ``to``."""
        return await self.transact("withdraw", asset, to)

    # ---- views ---------------------------------------------------------------------------------

    async def signed_state_of(self, tx_hash: bytes) -> SignedState:
        """The fully signed state a ``register``/``checkpoint``/``conclude`` transaction carried.

        How a node learns a state it never stored (it lost data, or the peer completed one of our
        proposals): the calldata holds the whole state and both signatures. The caller verifies
        them before trusting anything.
        """
        tx = await self.rpc.get_transaction("0x" + tx_hash.hex())
        if tx is None:
            raise IllegalCall(f"transaction 0x{tx_hash.hex()} is unknown to the node")
        data = _hex_bytes(tx.get("input") or tx.get("data"))
        for name in ("register", "checkpoint", "conclude"):
            fn = self.abi.function(name)
            if data[:4] == fn.selector:
                _params, raw, sig0, sig1 = fn.decode_input(data)
                return SignedState(
                    state_from_tuple(raw), (signature_from_tuple(sig0), signature_from_tuple(sig1))
                )
        raise IllegalCall(f"transaction 0x{tx_hash.hex()} does not carry a signed state")

    async def channel(self, channel_id: bytes, block: BlockId = "latest") -> ChannelView:
        (v,) = await self.call("getChannel", channel_id, block=block)
        return ChannelView(
            status=ChannelStatus(v[0]),
            version=v[1],
            deadline=v[2],
            min_version=v[3],
            deposits0=v[4],
            deposits1=v[5],
            withdrawn0=v[6],
            withdrawn1=v[7],
            state_hash=bytes(v[8]),
            positions_root=bytes(v[9]),
            locked_remaining=v[10],
        )

    async def credits(self, asset: bytes, account: bytes, block: BlockId = "latest") -> int:
        """What failed payouts left credited to ``account`` (pull it with ``withdraw``)."""
        return int((await self.call("credits", asset, account, block=block))[0])

    async def state_digest(self, state: State) -> bytes:
        return bytes((await self.call("stateDigest", state_tuple(state)))[0])

    async def withdrawal_digest(self, withdrawal: Withdrawal) -> bytes:
        return bytes((await self.call("withdrawalDigest", withdrawal_tuple(withdrawal)))[0])

    async def attestation_digest(self, attestation: Attestation) -> bytes:
        return bytes((await self.call("attestationDigest", attestation_tuple(attestation)))[0])

    async def channel_id_of(self, params: Params) -> bytes:
        return bytes((await self.call("channelIdOf", params_tuple(params)))[0])

    async def domain_separator(self) -> bytes:
        return bytes((await self.call("domainSeparator"))[0])

    async def head(self) -> int:
        return await self.rpc.block_number()

    async def block_timestamp(self, block: BlockId = "latest") -> int:
        b = await self.rpc.get_block(block)
        if b is None:
            raise IllegalCall(f"no block {block!r}")
        return b.timestamp

    # ---- events --------------------------------------------------------------------------------

    async def events(
        self,
        from_block: int,
        to_block: int,
        channel_ids: Collection[bytes] | None = None,
    ) -> list[ChainEvent]:
        """The adjudicator's events in ``[from_block, to_block]``, oldest first.

        With ``channel_ids``, only events of those channels (``CreditWithdrawn``, which has no
        channel, is then left out). Logs of other addresses and unknown events are ignored.
        """
        wanted = None if channel_ids is None else {bytes(c) for c in channel_ids}
        if wanted is not None and not wanted:
            return []
        topics: list[bytes | list[bytes] | None] | None = None
        if wanted is not None and len(wanted) <= 100:
            topics = [None, sorted(wanted)]  # every event but CreditWithdrawn has it as topic 1
        out: list[ChainEvent] = []
        start = from_block
        while start <= to_block:
            end = min(to_block, start + self.log_chunk - 1)
            logs = await self.rpc.get_logs(
                address=self._checksum, topics=topics, from_block=start, to_block=end
            )
            for log in logs:
                ev = self._decode_log(log.address, log.topics, log.data)
                if ev is None or log.block_number is None or log.log_index is None:
                    continue
                name, args = ev
                cid = args.get("channelId")
                channel_id = bytes(cid) if isinstance(cid, bytes) else None
                if wanted is not None and channel_id not in wanted:
                    continue
                out.append(
                    ChainEvent(
                        name=name,
                        channel_id=channel_id,
                        args=args,
                        block_number=log.block_number,
                        block_hash=_hex_bytes(log.block_hash),
                        tx_hash=_hex_bytes(log.transaction_hash),
                        log_index=log.log_index,
                        removed=log.removed,
                    )
                )
            start = end + 1
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out

    def decode_receipt_events(self, receipt: Receipt) -> list[ChainEvent]:
        """The adjudicator's events in one receipt."""
        out = []
        for log in receipt.logs:
            ev = self._decode_log(log.address, log.topics, log.data)
            if ev is None:
                continue
            name, args = ev
            cid = args.get("channelId")
            out.append(
                ChainEvent(
                    name=name,
                    channel_id=bytes(cid) if isinstance(cid, bytes) else None,
                    args=args,
                    block_number=receipt.block_number,
                    block_hash=_hex_bytes(receipt.block_hash),
                    tx_hash=_hex_bytes(receipt.transaction_hash),
                    log_index=log.log_index if log.log_index is not None else -1,
                    removed=log.removed,
                )
            )
        return out

    def _decode_log(
        self, address: str, topics: Sequence[bytes], data: bytes
    ) -> tuple[str, dict[str, Any]] | None:
        if address.lower() != self._checksum.lower() or not topics:
            return None
        event = self.abi.events_by_topic.get(topics[0])
        if event is None:
            return None
        try:
            decoded = event.decode_log(topics, data)
        except ValueError:  # AbiError: a malformed log cannot be one of ours; skip it
            return None
        types = {str(p.get("name")): canonical_type(p) for p in event.inputs}
        args = {k: _raw_value(types.get(k, ""), v) for k, v in decoded.args.items()}
        if event.name in _BY_PARTICIPANT:
            # The contract names the participant by the event (a shorter log); readers get one
            # ``Deposited`` / ``PartialWithdrawal`` event with the participant as a field.
            name, participant = _BY_PARTICIPANT[event.name]
            return name, {**args, "participant": participant}
        return event.name, args


_BY_PARTICIPANT = {
    "Deposited0": ("Deposited", 0),
    "Deposited1": ("Deposited", 1),
    "PartialWithdrawal0": ("PartialWithdrawal", 0),
    "PartialWithdrawal1": ("PartialWithdrawal", 1),
}


@asynccontextmanager
async def connect_adjudicator(
    url: str | Sequence[str],
    address: bytes,
    transaction_key: bytes | TransactionSigner | None,
    *,
    timeout: float = 10.0,
    receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
) -> AsyncIterator[AdjudicatorClient]:
    """Open an RPC connection to ``url`` and a client of the adjudicator at ``address``;
    with ``transaction_key`` (a 32-byte private key, or a :class:`TransactionSigner`) it can
    also send transactions."""
    async with open_rpc(url, timeout=timeout) as rpc:
        sender = None
        if transaction_key is not None:
            key = (
                check_bytes(transaction_key, 32, "transaction key")
                if isinstance(transaction_key, bytes)
                else transaction_key
            )
            sender = TransactionSender(rpc, key)
        yield AdjudicatorClient(rpc, address, sender, receipt_timeout=receipt_timeout)


__all__ = [
    "ETH",
    "AdjudicatorClient",
    "ChainEvent",
    "ChannelStatus",
    "ChannelView",
    "ContractError",
    "attestation_tuple",
    "both_signatures",
    "connect_adjudicator",
    "params_tuple",
    "position_tuple",
    "settlement_proof",
    "signature_tuple",
    "state_tuple",
    "withdrawal_terms_tuple",
    "withdrawal_tuple",
]
