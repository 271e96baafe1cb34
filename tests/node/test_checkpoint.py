"""Clearing a dispute with ``checkpoint`` when the peer is back, then trading on.

Before: a stale registration while both nodes were up was refuted, so the channel stayed
disputed with the newest version and closed after the challenge period; the node never issued
``checkpoint`` and there was no command for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from adjudicator.client import ChannelStatus, connect_adjudicator
from channels import cli
from channels.control import serve_control
from channels.core.errors import IllegalCall
from channels.core.protocol import Phase

from .conftest import Desks
from .test_disputes import desk, open_channel


async def test_stale_registration_with_the_peer_back_is_cleared_by_checkpoint(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                ch = await open_channel(alice, bob, desks)
                bch = bob.channel(ch.id)
                for _ in range(3):
                    done = await bch.pay(10_000)
                await ch.wait_version(done.version)
                history = await bob.store.history(ch.id)
                old = history[1].signed
                latest = ch.state
                async with connect_adjudicator(
                    desks.url, desks.adjudicator, desks.bob.secret
                ) as bad:
                    await bad.register(ch.params, old)  # Bob's key, behind his node's back
                    await ch.wait_phase(Phase.DISPUTED)
                    while True:
                        record = await bad.channel(ch.id)
                        if record.status is ChannelStatus.OPEN:
                            break
                        await trio.sleep(0.05)
                    assert record.version == latest.version
                await ch.wait_phase(Phase.OPEN)
                await bch.wait_phase(Phase.OPEN)
                # Trading resumes on the same channel.
                after = await ch.pay(123)
                assert after.version == latest.version + 1
                await bch.wait_version(after.version)


async def test_checkpoint_command_pins_the_newest_state(
    desks: Desks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = str(Path("/tmp") / f"occp-{tmp_path.name[-12:]}.sock")
    with trio.fail_after(90):
        async with desk(desks, desks.alice, tmp_path / "a.sqlite", listen=False) as alice:
            async with desk(desks, desks.bob, tmp_path / "b.sqlite", listen=True) as bob:
                ch = await open_channel(alice, bob, desks)
                await ch.pay(7)
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve_control, alice, sock)
                    code = await trio.to_thread.run_sync(
                        cli.main, ["--socket", sock, "checkpoint", "0x" + ch.id.hex()]
                    )
                    assert code == 0, capsys.readouterr().err
                    async with connect_adjudicator(desks.url, desks.adjudicator, None) as view:
                        record = await view.channel(ch.id)
                    assert (record.status, record.version) == (ChannelStatus.OPEN, ch.version)
                    with pytest.raises(IllegalCall, match="already records"):
                        await alice.checkpoint(ch.id)
                    nursery.cancel_scope.cancel()
                await bob.channel(ch.id).wait_version(ch.version)
