"""The set-up the firm-quote tests share: two desks that declare each other and decide no trade by
hook (fills of live quotes are the only value-moving trades they countersign), a flat pricer, and
a channel between them (Alice leads, Bob listens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

from adjudicator.rpc import open_rpc
from channels import open_node
from channels.core.model import OptionKind
from channels.core.quote_book import QuoteLimits
from channels.core.signing import LocalSigner
from channels.runtime.channel import Channel
from channels.runtime.node import Node
from channels.runtime.quoting import Decline, IncomingRequest, Pricer, QuoteTerms
from tests.partners import partners

from ._helpers import FAST, open_channel
from .conftest import Desks

STRIKE = 2_000 * 10**8
PRICE = 40_000  # asset units per whole option
COLLATERAL = 500_000


def flat_pricer(request: IncomingRequest) -> QuoteTerms | Decline:
    if request.request.kind is OptionKind.PUT:
        return Decline("we do not quote puts")
    return QuoteTerms(price=PRICE, collateral=COLLATERAL, valid_for=600)


@asynccontextmanager
async def quoting_desk(
    desks: Desks,
    signer: LocalSigner,
    path: Path,
    *,
    listen: bool,
    pricer: Pricer | None = None,
    limits: QuoteLimits | None = None,
) -> AsyncIterator[Node]:
    async with open_node(
        signer=signer,
        store=path,
        chain=desks.url,
        adjudicator=desks.adjudicator,
        listen=("127.0.0.1", 0) if listen else None,
        settings=FAST,
        pricer=pricer,
        quote_limits=limits,
        # The desks declare each other but decide no trade by hook: fills of live quotes are
        # the only value-moving trades they countersign.
        trust=partners(
            *(d.address for d in (desks.alice, desks.bob) if d.address != signer.address),
            assets=[desks.token],
            oracles=[desks.oracle.address],
            decide=False,
        ),
    ) as node:
        yield node


class QuotingPair(NamedTuple):
    alice: Node
    bob: Node
    #: Alice's and Bob's handles of the channel Alice opened to Bob (Alice leads).
    ch: Channel
    bch: Channel


@asynccontextmanager
async def quoting_pair(
    desks: Desks,
    tmp_path: Path,
    *,
    alice_pricer: Pricer | None = None,
    bob_pricer: Pricer | None = None,
    bob_limits: QuoteLimits | None = None,
) -> AsyncIterator[QuotingPair]:
    """Bob (listening) and Alice, each a :func:`quoting_desk`, and an open channel between them."""
    async with quoting_desk(
        desks, desks.bob, tmp_path / "b.sqlite", listen=True, pricer=bob_pricer, limits=bob_limits
    ) as bob:
        async with quoting_desk(
            desks, desks.alice, tmp_path / "a.sqlite", listen=False, pricer=alice_pricer
        ) as alice:
            ch, bch = await open_channel(alice, bob, desks)
            yield QuotingPair(alice, bob, ch, bch)


async def advance_chain(desks: Desks, seconds: int, *nodes: Node) -> None:
    async with open_rpc(desks.url) as rpc:
        await rpc.dev.increase_time(seconds)
        await rpc.dev.evm_mine()
    for node in nodes:
        await node.refresh_chain_time()
