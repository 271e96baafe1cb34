"""Issue 14's end-to-end: two desks whose channel keys and gas keys are each reachable only
through typed-data signing or a remote signer (a separate process over HTTP) open a channel over
TCP on anvil, trade (payments both ways; an option each way, each bought by filling the other
desk's firm quote; both unwound), withdraw, close cooperatively, and then win a dispute against a
cheat.

* Alice: channel key in a remote signer process; gas key (anvil dev account 1) in a keystore.
* Bob: channel key in a keystore; gas key (anvil dev account 2) in a remote signer process.

Neither channel signer offers ``sign_digest``: every state, withdrawal, quote and login is signed
from its ``eth_signTypedData_v4`` JSON. Every transaction is signed by the gas signers (remote
ones through ``eth_signTransaction``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from eth_account import Account
from eth_account.messages import encode_typed_data

from adjudicator import devchain
from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.deploy import Deployment, deploy_dev_setup
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from adjudicator.tx_signing import TransactionSigner
from channels import open_node
from channels.core.hashing import keccak256
from channels.core.model import QUANTITY_SCALE, Address
from channels.core.protocol import Phase
from channels.core.quotes import quote_typed_data
from channels.core.signing import LocalSigner, Signer
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings
from channels.runtime.quoting import IncomingRequest, QuoteTerms
from channels.signers.account import AccountSigner
from channels.signers.keystore import PasswordSource, load_keystore, write_keystore
from channels.signers.remote import RemoteSigner
from tests.partners import partners

from .server_process import signer_server

SETTINGS = NodeSettings(chain_poll_interval=0.05, update_timeout=20.0, open_timeout=60.0)
DEPOSIT = 1_000_000
PERIOD = 120
ALICE_CHANNEL = keccak256(b"e2e alice channel key")
BOB_CHANNEL = keccak256(b"e2e bob channel key")
ALICE = LocalSigner(ALICE_CHANNEL).address
BOB = LocalSigner(BOB_CHANNEL).address
STRIKE = 3_000 * 10**8
PRICE = 20_000  # premium per whole option, in the token's smallest units
COLLATERAL = 100_000  # per whole option


def flat_pricer(request: IncomingRequest) -> QuoteTerms:
    """Both desks quote every request at one price (the quote is then signed by their signer)."""
    return QuoteTerms(price=PRICE, collateral=COLLATERAL, valid_for=600)


@dataclass
class Chain:
    url: str
    deployment: Deployment
    dev_keys: tuple[str, ...]


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with devchain.anvil(devchain.AnvilConfig()) as dev:
        keys = tuple(dev.private_keys)
        gas_accounts = [LocalSigner.from_hex(keys[i]).address for i in (1, 2)]

        async def setup() -> Deployment:
            async with open_rpc(dev.url) as rpc:
                return await deploy_dev_setup(rpc, keys[0], fund=gas_accounts)

        yield Chain(dev.url, trio.run(setup), keys)


def _keystore(path: Path, secret: bytes) -> AccountSigner:
    write_keystore(path, secret, "pw", iterations=16)
    return load_keystore(path, PasswordSource(env="PW"), {"PW": "pw"})


def node(
    chain: Chain, signer: Signer, gas: TransactionSigner, store: Path, listen: bool
) -> AbstractAsyncContextManager[Node]:
    """A desk that deals with the other desk of this test only."""
    assert chain.deployment.token is not None
    peer = BOB if signer.address == ALICE else ALICE
    oracle = LocalSigner.from_hex(chain.dev_keys[9]).address
    return open_node(
        trust=partners(peer, assets=[chain.deployment.token], oracles=[oracle]),
        signer=signer,
        store=store,
        chain=chain.url,
        adjudicator=chain.deployment.adjudicator,
        listen=("127.0.0.1", 0) if listen else None,
        settings=SETTINGS,
        transaction_key=gas,
        pricer=flat_pricer,
    )


async def _open(alice: Node, bob: Node, chain: Chain, oracle: Address) -> Channel:
    assert bob.listen_port is not None
    assert chain.deployment.token is not None
    return await alice.open_channel(
        peer=("127.0.0.1", bob.listen_port),
        peer_address=bob.address,
        asset=chain.deployment.token,
        deposit=DEPOSIT,
        peer_deposit=DEPOSIT,
        oracle=oracle,
        challenge_period=PERIOD,
    )


async def _token_balance(chain: Chain, who: bytes) -> int:
    assert chain.deployment.token is not None
    async with open_rpc(chain.url) as rpc:
        return await balance_of(rpc, chain.deployment.token, who)


async def _calls(url: str) -> dict[str, int]:
    """How often the test signer process served each method, and signed each typed-data message
    type (``eth_signTypedData_v4:Quote``, ...): its own ``test_calls`` method."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "test_calls", "params": []}
    reply = await trio.to_thread.run_sync(lambda: httpx.post(url, json=request, timeout=10))
    calls: dict[str, int] = reply.json()["result"]
    return calls


async def test_desks_behind_typed_data_and_remote_signers_trade_close_and_win_a_dispute(
    chain: Chain, tmp_path: Path
) -> None:
    oracle = LocalSigner.from_hex(chain.dev_keys[9]).address
    bob_gas_secret = bytes.fromhex(chain.dev_keys[2][2:])
    with (
        signer_server(ALICE_CHANNEL, tmp_path) as alice_url,
        signer_server(bob_gas_secret, tmp_path) as bob_gas_url,
    ):
        alice_channel = await trio.to_thread.run_sync(RemoteSigner.connect, alice_url)
        bob_gas = await trio.to_thread.run_sync(RemoteSigner.connect, bob_gas_url)
        alice_gas = _keystore(tmp_path / "alice-gas.json", bytes.fromhex(chain.dev_keys[1][2:]))
        bob_channel = _keystore(tmp_path / "bob-channel.json", BOB_CHANNEL)
        for channel_signer in (alice_channel, bob_channel):
            assert not hasattr(channel_signer, "sign_digest")  # typed data only
        try:
            with trio.fail_after(240):
                await _trade_and_close(
                    chain, oracle, alice_channel, alice_gas, bob_channel, bob_gas, tmp_path
                )
                # Alice's quote was signed in her remote signer process, as typed data.
                assert (await _calls(alice_url)).get("eth_signTypedData_v4:Quote", 0) == 1
                await _win_a_dispute(
                    chain, oracle, alice_channel, alice_gas, bob_channel, bob_gas, tmp_path
                )
            # The remote signers really did the signing.
            assert (await _calls(alice_url)).get("eth_signTypedData_v4", 0) > 5
            assert (await _calls(bob_gas_url)).get("eth_signTransaction", 0) >= 3
        finally:
            alice_channel.close()
            bob_gas.close()


async def _trade_and_close(
    chain: Chain,
    oracle: Address,
    alice_channel: RemoteSigner,
    alice_gas: AccountSigner,
    bob_channel: AccountSigner,
    bob_gas: RemoteSigner,
    tmp_path: Path,
) -> None:
    """Open over TCP, pay both ways, buy an option from each other by filling each other's
    firm quote, unwind both, withdraw while open, close cooperatively."""
    alice_addr, bob_addr = alice_channel.address, bob_channel.address
    before = (await _token_balance(chain, alice_addr), await _token_balance(chain, bob_addr))
    async with (
        node(chain, alice_channel, alice_gas, tmp_path / "a1.sqlite", False) as alice,
        node(chain, bob_channel, bob_gas, tmp_path / "b1.sqlite", True) as bob,
    ):
        ch = await _open(alice, bob, chain, oracle)
        bch = bob.channel(ch.id)
        await ch.pay(30_000)
        await bch.pay(5_000)
        # Bob buys a call from Alice's firm quote (signed by her remote signer) and Alice one
        # from Bob's (signed by his keystore): each quote checked with eth-account on its own.
        expiry = alice.now() + 7 * 86400
        bob_holds = await _buy_from_quote(bch, expiry, ALICE)
        alice_holds = await _buy_from_quote(ch, expiry, BOB)
        await bch.wait_version(ch.version)
        assert ch.state.locked == 2 * COLLATERAL
        # Both unwound early: Bob takes 30,000 of the collateral of his, Alice nothing of hers.
        await bch.unwind(bob_holds, 30_000)
        await ch.unwind(alice_holds, 0)
        assert ch.positions == [] and ch.state.locked == 0
        await ch.withdraw(100_000)  # a Withdrawal, signed as typed data by both
        final = ch.state
        await ch.close()
        await ch.wait_phase(Phase.CLOSED)
        await bch.wait_phase(Phase.CLOSED)
    # Deposits came from the gas accounts; the payouts go to the channel addresses.
    after = (await _token_balance(chain, alice_addr), await _token_balance(chain, bob_addr))
    # Premiums cancel out (one each way); the unwinds moved 30,000 of Alice's collateral to Bob.
    moved = 30_000 - 5_000 + 30_000
    assert final.balances == (DEPOSIT - moved - 100_000, DEPOSIT + moved)
    assert after[0] - before[0] == final.balances[0] + 100_000
    assert after[1] - before[1] == final.balances[1]


async def _buy_from_quote(buyer: Channel, expiry: int, quoter: Address) -> int:
    """Ask the peer for a firm quote of one call, check its signature with eth-account, fill it
    all; the id of the position bought."""
    signed = await buyer.request_quote("ETH-USD", "call", STRIKE, expiry, QUANTITY_SCALE, "buy")
    assert signed.quote.quoter == quoter and signed.quote.price == PRICE
    signable = encode_typed_data(full_message=quote_typed_data(buyer.domain, signed.quote))  # type: ignore[arg-type]
    recovered = Account.recover_message(signable, signature=signed.signature)
    assert bytes.fromhex(recovered[2:]) == quoter
    before = buyer.our_balance
    position = await buyer.fill_quote(signed)
    assert position.writer != buyer.our_index and position.quantity == QUANTITY_SCALE
    assert buyer.our_balance == before - PRICE
    return position.id


async def _win_a_dispute(
    chain: Chain,
    oracle: Address,
    alice_channel: RemoteSigner,
    alice_gas: AccountSigner,
    bob_channel: AccountSigner,
    bob_gas: RemoteSigner,
    tmp_path: Path,
) -> None:
    """Bob leaves and registers an old state in which he was richer, paying gas through his
    remote signer; Alice's watcher refutes it (gas from her keystore) and she is paid in full."""
    start = await _token_balance(chain, alice_channel.address)
    async with node(chain, alice_channel, alice_gas, tmp_path / "a2.sqlite", False) as alice:
        async with node(chain, bob_channel, bob_gas, tmp_path / "b2.sqlite", True) as bob:
            ch = await _open(alice, bob, chain, oracle)
            bch = bob.channel(ch.id)
            await bch.pay(50_000)
            latest = await bch.pay(20_000)
            await ch.wait_version(latest.version)
            history = await bob.store.history(ch.id)
        old = max(history[:-1], key=lambda u: u.signed.state.balances[1]).signed
        assert old.state.balances[1] > latest.balances[1]
        async with connect_adjudicator(chain.url, chain.deployment.adjudicator, bob_gas) as bad:
            await bad.register(ch.params, old)
            while (await bad.channel(ch.id)).version != latest.version:
                await trio.sleep(0.05)
            assert ch.phase is Phase.DISPUTED
            async with open_rpc(chain.url) as rpc:
                await rpc.dev.increase_time(PERIOD + 1)
                await rpc.dev.evm_mine()
            await ch.wait_phase(Phase.CLOSED)
            assert (await bad.channel(ch.id)).status is ChannelStatus.CONCLUDED
    assert await _token_balance(chain, alice_channel.address) - start == latest.balances[0]
