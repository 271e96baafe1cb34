"""The per-channel record (docs/PROTOCOL.md 8.1, issue 16): a normal lifecycle writes only the
slots it needs, read back with ``eth_getStorageAt``; and a dispute record that a cooperative close
leaves behind is dead (every entry point refuses a concluded channel, the view shows the close).

Record of channel ``id``: four consecutive slots from ``keccak256(id ‖ base)``, where ``base`` is
the mapping's slot (found, not assumed: the first slot that a deposit makes non-zero).
"""

from __future__ import annotations

import pytest

from adjudicator import errors
from adjudicator.client import ChannelStatus
from channels.core.hashing import keccak256

from .kit import Channel, Kit

CONCLUDED, WITHDRAWALS = 1, 2


async def _slots(kit: Kit, ch: Channel, base: int) -> list[int]:
    first = int.from_bytes(keccak256(ch.id + base.to_bytes(32, "big")), "big")
    adj = "0x" + kit.env.adjudicator.hex()
    return [int.from_bytes(await kit.rpc.get_storage_at(adj, first + i), "big") for i in range(4)]


async def _record_base(kit: Kit, ch: Channel) -> int:
    for base in range(8):
        if any(await _slots(kit, ch, base)):
            return base
    raise AssertionError("no record found after a deposit")


def _holdings(word: int) -> tuple[int, int, int]:
    mask = (1 << 96) - 1
    return word & mask, (word >> 96) & mask, word >> 192


async def test_lifecycle_writes_only_the_slots_it_needs(kit: Kit) -> None:
    ch = kit.channel()
    await kit.a.deposit(ch.params, 0, 70)
    base = await _record_base(kit, ch)
    s = await _slots(kit, ch, base)
    assert _holdings(s[0]) == (70, 0, 0) and s[1:] == [0, 0, 0]
    await kit.b.deposit(ch.params, 1, 30)
    s = await _slots(kit, ch, base)
    assert _holdings(s[0]) == (70, 30, 0) and s[1:] == [0, 0, 0]

    # a partial withdrawal: the withdrawals slot and the flag, nothing in the dispute slots
    w, sigs = ch.withdrawal(2, 0, 20, kit.carol.address)
    await kit.c.withdraw_partial(ch.params, w, sigs)
    s = await _slots(kit, ch, base)
    assert _holdings(s[0]) == (70, 30, WITHDRAWALS) and s[1:3] == [0, 0]
    assert s[3] == 20 | (2 << 192)

    # a cooperative close: slot 0 becomes (locked 0, version, CONCLUDED); the withdrawals slot
    # is cleared; the dispute slots were never written
    final = ch.signed(3, balances=(50, 30), deposited=(70, 30), withdrawn=(20, 0), final=True)
    await kit.c.conclude(ch.params, final)
    s = await _slots(kit, ch, base)
    assert _holdings(s[0]) == (0, 3, CONCLUDED) and s[1:] == [0, 0, 0]
    view = await kit.a.channel(ch.id)
    assert (view.status, view.version, view.min_version, view.withdrawn) == (
        ChannelStatus.CONCLUDED, 3, 0, (0, 0))


async def test_cooperative_close_of_a_disputed_channel_leaves_a_dead_dispute(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    registered = ch.signed(1, balances=(100, 100), deposited=(100, 100))
    await kit.b.register(ch.params, registered)
    final = ch.signed(2, balances=(150, 50), deposited=(100, 100), final=True)
    await kit.c.conclude(ch.params, final)
    base = await _record_base(kit, ch)
    s = await _slots(kit, ch, base)
    assert s[1] != 0 and s[2] != 0  # left as is: the CONCLUDED flag overrides them
    view = await kit.a.channel(ch.id)
    assert (view.status, view.version, view.deadline) == (ChannelStatus.CONCLUDED, 2, 0)
    assert view.state_hash == bytes(32) and view.positions_root == bytes(32)
    assert view.deposits == (0, 0) and view.locked_remaining == 0
    with pytest.raises(errors.ChannelConcluded):
        await kit.a.register(ch.params, ch.signed(3, balances=(100, 100), deposited=(100, 100)))
    with pytest.raises(errors.ChannelConcluded):
        await kit.a.checkpoint(ch.params, ch.signed(3, balances=(100, 100), deposited=(100, 100)))
    with pytest.raises(errors.ChannelConcluded):
        await kit.a.deposit(ch.params, 0, 1)
    await kit.warp(ch.params.challenge_period + 1)
    with pytest.raises(errors.ChannelConcluded):
        await kit.c.conclude_after_timeout(ch.params, registered.state)
