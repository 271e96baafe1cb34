"""The desk node: the registry of its channels, wired to the transport, the store and the chain.

``async with open_node(...) as node:`` owns one trio nursery in which every background task of the
node lives (listener, peer links, the action executor, the chain follower). Nothing outlives the
``async with`` block. The jobs live in their own modules: each channel's runtime
(:mod:`~channels.runtime.channel_runtime`), coalescing (:mod:`~channels.runtime.coalescer`), the
persist-then-send executor (:mod:`~channels.runtime.executor`), peer links
(:mod:`~channels.runtime.links`), the event bus and the chain clock; the defence
(:mod:`channels.defence`) sees the node only through :class:`~channels.defence.host.DefenceHost`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import trio

from adjudicator.client import AdjudicatorClient, connect_adjudicator
from adjudicator.tx_signing import TransactionSigner
from channels.core.errors import ChannelError, IllegalCall, UnknownChannel, WrongDomain
from channels.core.messages import Message, OpenCounter, OpenProposal, Reject
from channels.core.model import Address, Attestation, ChannelId, Params, address
from channels.core.node_events import Alarm, Event
from channels.core.protocol import ChannelMachine, Config, Disconnected, Phase, Policy, Reconnected
from channels.core.quote_book import QuoteLimits
from channels.core.quotes import QUOTE_MESSAGES, QuoteMessage
from channels.core.reserve import GasReserveTooLow
from channels.core.signing import LocalSigner, Signer
from channels.core.terms import (
    AcceptTerms,
    ProposedChannel,
    RefuseTerms,
    TermsRefused,
    check_counter,
)
from channels.core.trust import Trust
from channels.defence.watcher import Watcher
from channels.runtime.attestations import AttestationBook
from channels.runtime.channel import Channel
from channels.runtime.channel_runtime import ChannelRuntime
from channels.runtime.clock import ChainClock
from channels.runtime.context import RuntimeContext
from channels.runtime.defence_host import NodeDefenceHost
from channels.runtime.errors import UpdateRefusedError
from channels.runtime.eventbus import EventBus
from channels.runtime.executor import Executor
from channels.runtime.gatekeeper import Gatekeeper, LinkRefused, period_floor
from channels.runtime.links import Links
from channels.runtime.onchain import checkpoint_latest, register_latest
from channels.runtime.opening import LiveOpens, wait_accepted
from channels.runtime.quote_host import NodeQuoteHost
from channels.runtime.quoting import Pricer, QuoteDesk
from channels.runtime.rebuild import RebuildReport, rebuild_from_towers
from channels.runtime.settings import NodeSettings
from channels.runtime.towerclient import TowerClient, TowerEndpoint
from channels.runtime.views import ChannelInfo, channel_info
from channels.signers.calling import call_signer, on_trio_thread
from channels.store import AsyncStore, open_store
from channels.testing.crash import crash_point
from channels.testing.hooks import FaultHooks
from channels.transport import Prologue, SecureChannel, serve

log = logging.getLogger("channels.runtime.node")

__all__ = ["Node", "NodeSettings", "UpdateRefusedError", "open_node"]


class Node:
    """A desk node. Create it with :func:`open_node`."""

    def __init__(
        self,
        *,
        signer: Signer,
        store: AsyncStore,
        chain: AdjudicatorClient,
        chain_id: int,
        settings: NodeSettings,
        nursery: trio.Nursery,
        policy: Policy | None = None,
        trust: Trust | None = None,
        pricer: Pricer | None = None,
        quote_limits: QuoteLimits | None = None,
    ) -> None:
        self.signer = signer
        self.store = store
        self.chain = chain
        self.chain_id = chain_id
        self.settings = settings
        self.policy = policy
        self.config = Config(
            chain_id=chain_id,
            adjudicator=Address(chain.address),
            limits=settings.limits,
            max_pending=settings.max_pending,
            max_deposit_fee_bps=settings.max_deposit_fee_bps,
        )
        self._nursery = nursery
        self._runtimes: dict[ChannelId, ChannelRuntime] = {}
        self._handles: dict[ChannelId, Channel] = {}
        self._bus = EventBus(held=True)
        self._clock = ChainClock(chain)
        self._links = Links(
            signer=signer,
            prologue=Prologue(chain_id, Address(chain.address)),
            settings=settings,
            bus=self._bus,
            nursery=nursery,
            dispatch=self._dispatch,
            on_up=functools.partial(self._link_changed, up=True),
            on_down=functools.partial(self._link_changed, up=False),
        )
        self._executor = Executor(store, self._links.send)
        self._ctx = RuntimeContext(
            address=signer.address,
            chain=chain,
            settings=settings,
            clock=self._clock,
            bus=self._bus,
            executor=self._executor,
            nursery=nursery,
            request_ids=itertools.count(1),
            on_update=lambda cid, version, trades: self.quotes.fills.on_update(
                cid, version, trades
            ),
            after_step=lambda cid, actions: self.quotes.fills.after_step(cid, actions),
            spending=lambda params, amount: self.gatekeeper.spending(params, amount),
            hold_signing=lambda cid, latest, v: self.towers.hold_signing(cid, latest, v),
            signing_covered=lambda cid, version: self.towers.leases.covers(cid, version),
        )
        #: The oracle's signed prices we were given (settlement on chain, losses at last prices).
        self.attestations = AttestationBook()
        self._deciding_opens = trio.Lock()
        self.watcher = Watcher(
            NodeDefenceHost(
                self._ctx, store, self._runtimes, self.attestations, self._links.connected
            )
        )
        #: Firm quotes (RFQ): requests, answers, offers, fills and the fill rule.
        self.quotes = QuoteDesk(
            NodeQuoteHost(
                signer=signer,
                chain_id=chain_id,
                adjudicator=Address(chain.address),
                store=store,
                clock=self._clock,
                bus=self._bus,
                nursery=nursery,
                runtimes=self._runtimes,
                handles=self._handles,
                send=self._links.send,
            ),
            pricer,
            quote_limits,
        )
        # consent: whom we talk to, on what terms, and who decides an update (gatekeeper.py);
        # fills of our live firm quotes are decided by our quote desk.
        trust = trust or Trust()
        if trust.quotes is None:
            trust = dataclasses.replace(trust, quotes=self.quotes.fills)
        self.gatekeeper = Gatekeeper(trust, self, period_floor(settings))
        #: Channel proposals of ours the peer refused (rule and reason), until open_channel reads.
        self._refused: dict[ChannelId, TermsRefused] = {}
        self._live_opens = LiveOpens()
        self.listen_port: int | None = None
        #: Messages naming a channel we do not have with the sending peer.
        self.unknown_channel_messages = 0
        #: The desk's watchtowers (channels/runtime/towerclient.py); none unless configured.
        self.towers = TowerClient(self, (), self._runtimes)
        #: What a start with watchtowers rebuilt from them (channels/runtime/rebuild.py).
        self.rebuilt: RebuildReport | None = None

    # identity, time, events ---------------------------------------------------------------------
    @property
    def address(self) -> Address:
        return self.signer.address

    def now(self) -> int:
        """Chain time (see :class:`~channels.runtime.clock.ChainClock`)."""
        return self._clock.now()

    async def refresh_chain_time(self) -> None:
        await self._clock.refresh()

    @property
    def events_lost(self) -> int:
        """Events dropped because a subscriber's buffer was full (each is announced to it)."""
        return self._bus.events_lost

    def events(
        self, buffer: int = 10_000
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        """``async with node.events() as stream: async for event in stream: ...``"""
        return self._bus.subscribe(buffer)

    # peers --------------------------------------------------------------------------------------
    @property
    def peers(self) -> tuple[Address, ...]:
        """The peers connected now."""
        return self._links.peers

    def is_connected(self, peer: bytes) -> bool:
        return self._links.connected(Address(peer))

    async def wait_connected(self, peer: bytes, connected: bool = True) -> None:
        """Return once ``peer`` is connected (with ``connected=False``: once it is not)."""
        await self._links.wait_connected(Address(peer), connected)

    async def disconnect(self, peer: bytes) -> None:
        """Drop the connection to ``peer``; a peer we dialled is redialled."""
        await self._links.disconnect(Address(peer))

    @property
    def bad_messages(self) -> int:
        """Messages refused (malformed, or breaking a rule) over the node's life."""
        return self._links.bad_messages

    @property
    def fault_hooks(self) -> FaultHooks:
        """Fault-injection points, for :mod:`channels.testing.faults` only."""
        return self._links.hooks

    # channels -----------------------------------------------------------------------------------
    @property
    def channels(self) -> list[Channel]:
        return list(self._handles.values())

    def channel(self, channel_id: bytes) -> Channel:
        try:
            return self._handles[ChannelId(channel_id)]
        except KeyError:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}") from None

    def status(self) -> list[ChannelInfo]:
        """One view per channel: what a desk's status table shows."""
        infos: list[ChannelInfo] = []
        for runtime in self._runtimes.values():
            watch = self.watcher.watches.get(runtime.channel_id)
            deadline = watch.view.deadline if watch is not None and watch.view is not None else 0
            connected = self._links.connected(runtime.peer_address)
            infos.append(channel_info(runtime.machine, deadline, connected))
        return infos

    def _add(self, machine: ChannelMachine, endpoint: tuple[str, int] | None) -> ChannelRuntime:
        # consent: limits, then our call / a fill of our live quote / the decision hook.
        # signers (issue 14): a step may run in a worker thread (a blocking signer); these
        # callbacks read node state, so they run on the trio loop.
        policy, gate = self.policy, self.gatekeeper.gate
        machine.policy = (
            None if policy is None else (lambda view: on_trio_thread(lambda: policy(view)))
        )
        machine.gate = lambda view: on_trio_thread(lambda: gate(view))
        runtime = ChannelRuntime(self._ctx, machine, endpoint)
        self._runtimes[machine.channel_id] = runtime
        self._handles[machine.channel_id] = Channel(runtime, self.address, self.quotes)
        return runtime

    async def open_channel(
        self,
        *,
        peer: tuple[str, int],
        peer_address: str | bytes,
        asset: str | bytes,
        deposit: int,
        peer_deposit: int,
        oracle: str | bytes,
        challenge_period: int = 3600,
        asset_decimals: int | None = None,
        nonce: int | None = None,
    ) -> Channel:
        """Propose a channel to a peer, fund it, and return once both deposits are credited.
        The asset's decimals are the chain's (``asset_decimals``, if given, must equal them)."""
        peer_addr = address(peer_address)
        asset_addr = address(asset)
        asset_decimals = await self.gatekeeper.asset_decimals(asset_addr, asset_decimals)
        params = Params(
            chain_id=self.chain_id,
            adjudicator=Address(self.chain.address),
            asset=asset_addr,
            asset_decimals=asset_decimals,
            participants=(self.address, peer_addr),
            challenge_period=challenge_period,
            oracle=address(oracle),
            nonce=nonce if nonce is not None else secrets.randbits(256),
        )
        signer = self.signer
        machine, actions = await call_signer(
            signer,
            lambda: ChannelMachine.initiate(params, signer, self.config, (deposit, peer_deposit)),
        )
        await self._links.connect(peer, peer_addr)
        crash_point("channel", "pre_write")
        await self.store.add_channel(
            params, machine.index, (deposit, peer_deposit), machine.phase, peer
        )
        crash_point("channel", "post_write_pre_send")
        runtime = self._add(machine, peer)
        # A proposal lost with a broken link goes again on the next (channels/runtime/opening.py).
        with self._live_opens.waiting(runtime, actions):
            await runtime.enqueue(actions)
            with trio.fail_after(self.settings.open_timeout):
                refused = await wait_accepted(runtime, self._refused)
                if refused is not None:
                    refused.proposed = ProposedChannel(peer, params, (deposit, peer_deposit))
                    raise refused
                crash_point("channel", "post_send")
                await runtime.fund()
                await runtime.wait_open()  # raises PeerDepositFeeRefused, not a bare timeout
        return self._handles[machine.channel_id]

    async def accept_counter_offer(self, refused: TermsRefused) -> Channel:
        """Propose the refused channel again with the peer's counter-offer (its deposit and
        challenge period; a fresh nonce), once :func:`check_counter` finds it within our terms."""
        counter, proposed = refused.counter, refused.proposed
        if counter is None or proposed is None:
            raise IllegalCall(f"the refusal carries no counter-offer to accept ({refused})")
        p = proposed.params
        terms = self.gatekeeper.terms_for(p.participants[1])
        check_counter(proposed, counter, terms, self.gatekeeper.period_floor)
        return await self.open_channel(
            peer=proposed.endpoint,
            peer_address=p.participants[1],
            asset=p.asset,
            deposit=proposed.deposits[0],
            peer_deposit=counter.deposit,
            oracle=p.oracle,
            challenge_period=counter.challenge_period,
            asset_decimals=p.asset_decimals,
        )

    async def _on_open_proposal(self, peer: Address, msg: OpenProposal) -> None:
        if peer not in msg.params.participants or self.address not in msg.params.participants:
            raise WrongDomain("a channel proposal that does not name both of us")
        # consent: one proposal decided at a time, up to the channel being added, so that the
        # same proposal on two links, or two proposals at once, cannot both pass the terms (per
        # channel, per peer in total, channels per peer) counted before either was added.
        async with self._deciding_opens:
            await self._decide_open_proposal(peer, msg)

    async def _decide_open_proposal(self, peer: Address, msg: OpenProposal) -> None:
        params = msg.params
        if params.channel_id in self._runtimes:
            return  # sent again on a new link: our reestablish there carries version 0
        decision = await self.gatekeeper.decide_channel(params, msg.deposits)
        if isinstance(decision, AcceptTerms) and decision.our_deposit and self.settings.auto_fund:
            try:  # consent: funding it must leave the gas to defend every channel
                await self.gatekeeper.check_funding(params, decision.our_deposit, new_channel=True)
            except GasReserveTooLow as exc:
                decision = RefuseTerms(exc.rule, str(exc))
        if isinstance(decision, RefuseTerms):
            # consent: the opener learns the rule and the reason (and our counter-offer).
            log.info("refused channel proposal 0x%s: %s", params.channel_id.hex()[:12], decision)
            cid, rule, reason, counter = (
                params.channel_id,
                decision.rule,
                decision.reason,
                decision.counter,
            )
            refusal = OpenCounter(cid, rule, reason, counter) if counter else None
            self._links.send(peer, refusal or Reject(cid, None, None, rule, reason))
            return
        signer = self.signer
        machine, actions = await call_signer(
            signer, lambda: ChannelMachine.accept_open(msg, signer, self.config)
        )
        crash_point("channel", "pre_write")
        await self.store.add_channel(params, machine.index, msg.deposits, Phase.OPENING, None)
        crash_point("channel", "post_write_pre_send")
        runtime = self._add(machine, None)
        await runtime.enqueue(actions)
        if self.settings.auto_fund:
            self._nursery.start_soon(runtime.fund_quietly)

    async def _dispatch(self, peer: Address, message: Message | QuoteMessage) -> None:
        if isinstance(message, QUOTE_MESSAGES):
            await self.quotes.on_message(peer, message)
            return
        if isinstance(message, OpenProposal):
            await self._on_open_proposal(peer, message)
            return
        runtime = self._runtimes.get(message.channel_id)
        if runtime is None or runtime.peer_address != peer:
            self.unknown_channel_messages += 1
            return
        if isinstance(message, Reject | OpenCounter) and runtime.machine.phase is Phase.OPENING:
            await self._open_refused(runtime, message)
            return
        await runtime.receive(message)

    async def _open_refused(self, runtime: ChannelRuntime, message: Reject | OpenCounter) -> None:
        """consent: the peer refused the channel we proposed; nothing was deposited yet."""
        cid = runtime.channel_id
        counter = message.counter if isinstance(message, OpenCounter) else None
        self._refused[cid] = TermsRefused(message.rule, message.reason, counter)
        del self._runtimes[cid]
        self._handles.pop(cid, None)
        await self.store.set_phase(cid, Phase.CLOSED)
        runtime.notify()

    async def _link_changed(self, peer: Address, *, up: bool) -> None:
        for runtime in [r for r in self._runtimes.values() if r.peer_address == peer]:
            await runtime.apply(Reconnected() if up else Disconnected())
        if up:
            await self._live_opens.link_up(peer)

    # chain --------------------------------------------------------------------------------------
    def alarm(self, kind: str, detail: str, channel_id: ChannelId | None = None) -> None:
        """Raise an alarm on the event stream (something needs a human)."""
        self._bus.emit(Alarm(channel_id, kind, detail))

    def last_prices(self) -> dict[bytes, int]:
        """The oracle's last known price per underlying (from the attestations we were given)."""
        return self.attestations.last_prices()

    def add_attestation(self, attestation: Attestation, signature: bytes) -> None:
        """Give the watcher an oracle's signed price, for settling expired positions on chain.
        Raises IllegalCall, nothing kept, for a signature the adjudicator could never take."""
        self.attestations.add(attestation, signature)

    async def dispute(self, channel_id: bytes, *, force: bool = False) -> None:
        """Force-close: register our latest fully signed state on chain now.

        The watcher refutes anything older, concludes after the challenge period and settles or
        releases open positions after expiry; follow it with :meth:`Channel.wait_phase`.
        Refused with :class:`NotKnownCurrent` while the node has not established that its latest
        state is the newest (``force=True`` takes that risk: see the error's text).
        """
        await register_latest(self._runtime(channel_id), self.watcher, self._bus.emit, force=force)

    async def checkpoint(self, channel_id: bytes) -> None:
        """Record our newest fully signed state on chain with ``checkpoint``: clears a dispute
        registered with an older version (the channel is Open again) or pins an open channel's
        record so that nothing older can be registered. Returns once it is mined."""
        await checkpoint_latest(self._runtime(channel_id), self.watcher, self.chain, self._bus.emit)

    def _runtime(self, channel_id: bytes) -> ChannelRuntime:
        runtime = self._runtimes.get(ChannelId(channel_id))
        if runtime is None:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}")
        return runtime

    # start-up -----------------------------------------------------------------------------------
    async def restore(self) -> None:
        """Load the stored channels (once, before anything runs)."""
        for stored in await self.store.load_channels():
            machine = ChannelMachine.restore(
                stored.params,
                self.signer,
                self.config,
                stored.deposits,
                stored.latest,
                stored.book,
                stored.highest_signed,
                stored.phase,
                stored.recent,
            )
            # A store read from disk may be an old copy (a restored backup looks clean): not known
            # current until the peer, a tower or the chain says so (channels/runtime/currency.py).
            machine.synced = False
            self._add(machine, stored.endpoint)

    async def run(self, listen: tuple[str, int] | None) -> None:
        """Start the executor, the listener, the watcher and the redialer in the node's nursery."""
        nursery = self._nursery
        await nursery.start(self._executor.run)
        if listen is not None:
            self.listen_port = await nursery.start(
                functools.partial(serve, config=self.settings.transport_config()),
                listen[0],
                listen[1],
                self.signer,
                Prologue(self.chain_id, Address(self.chain.address)),
                self.gatekeeper.admit,  # consent: declared peers, or the bot's admit callback
                self._serve_link,
            )
        if self.towers.towers:
            await nursery.start(self.towers.run)
        await nursery.start(self.quotes.run)
        await nursery.start(self.watcher.run)
        nursery.start_soon(self._redialer)
        nursery.start_soon(
            self.gatekeeper.watch_reserve, max(1.0, 10 * self.settings.chain_poll_interval)
        )
        nursery.start_soon(self._resume_funding)
        nursery.start_soon(self._bus.release_soon)  # start-up's events, once our caller subscribed

    async def _resume_funding(self) -> None:
        """After a restart, fund the channels still FUNDING whose own deposit never went out
        (the process died between the handshake and the deposit: crash points
        ``channel:post_send``, ``deposit:pre_write``). ``fund`` reads the chain first, so a
        deposit that was mined is not repeated."""
        for runtime in list(self._runtimes.values()):
            machine = runtime.machine
            leader = machine.index == 0  # participant 0 opened the channel
            if machine.phase is Phase.FUNDING and (leader or self.settings.auto_fund):
                await runtime.fund_quietly()

    async def _serve_link(self, secure: SecureChannel) -> None:
        try:
            with self.gatekeeper.link(secure.peer_address):  # consent: connection caps
                await self._links.serve(secure)
        except LinkRefused as exc:
            log.info("closing a connection: %s", exc)

    async def _redialer(self) -> None:
        low, high = self.settings.reconnect_backoff
        delay = low
        while True:
            missing = [
                r
                for r in self._runtimes.values()
                if r.endpoint is not None and not self._links.connected(r.peer_address)
            ]
            for runtime in missing:
                assert runtime.endpoint is not None
                try:
                    await self._links.connect(runtime.endpoint, runtime.peer_address)
                except (ChannelError, OSError) as exc:
                    log.info("could not reach %s: %s", runtime.peer_address.hex(), exc)
            delay = min(high, delay * 2) if missing else low
            await trio.sleep(delay)


@asynccontextmanager
async def open_node(
    *,
    signer: Signer,
    store: str | Path,
    chain: str | Sequence[str],
    adjudicator: str | bytes,
    listen: tuple[str, int] | None = None,
    settings: NodeSettings | None = None,
    policy: Policy | None = None,
    trust: Trust | None = None,
    transaction_key: bytes | TransactionSigner | None = None,
    pricer: Pricer | None = None,
    quote_limits: QuoteLimits | None = None,
    watchtowers: Sequence[TowerEndpoint] = (),
    peers: Mapping[bytes, tuple[str, int]] | None = None,
) -> AsyncIterator[Node]:
    """Run a node for the duration of the ``async with`` block.

    ``trust`` says whom the node deals with and on what terms (:class:`~channels.core.trust.Trust`):
    the default admits nobody who dials in, accepts no channel proposal, and countersigns only
    updates that cannot cost us value (docs/PROTOCOL.md, "Who decides").

    ``transaction_key`` (a private key or a :class:`TransactionSigner`) pays gas; by default the
    channel signer's own account does (a :class:`LocalSigner`'s key, a keystore or a remote
    signer that signs transactions). ``chain`` is an RPC URL or several (the next one takes over
    when one fails). Every fully signed state is streamed to ``watchtowers`` (towerclient.py),
    which also help establish at start that the store is current; channels the store lacks (a
    wiped store) are rebuilt from them, with ``peers`` (address -> host, port) to reach each peer.
    """
    settings = settings or NodeSettings()
    if transaction_key is None and isinstance(signer, LocalSigner):
        transaction_key = signer.secret
    elif transaction_key is None and isinstance(signer, TransactionSigner):
        transaction_key = signer
    async with connect_adjudicator(chain, address(adjudicator), transaction_key) as client:
        chain_id = await client.rpc.chain_id()
        async with open_store(
            store,
            identity=signer.address,
            chain_id=chain_id,
            adjudicator=client.address,
            synchronous=settings.synchronous,
        ) as db:
            async with trio.open_nursery() as nursery:
                node = Node(
                    signer=signer,
                    store=db,
                    chain=client,
                    chain_id=chain_id,
                    settings=settings,
                    nursery=nursery,
                    policy=policy,
                    trust=trust,
                    pricer=pricer,
                    quote_limits=quote_limits,
                )
                await node.refresh_chain_time()
                node.towers.use(watchtowers)
                if watchtowers:
                    node.rebuilt = await rebuild_from_towers(node, watchtowers, peers or {})
                await node.restore()
                await node.gatekeeper.restore_premiums()  # the daily premium limit survives
                await node.quotes.restore()  # firm quotes: the live ones of the audit trail
                await node.run(listen)
                try:
                    yield node
                finally:
                    nursery.cancel_scope.cancel()
            await node.towers.leases.cut_back()  # a clean exit only: nothing is signed after
