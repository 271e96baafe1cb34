"""A node restored from an old copy of its store never publishes its stale state by itself.

Alice held v4 when her store was copied; she and Bob then traded to v9. The copy is put back. A
cleanly shut-down copy looks exactly like a genuine store, so the node must not trust it until
the peer (or a tower, or the chain) has shown which state is the newest. Before the fix, the
clean copy's watcher escalated near an option's expiry with Bob offline and registered v4, and
``channels dispute`` registered v4 without asking whether the node was current.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from channels import cli
from channels.control import serve_control
from channels.core.protocol import Phase
from channels.runtime.currency import NotKnownCurrent
from channels.runtime.node import NodeSettings

from .harness import Chain
from .test_data_loss import (
    Recorder,
    _free_port,
    _until_trade,
    backup,
    desk,
    fresh_desk,
    head,
    open_pair,
    restore,
    scan,
    settled,
    setup_v4_backup_v9,
    trade_to,
)

EAGER = NodeSettings(
    chain_poll_interval=0.05,
    update_timeout=5.0,
    connect_timeout=1.0,
    reconnect_backoff=(0.05, 0.3),
    escalate_after=0.5,
)


async def test_clean_old_copy_near_expiry_with_bob_offline_registers_nothing(
    chain: Chain, tmp_path: Path
) -> None:
    a_key, b_key = await fresh_desk(chain), await fresh_desk(chain)
    first = await head(chain)
    port = await _free_port()
    with trio.fail_after(90):
        async with desk(chain, b_key, tmp_path / "bob.sqlite", port=port) as bob:
            async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
                ch, bch = await open_pair(alice, bob, b_key.address, chain)
                await trade_to(ch, bch, 3)
                await ch.write_option(
                    kind="call",
                    underlying="ETH-USD",
                    strike=3000_00000000,
                    expiry=alice.now() + 1800,
                    quantity=10**18,
                    premium=1_000,
                    collateral=10_000,
                )
                await bch.wait_version(4)
            backup(tmp_path / "alice.sqlite", tmp_path / "alice-v4.sqlite")
            async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
                await settled(alice)
                await _until_trade(alice.channel(bch.id), bch, 9)
        restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")  # a clean copy
        rec = Recorder()
        async with desk(chain, a_key, tmp_path / "alice.sqlite", settings=EAGER, recorder=rec) as a:
            assert a.store.previous_clean_shutdown is True
            assert a.channel(bch.id).version == 4
            await trio.sleep(3)  # Bob stays offline; the option is near expiry
            assert not rec.alarms("Escalated")
            assert rec.alarms("PossiblyBehind")
    await scan(chain, a_key.address, first)


async def test_dispute_on_an_old_copy_refuses_unless_forced(chain: Chain, tmp_path: Path) -> None:
    a_key, _b_key, _port, cid, first = await setup_v4_backup_v9(chain, tmp_path)
    restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")
    with trio.fail_after(60):
        async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
            assert alice.channel(cid).version == 4
            with pytest.raises(NotKnownCurrent, match="--force"):
                await alice.dispute(cid)
            assert alice.channel(cid).phase is Phase.OPEN
    await scan(chain, a_key.address, first)


async def test_channels_dispute_refuses_on_an_old_copy(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_key, _b_key, _port, cid, first = await setup_v4_backup_v9(chain, tmp_path)
    restore(tmp_path / "alice-v4.sqlite", tmp_path / "alice.sqlite")
    rec = Recorder()
    with tempfile.TemporaryDirectory(prefix="ocst-", dir="/tmp") as short:
        sock = str(Path(short) / "a.sock")
        with trio.fail_after(60):
            async with desk(chain, a_key, tmp_path / "alice.sqlite", recorder=rec) as alice:
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve_control, alice, sock)
                    argv = ["--socket", sock, "dispute", "0x" + cid.hex(), "--no-wait"]
                    capsys.readouterr()
                    code = await trio.to_thread.run_sync(cli.main, argv)
                    err = capsys.readouterr().err
                    assert code != 0
                    assert "NotKnownCurrent" in err and "--force" in err
                    await scan(chain, a_key.address, first)
                    # Forced, the operator takes the risk: v4 goes on chain, with an alarm.
                    code = await trio.to_thread.run_sync(cli.main, [*argv, "--force"])
                    assert code == 0, capsys.readouterr().err
                    assert rec.alarms("ForcedDispute")
                    async with connect_adjudicator(chain.url, chain.adjudicator, None) as view:
                        record = await view.channel(cid)
                    assert (record.status, record.version) == (ChannelStatus.DISPUTED, 4)
                    nursery.cancel_scope.cancel()
