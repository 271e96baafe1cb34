"""TransactionSender against anvil: transfers, deployment, reverts, nonces, stuck txs."""

import pytest
import trio
from chain_helpers import INIT_CODE, NOPE_SELECTOR, STORE_ABI, STORED_TOPIC
from eth_account import Account

from adjudicator.abi import ContractAbi
from adjudicator.devchain import DevChain
from adjudicator.rpc import RpcClient
from adjudicator.rpc_errors import ExecutionReverted, FeeTooLow, NonceTooLow, ReplacementUnderpriced
from adjudicator.transactions import (
    FeeSettings,
    NonceConsumed,
    ReceiptTimeout,
    TransactionReverted,
    TransactionSender,
    bump,
    wait_receipt,
)

ABI = ContractAbi(STORE_ABI)
GWEI = 10**9
T = 20.0  # receipt timeout (s)


def sender(rpc: RpcClient, anvil: DevChain, i: int = 0, **kw: object) -> TransactionSender:
    return TransactionSender(rpc, anvil.private_keys[i], errors=ABI, **kw)  # type: ignore[arg-type]


async def deploy(s: TransactionSender, initial: int = 0) -> str:
    return await s.deploy(INIT_CODE, ABI.encode_constructor(initial), timeout=T)


async def test_send_eth(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    s = sender(rpc, anvil, 1)
    to = anvil.accounts[2].lower()  # non-checksummed input is accepted and checksummed
    before = await rpc.get_balance(to)
    sent = await s.send(to, value=12345)
    assert sent.nonce == 0 and sent.fields["to"] == anvil.accounts[2]
    receipt = await s.wait_receipt(sent, timeout=T)
    assert receipt.succeeded and receipt.transaction_hash == sent.hash
    assert receipt.gas_used == 21000
    assert await rpc.get_balance(to) == before + 12345
    assert s.next_nonce == 1


async def test_deploy_call_and_logs(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    s = sender(rpc, anvil)
    address = await deploy(s, initial=99)
    assert await rpc.get_code(address) != b""
    assert int.from_bytes(await rpc.get_storage_at(address, 1), "big") == 99
    receipt = await s.transact(address, ABI.encode_call("set", 7), timeout=T)
    assert int.from_bytes(await rpc.get_storage_at(address, 0), "big") == 7
    (log,) = receipt.logs
    assert log.address == address and log.topics[0] == STORED_TOPIC
    ev = ABI.decode_log(log.topics, log.data)
    assert ev is not None and ev.name == "Stored"
    assert ev.args == {"by": s.address.lower(), "value": 7}
    logs = await rpc.get_logs(
        address=address, topics=ABI.event("Stored").topics_filter(s.address),
        from_block=0, to_block="latest",
    )
    assert [x.transaction_hash for x in logs] == [receipt.transaction_hash]
    assert not logs[0].removed
    assert await rpc.get_logs(address=address, block_hash=receipt.block_hash) == logs


async def test_revert_decoded_at_estimate_and_after_mining(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    s = sender(rpc, anvil)
    address = await deploy(s)
    with pytest.raises(ExecutionReverted) as est:
        await s.send(address, b"")  # estimation reverts: nothing is sent, no nonce used
    assert est.value.revert_data == NOPE_SELECTOR + (42).to_bytes(32, "big")
    assert est.value.decoded is not None and est.value.decoded.name == "Nope"
    nonce = await rpc.get_transaction_count(s.address)
    # With an explicit gas limit the tx is mined and fails; the revert data is recovered.
    sent = await s.send(address, b"", gas=100_000)
    assert sent.nonce == nonce
    with pytest.raises(TransactionReverted) as info:
        await s.wait_receipt(sent, timeout=T)
    exc = info.value
    assert exc.receipt.status == 0 and exc.tx_hash == sent.hash
    assert exc.revert_data == NOPE_SELECTOR + (42).to_bytes(32, "big")
    assert exc.decoded is not None and (exc.decoded.name, exc.decoded.args) == ("Nope", (42,))
    # The module-level helper does the same for a hash it did not send.
    with pytest.raises(TransactionReverted):
        await wait_receipt(rpc, sent.hash, timeout=T, errors=ABI)
    receipt = await wait_receipt(rpc, sent.hash, timeout=T, check_status=False)
    assert receipt.status == 0


async def test_fifty_concurrent_sends(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    s = sender(rpc, anvil, 3)
    start = await rpc.get_transaction_count(s.address)
    receipts: list[int] = []

    async def one(i: int) -> None:
        sent = await s.send(anvil.accounts[4], value=i + 1)
        receipt = await s.wait_receipt(sent, timeout=T)
        assert receipt.succeeded
        receipts.append(sent.nonce)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one, i)
    assert sorted(receipts) == list(range(start, start + 50))
    assert await rpc.get_transaction_count(s.address, "latest") == start + 50


async def test_nonce_resync_after_nonce_too_low(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    a = sender(rpc, anvil, 5)
    b = sender(rpc, anvil, 5)  # same key, e.g. a second process
    await b.sync_nonce()
    await a.transact(anvil.accounts[6], value=1, timeout=T)
    sent = await b.send(anvil.accounts[6], value=2)  # b's cached nonce is stale
    assert sent.nonce == 1
    assert (await b.wait_receipt(sent, timeout=T)).succeeded
    # Without retries the typed error surfaces.
    await b.sync_nonce()
    await a.sync_nonce()
    await a.transact(anvil.accounts[6], value=1, timeout=T)
    with pytest.raises(NonceTooLow):
        await b.send(anvil.accounts[6], value=3, nonce_retries=0)


async def test_receipt_timeout(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    s = sender(rpc, anvil, 6)
    await rpc.dev.set_automine(False)
    try:
        sent = await s.send(anvil.accounts[1], value=1)
        assert await rpc.get_transaction_receipt(sent.hash) is None
        with pytest.raises(ReceiptTimeout):
            await s.wait_receipt(sent, timeout=0.3)
        await rpc.dev.mine(1)
        assert (await s.wait_receipt(sent, timeout=T)).succeeded
    finally:
        await rpc.dev.set_automine(True)


async def test_drop_and_rebroadcast(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    s = sender(rpc, anvil, 7)
    await rpc.dev.set_automine(False)
    try:
        sent = await s.send(anvil.accounts[1], value=5)
        assert await rpc.get_transaction(sent.hash) is not None
        await rpc.dev.drop_transaction(sent.hash)
        assert await rpc.get_transaction(sent.hash) is None
        await rpc.dev.mine(1)
        assert await rpc.get_transaction_receipt(sent.hash) is None
        assert await s.rebroadcast(sent.hash) == sent.hash
        assert await s.rebroadcast(sent) == sent.hash  # "already known" is fine
        await rpc.dev.mine(1)
        receipt = await s.wait_receipt(sent, timeout=T)
        assert receipt.succeeded
        with pytest.raises(NonceTooLow):  # mined: a rebroadcast now is refused
            await s.rebroadcast(sent)
    finally:
        await rpc.dev.set_automine(True)


async def test_fee_bump_after_base_fee_spike(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    s = sender(rpc, anvil, 8, fees=FeeSettings(priority_fee=GWEI))
    await rpc.dev.set_automine(False)
    try:
        sent = await s.send(anvil.accounts[1], value=11)
        old_fee = sent.fields["maxFeePerGas"]
        assert old_fee < 50 * GWEI
        # A replacement that does not raise the fees is refused (anvil wants strictly higher
        # caps; geth wants +10%, which is why replace() bumps by 12.5%).
        cheap = dict(sent.fields, value=12)
        raw = bytes(Account.sign_transaction(cheap, anvil.private_keys[8]).raw_transaction)
        with pytest.raises(ReplacementUnderpriced):
            await rpc.send_raw_transaction(raw)
        # Base fee spikes above the tx's cap: it stays in the pool, block after block.
        await rpc.dev.set_next_block_base_fee_per_gas(200 * GWEI)
        await rpc.dev.mine(2)
        assert await rpc.get_transaction_receipt(sent.hash) is None
        # anvil refuses new txs whose cap is below the base fee (it is not "replaceable" later).
        with pytest.raises(FeeTooLow):
            await s.replace(sent, max_fee_per_gas=old_fee * 2, max_priority_fee_per_gas=2 * GWEI)
        new = await s.replace(sent)
        assert new.nonce == sent.nonce and new.replaces == sent.hash
        assert new.fields["maxFeePerGas"] > 100 * GWEI  # followed the spike
        assert new.fields["maxPriorityFeePerGas"] >= bump(GWEI, 125)
        assert new.versions == [sent.hash, new.hash]
        await rpc.dev.mine(1)
        receipt = await s.wait_receipt(sent, timeout=T)  # waiting on the original finds it
        assert receipt.transaction_hash == new.hash and receipt.succeeded
        assert await rpc.get_transaction_receipt(sent.hash) is None
    finally:
        await rpc.dev.set_automine(True)


async def test_replace_twice_bumps_each_time(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    s = sender(rpc, anvil, 9, fees=FeeSettings(priority_fee=GWEI))
    await rpc.dev.set_automine(False)
    try:
        sent = await s.send(anvil.accounts[1], value=1)
        r1 = await s.replace(sent, max_fee_per_gas=1, max_priority_fee_per_gas=1)
        r2 = await s.replace(sent, max_fee_per_gas=1, max_priority_fee_per_gas=1)
        f0, f1, f2 = (x.fields["maxFeePerGas"] for x in (sent, r1, r2))
        assert f1 * 1000 >= f0 * 1125 and f2 * 1000 >= f1 * 1125
        await rpc.dev.mine(1)
        assert (await s.wait_receipt(r1, timeout=T)).transaction_hash == r2.hash
    finally:
        await rpc.dev.set_automine(True)


async def test_reorg_then_rebroadcast(rpc: RpcClient, anvil: DevChain, anvil_snapshot: str) -> None:
    s = sender(rpc, anvil, 2)
    sent = await s.send(anvil.accounts[3], value=77)
    first = await s.wait_receipt(sent, timeout=T)
    await rpc.dev.reorg(1)  # the block holding the tx is replaced by an empty one
    after = await rpc.get_transaction_receipt(sent.hash)
    assert after is None or after.block_hash != first.block_hash
    if after is None:  # anvil does not put reorged-out txs back in the pool: send it again
        await s.rebroadcast(sent)
    again = await s.wait_receipt(sent, timeout=T)
    assert again.succeeded and again.block_hash != first.block_hash


async def test_nonce_taken_by_unknown_tx(
    rpc: RpcClient, anvil: DevChain, anvil_snapshot: str
) -> None:
    a = sender(rpc, anvil, 4, poll_interval=0.01)
    b = sender(rpc, anvil, 4)  # same key, unknown to `a`
    await rpc.dev.set_automine(False)
    try:
        sent = await a.send(anvil.accounts[1], value=1)
        await b.sync_nonce()
        other = await b.send(
            anvil.accounts[2], value=2, nonce_retries=0,
            max_fee_per_gas=sent.fields["maxFeePerGas"] * 2,
            max_priority_fee_per_gas=sent.fields["maxPriorityFeePerGas"] * 2,
        )
        assert other.nonce == sent.nonce + 1  # pending count already includes `sent`
        # Replace `sent` behind a's back with a tx a does not know.
        fields = dict(sent.fields, value=3, maxFeePerGas=sent.fields["maxFeePerGas"] * 2,
                      maxPriorityFeePerGas=sent.fields["maxPriorityFeePerGas"] * 2)
        raw = bytes(Account.sign_transaction(fields, anvil.private_keys[4]).raw_transaction)
        await rpc.send_raw_transaction(raw)
        await rpc.dev.mine(1)
        with pytest.raises(NonceConsumed) as info:
            await a.wait_receipt(sent, timeout=T)
        assert info.value.nonce == sent.nonce
    finally:
        await rpc.dev.set_automine(True)


def test_bump_rounding() -> None:
    assert bump(8, 125) == 9
    assert bump(1, 125) == 2
    assert bump(0, 125) == 1
    assert bump(1000, 125) == 1125
    assert bump(1001, 125) == 1127
