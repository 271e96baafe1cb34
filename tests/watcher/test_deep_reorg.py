"""A reorg below the watcher's cursor: the replaced blocks carry a stale registration by Bob.

The watcher scans events only above its cursor (head minus the confirmation depth). Before the
cursor kept block hashes, blocks replaced below it were never looked at again: Bob's stale
registration, mined into them, went unseen and unrefuted."""

from __future__ import annotations

from pathlib import Path

import trio
from eth_account import Account

from adjudicator.client import (
    adjudicator_abi,
    both_signatures,
    connect_adjudicator,
    params_tuple,
    state_tuple,
)
from adjudicator.rpc import open_rpc
from channels.core.model import to_checksum
from channels.core.node_events import Alarm

from .conftest import Desks, desk


async def test_stale_registration_mined_below_the_cursor_is_refuted(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(120):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                assert bob.listen_port is not None
                ch = await alice.open_channel(
                    peer=("127.0.0.1", bob.listen_port),
                    peer_address=desks.bob.address,
                    asset=desks.token,
                    deposit=1_000_000,
                    peer_deposit=1_000_000,
                    oracle=desks.oracle.address,
                    challenge_period=3600,
                )
                bch = bob.channel(ch.id)
                for _ in range(3):
                    done = await bch.pay(10_000)
                await ch.wait_version(done.version)
                history = await bob.store.history(ch.id)
            old = history[1].signed
            latest = ch.state
            sig0, sig1 = both_signatures(old)
            async with open_rpc(desks.url) as rpc, alice.events() as events:
                await rpc.dev.mine(12)  # empty blocks; Alice's cursor follows the head
                head = await rpc.block_number()
                while alice.watcher.cursor < head - 1:
                    await trio.sleep(0.05)
                data = adjudicator_abi().encode_call(
                    "register", params_tuple(ch.params), state_tuple(old.state), sig0, sig1
                )
                bob_addr = to_checksum(desks.bob.address)
                raw = Account.sign_transaction(
                    {
                        "type": 2,
                        "chainId": await rpc.chain_id(),
                        "nonce": await rpc.get_transaction_count(bob_addr, head - 6),
                        "to": to_checksum(desks.adjudicator),
                        "data": data,
                        "value": 0,
                        "gas": 1_000_000,
                        "maxFeePerGas": 100 * 10**9,
                        "maxPriorityFeePerGas": 10**9,
                    },
                    desks.bob.secret,
                ).raw_transaction
                # Replace the last 6 blocks; Bob's registration lands in the first new one,
                # five blocks below Alice's cursor.
                await rpc.dev.reorg(6, [(bytes(raw), 0)])
                assert await rpc.block_number() == head
                async with connect_adjudicator(desks.url, desks.adjudicator, None) as view:
                    while (await view.channel(ch.id)).version != latest.version:
                        await trio.sleep(0.05)
                alarms = []
                while not alarms:
                    event = await events.receive()
                    if isinstance(event, Alarm) and event.kind == "DeepReorg":
                        alarms.append(event)
                assert alice.watcher.cursor_guard.reorgs >= 1
