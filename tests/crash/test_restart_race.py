"""A trade made right after a restart, before the reestablish: found by the crash harness.

Regression test. Before the change that starts restored machines (and disconnected ones) as
``reestablishing`` and makes a channel's submit wait for the reestablish, a proposal made in the gap
between the link coming up and the peer's Reestablish being handled reached the peer, which
countersigned it; the leader then abandoned it as ``NotCountersigned`` (it was not: the peer could
register it) and every later proposal was refused with ``VersionGap`` until the next reconnect.

Two nodes in this process. Alice (leader) stops cleanly at v4 and starts again; she trades at once,
as a bot does on start-up. Whatever the outcome of that first trade, it must be the truth (if it
reports "never countersigned", Bob must not hold it fully signed), and the channel must not get
stuck: the next trade works and both sides agree.
"""

from __future__ import annotations

from pathlib import Path

import trio

from channels.runtime.node import UpdateRefusedError

from .harness import Chain, free_port
from .test_data_loss import desk, fresh_desk, open_pair, trade_to

ATTEMPTS = 10


async def test_first_trade_after_a_restart_is_truthful_and_not_stuck(
    chain: Chain, tmp_path: Path
) -> None:
    a_key, b_key = await fresh_desk(chain), await fresh_desk(chain)
    port = free_port()
    with trio.fail_after(60):
        async with desk(chain, b_key, tmp_path / "bob.sqlite", port=port) as bob:
            async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
                ch, bch = await open_pair(alice, bob, b_key.address, chain)
                await trade_to(ch, bch, 4)
            # The window is a few scheduler steps wide: try a few restarts.
            for _attempt in range(ATTEMPTS):
                async with desk(chain, a_key, tmp_path / "alice.sqlite") as alice:
                    ch = alice.channel(bch.id)
                    before = bch.version
                    try:
                        first = await ch.pay(100)
                    except UpdateRefusedError as exc:
                        await trio.sleep(0.3)  # let every message in flight land
                        assert bch.version == before, (
                            f"Alice was told {exc.rule}, but Bob holds v{bch.version} fully signed"
                        )
                    else:
                        await bch.wait_version(first.version)
                    # Not stuck: the next trades go through and both agree.
                    done = await ch.pay(1)
                    await bch.wait_version(done.version)
                    done = await bch.pay(2)
                    await ch.wait_version(done.version)
                    assert ch.state == bch.state
