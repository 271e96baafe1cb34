"""Issue 14's end-to-end: two desks whose channel keys and gas keys are each reachable only
through typed-data signing or a remote signer (a separate process over HTTP) open a channel over
TCP on anvil, trade, withdraw, close cooperatively, and then win a dispute against a cheat.

* Alice: channel key in a remote signer process; gas key (anvil dev account 1) in a keystore.
* Bob: channel key in a keystore; gas key (anvil dev account 2) in a remote signer process.

Neither channel signer offers ``sign_digest``: every state, withdrawal and login is signed from
its ``eth_signTypedData_v4`` JSON. Every transaction is signed by the gas signers (remote ones
through ``eth_signTransaction``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from adjudicator import devchain
from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.deploy import Deployment, deploy_dev_setup
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from adjudicator.tx_signing import TransactionSigner
from channels import open_node
from channels.core.hashing import keccak256
from channels.core.model import Address
from channels.core.protocol import Phase
from channels.core.signing import LocalSigner, Signer
from channels.runtime.channel import Channel
from channels.runtime.node import Node, NodeSettings
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


def _calls(signer: RemoteSigner) -> dict[str, int]:
    """How often the test signer process served each method (its own test_calls method)."""
    return signer._call("test_calls", [])  # type: ignore[return-value]


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
                await _win_a_dispute(
                    chain, oracle, alice_channel, alice_gas, bob_channel, bob_gas, tmp_path
                )
            # The remote signers really did the signing.
            assert _calls(alice_channel).get("eth_signTypedData_v4", 0) > 5
            assert _calls(bob_gas).get("eth_signTransaction", 0) >= 3
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
    """Open over TCP, trade both ways, withdraw while open, close cooperatively."""
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
        await ch.withdraw(100_000)  # a Withdrawal, signed as typed data by both
        final = ch.state
        await ch.close()
        await ch.wait_phase(Phase.CLOSED)
        await bch.wait_phase(Phase.CLOSED)
    # Deposits came from the gas accounts; the payouts go to the channel addresses.
    after = (await _token_balance(chain, alice_addr), await _token_balance(chain, bob_addr))
    assert final.balances == (DEPOSIT - 30_000 + 5_000 - 100_000, DEPOSIT + 30_000 - 5_000)
    assert after[0] - before[0] == final.balances[0] + 100_000
    assert after[1] - before[1] == final.balances[1]


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
