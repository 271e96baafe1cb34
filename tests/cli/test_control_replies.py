"""Every control reply shows a channel's balances one way: in the answering node's view, ours
first, labelled ``our_balance`` then ``their_balance``, never a list by participant index. Checked
on both sides of a real channel (the leader, index 0, and the follower, index 1, whose view a
participant-order list would turn round) for pay, unwind, top_up, write_option, buy_option, fill
and status, over the control socket of two nodes on anvil."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from channels import open_node
from channels.control import connect_control, serve_control
from channels.core.model import QUANTITY_SCALE, to_checksum
from channels.core.signing import LocalSigner
from channels.runtime.node import Node, NodeSettings
from channels.runtime.quoting import IncomingRequest, QuoteTerms
from tests.partners import partners

from .test_end_to_end import Chain, chain

__all__ = ["chain"]  # the fixture

FAST = NodeSettings(chain_poll_interval=0.05, update_timeout=10.0, open_timeout=30.0)
DEPOSIT = 10_000_000
PREMIUM = 25_000  # per whole option, as the pricers quote it
COLLATERAL = 400_000

#: A new state, as the trades answer with it (pay, unwind, top_up, settle, withdraw).
STATE = ["version", "our_balance", "their_balance", "locked", "position_count", "is_final"]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are short: not under pytest's long tmp_path.
    with tempfile.TemporaryDirectory(prefix="ocr-", dir="/tmp") as d:
        yield Path(d)


def flat_pricer(request: IncomingRequest) -> QuoteTerms:
    return QuoteTerms(price=PREMIUM, collateral=COLLATERAL, valid_for=600)


@asynccontextmanager
async def desk(
    chain: Chain, key: int, peer: int, store: Path, *, listen: bool
) -> AsyncIterator[tuple[Node, Path]]:
    """A node with a flat pricer and its control socket."""
    assert chain.deployment.token is not None
    signer = LocalSigner.from_hex(chain.keys[key])
    oracle = LocalSigner.from_hex(chain.keys[9]).address
    async with (
        open_node(
            signer=signer,
            store=store,
            chain=chain.url,
            adjudicator=chain.deployment.adjudicator,
            listen=("127.0.0.1", 0) if listen else None,
            settings=FAST,
            pricer=flat_pricer,
            trust=partners(
                LocalSigner.from_hex(chain.keys[peer]).address,
                assets=[chain.deployment.token],
                oracles=[oracle],
            ),
        ) as node,
        trio.open_nursery() as nursery,
    ):
        sock = store.with_suffix(".sock")
        await nursery.start(serve_control, node, sock)
        yield node, sock
        nursery.cancel_scope.cancel()


def check_balances(reply: dict[str, Any], node: Node, channel_id: bytes) -> None:
    """Ours first and labelled, and they are the node's own view of the channel."""
    assert "balances" not in reply
    keys = list(reply)
    assert keys.index("our_balance") + 1 == keys.index("their_balance")
    channel = node.channel(channel_id)
    assert (reply["our_balance"], reply["their_balance"]) == (
        channel.our_balance,
        channel.their_balance,
    )


async def test_every_reply_shows_our_balance_first(chain: Chain, sock_dir: Path) -> None:
    option = {"kind": "call", "underlying": "ETH-USD", "strike": 3_000 * 10**8}
    with trio.fail_after(120):
        async with (
            desk(chain, 2, 1, sock_dir / "b.sqlite", listen=True) as (bob, b_sock),
            desk(chain, 1, 2, sock_dir / "a.sqlite", listen=False) as (alice, a_sock),
            connect_control(a_sock) as a_ctl,
            connect_control(b_sock) as b_ctl,
        ):
            assert chain.deployment.token is not None and bob.listen_port is not None
            opened = await a_ctl.call(
                "open",
                peer_host="127.0.0.1",
                peer_port=bob.listen_port,
                peer_address=to_checksum(bob.address),
                asset=to_checksum(chain.deployment.token),
                deposit=DEPOSIT,
                peer_deposit=DEPOSIT,
                oracle=to_checksum(LocalSigner.from_hex(chain.keys[9]).address),
                challenge_period=3600,
            )
            cid = bytes.fromhex(opened["id"][2:])
            check_balances(opened, alice, cid)
            await bob.channel(cid).wait_version(alice.channel(cid).version)
            sides = ((a_ctl, alice, 0), (b_ctl, bob, 1))
            for _, node, index in sides:
                assert node.channel(cid).our_index == index  # both views are covered

            # pay from each side: the payer's balance falls, and it is the first one shown
            for ctl, node, _ in sides:
                before = node.channel(cid).our_balance
                paid = await ctl.call("pay", channel=opened["id"], amount=1_000)
                assert list(paid) == STATE
                check_balances(paid, node, cid)
                assert paid["our_balance"] == before - 1_000

            # an option each way, then fills of each other's firm quotes
            written = await a_ctl.call(
                "write_option",
                channel=opened["id"],
                **option,
                expiry_in=7 * 86400,
                quantity=QUANTITY_SCALE,
                premium=PREMIUM,
                collateral=COLLATERAL,
            )
            # Checked before the next update: the reply is the state of this call, and Alice's
            # view moves on as soon as Bob's update below completes.
            check_balances(written, alice, cid)
            bought = await b_ctl.call(
                "buy_option",
                channel=opened["id"],
                **option,
                expiry_in=7 * 86400,
                quantity=QUANTITY_SCALE,
                premium=PREMIUM,
                collateral=COLLATERAL,
            )
            check_balances(bought, bob, cid)
            for reply in (written, bought):
                assert list(reply) == [*STATE, "position"]
            fills = []
            for ctl, node, _ in sides:
                quote = await ctl.call(
                    "request_quote",
                    channel=opened["id"],
                    **option,
                    expiry_in=7 * 86400,
                    side="buy",
                    quantity=QUANTITY_SCALE,
                )
                before = node.channel(cid).our_balance
                filled = await ctl.call("fill", channel=opened["id"], quote=quote["quote_id"])
                assert list(filled) == [*STATE, "position", "quote"]
                check_balances(filled, node, cid)
                assert filled["our_balance"] == before - PREMIUM  # we bought: ours fell
                fills.append(filled["position"]["id"])

            # each side unwinds the position it wrote by the fill of its quote (the peer holds it)
            for (ctl, node, _), position in zip(sides, reversed(fills), strict=True):
                unwound = await ctl.call(
                    "unwind", channel=opened["id"], position=position, holder_share=0
                )
                assert list(unwound) == STATE
                check_balances(unwound, node, cid)

            # the follower tops up: its own balance grows, and it is shown first
            before = bob.channel(cid).our_balance
            topped = await b_ctl.call("top_up", channel=opened["id"], amount=50_000)
            assert list(topped) == STATE
            check_balances(topped, bob, cid)
            assert topped["our_balance"] == before + 50_000

            # status: the same labelled fields, each node's own view of the one channel
            await alice.channel(cid).wait_version(bob.channel(cid).version)
            rows = [(await ctl.call("status"))[0] for ctl, _, _ in sides]
            for row, (_, node, _) in zip(rows, sides, strict=True):
                check_balances(row, node, cid)
            assert rows[0]["version"] == rows[1]["version"]
            assert (rows[0]["our_balance"], rows[0]["their_balance"]) == (
                rows[1]["their_balance"],
                rows[1]["our_balance"],
            )
