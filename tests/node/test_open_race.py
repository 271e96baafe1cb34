"""Channel proposals are decided one at a time, up to the channel being added (consent).

The terms count what the peer already holds with us (channels per peer, deposits per channel and
in total). Deciding a proposal waits on the chain (the asset's decimals, our gas reserve) and on
the signer; were a second proposal decided during those waits, both would be counted against the
same usage and both accepted. The attack: Alice, allowed ONE channel, sends two proposals at the
same moment on two links (a peer may hold two), then one proposal on both links at once. Bob
accepts one channel and funds it once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trio

from channels.core.messages import Message, OpenAccept, Reject
from channels.core.model import Address
from channels.core.trust import Trust
from channels.core.wire import decode_message, encode_message
from channels.transport import Prologue, SecureChannel, connect
from tests.partners import partners

from ._helpers import desk
from .conftest import Desks
from .test_asset_decimals import ASK, TOKEN_DECIMALS, proposal, wallets


def one_channel_trust(desks: Desks) -> Trust:
    """Alice is declared with wide terms, except that she may hold one channel."""
    wide = partners(desks.alice.address, assets=[desks.token], oracles=[desks.oracle.address])
    (peer,) = wide.peers
    terms = dataclasses.replace(peer.terms, max_channels=1)
    return dataclasses.replace(wide, peers=(dataclasses.replace(peer, terms=terms),))


async def replies_for(link: SecureChannel, wanted: set[bytes]) -> dict[bytes, Message]:
    """Bob's answers on ``link`` to the channels in ``wanted``."""
    got: dict[bytes, Message] = {}
    with trio.fail_after(30):
        while set(got) != wanted:
            message = decode_message(await link.receive())
            cid = getattr(message, "channel_id", None)
            if cid in wanted and cid not in got:
                got[cid] = message
    return got


async def test_two_proposals_at_once_cannot_both_pass_the_terms(
    desks: Desks, tmp_path: Path
) -> None:
    with trio.fail_after(180):
        async with desk(
            desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=one_channel_trust(desks)
        ) as bob:
            port = bob.listen_port
            assert port is not None
            prologue = Prologue(bob.chain_id, Address(bob.chain.address))
            before = await wallets(desks)
            first, second = (proposal(bob, desks, desks.token, TOKEN_DECIMALS, n) for n in (1, 2))
            # The first proposal on one link; while Bob decides it (his first read of the
            # token's decimals, his gas balance, his signer), a new link replaces the old one
            # (the old link's decision goes on) and carries the second proposal.
            old = await connect("127.0.0.1", port, desks.alice, desks.bob.address, prologue)
            await old.send(encode_message(first))
            link = await connect("127.0.0.1", port, desks.alice, desks.bob.address, prologue)
            await link.send(encode_message(second))
            ids = {first.params.channel_id, second.params.channel_id}
            replies = await replies_for(link, ids)
            accepted = [cid for cid, r in replies.items() if isinstance(r, OpenAccept)]
            refused = [r for r in replies.values() if isinstance(r, Reject)]
            assert len(accepted) == 1 and len(refused) == 1, replies
            assert refused[0].rule == "TooManyChannels"
            assert [c.id for c in bob.channels] == accepted

            # The accepted proposal again: still one channel, funded once.
            again = first if accepted[0] == first.params.channel_id else second
            await link.send(encode_message(again))
            while (await wallets(desks))[1] == before[1]:
                await trio.sleep(0.2)  # Bob funds the one channel he accepted
            await trio.sleep(2)  # room for a second deposit, were one coming
            assert before[1] - (await wallets(desks))[1] == ASK
            assert len(bob.channels) == 1
            await link.aclose()
            await old.aclose()
