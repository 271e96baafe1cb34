"""``channels node``: serve a desk (node, control socket, event log) until a signal."""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import signal
import sys
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

import trio

from adjudicator.tx_signing import TransactionSigner
from channels.cli.config import Config, PortInUse, load_gas_key, load_signer, require_config
from channels.control import one_line
from channels.core.errors import ChannelError
from channels.core.model import to_checksum
from channels.core.signing import Signer
from channels.ops.alarms import AlarmBook

if TYPE_CHECKING:
    from channels.core.node_events import Event
    from channels.runtime.node import Node

log = logging.getLogger("channels.desk")


# Logging of a running node ---------------------------------------------------------------------
#: One line per JSON-RPC request drowns the desk's own log (below debug level).
NOISY_LOGGERS = ("httpx", "httpcore")


@contextlib.contextmanager
def logging_to_stderr(level: str, log_format: str = "text") -> Iterator[None]:
    """Log to stderr while a serving command (``node``, ``tower``) runs, then put the root
    logger's handlers and level, and the noisy libraries' levels, back as they were.

    A command may run in-process (tests, a program embedding ``channels.cli.main``): a handler
    left behind would stay bound to the stderr of that moment and fail on every later record
    once that stream is closed. The host's handlers are set aside, not closed.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from channels.ops.logjson import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s")
        )
    root.handlers = [handler]
    root.setLevel(getattr(logging, level.upper()))
    if level != "debug":
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, noisy_level in saved_noisy.items():
            logging.getLogger(name).setLevel(noisy_level)
        handler.close()


def event_line(node: Node, event: Event) -> tuple[int, str]:
    """(log level, message) for a node event; channel events start ``[ch=0x.. v=N]``."""
    from channels.core.node_events import (
        Alarm,
        ChainEventSeen,
        FinalityChanged,
        PeerConnected,
        PeerLost,
        PhaseChangedEvent,
        StateUpdated,
        UpdateRefusedEvent,
    )
    from channels.runtime.deposits import DepositMeasured
    from channels.runtime.eventbus import EventsLost

    prefix = ""
    our_index = 0
    if event.channel_id is not None:
        version: object = "?"
        try:
            channel = node.channel(event.channel_id)
            version, our_index = channel.version, channel.our_index
        except ChannelError:
            pass
        if isinstance(event, StateUpdated):
            version = event.state.version
        elif isinstance(event, FinalityChanged):
            version = event.version
        prefix = f"[ch=0x{event.channel_id.hex()[:8]} v={version}] "
    if isinstance(event, StateUpdated):
        s = event.state
        return logging.INFO, (
            f"{prefix}state by={'us' if event.ours else 'peer'} "
            f"ours={s.balances[our_index]} theirs={s.balances[1 - our_index]} "
            f"locked={s.locked} positions={s.position_count}" + (" final" if s.is_final else "")
        )
    if isinstance(event, PhaseChangedEvent):
        return logging.INFO, f"{prefix}phase={event.phase.value}"
    if isinstance(event, UpdateRefusedEvent):
        return logging.WARNING, f"{prefix}refused rule={event.rule} reason={one_line(event.reason)}"
    if isinstance(event, FinalityChanged):
        return logging.INFO, f"{prefix}finality={event.finality.value.replace(' ', '-')}"
    if isinstance(event, ChainEventSeen):
        return logging.INFO, f"{prefix}chain event={event.name} block={event.block_number}"
    if isinstance(event, Alarm):
        return logging.WARNING, f"{prefix}ALARM kind={event.kind} detail={one_line(event.detail)}"
    if isinstance(event, DepositMeasured):
        return logging.INFO, (
            f"{prefix}deposit sent={event.sent} credited={event.credited} fee={event.fee}"
        )
    if isinstance(event, EventsLost):
        return logging.WARNING, f"event log fell behind: {event.count} event(s) lost"
    if isinstance(event, PeerConnected):
        return logging.INFO, f"peer={to_checksum(event.peer)} connected"
    if isinstance(event, PeerLost):
        return logging.INFO, f"peer={to_checksum(event.peer)} lost"
    from channels.runtime.quote_events import describe

    quote_line = describe(event)
    if quote_line is not None:
        return logging.INFO, prefix + quote_line
    return logging.INFO, f"{prefix}event={type(event).__name__}"


async def log_events(
    node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    from channels.core.node_events import ChainEventSeen

    seen: dict[tuple[object, ...], None] = {}
    async with node.events() as stream:
        task_status.started()
        async for event in stream:
            if isinstance(event, ChainEventSeen):
                # The watcher rescans its reorg window, so it may report a log more than once.
                key = (event.channel_id, event.name, event.block_number, repr(event.args))
                if key in seen:
                    continue
                seen[key] = None
                if len(seen) > 4096:
                    del seen[next(iter(seen))]
            level, message = event_line(node, event)
            log.log(level, "%s", message, extra=event_context(node, event))


def event_context(node: Node, event: Event) -> dict[str, object]:
    """The channel and peer an event is about, for JSON logs (``[node] log_format = "json"``)."""
    context: dict[str, object] = {"event": type(event).__name__}
    peer = getattr(event, "peer", None)
    if event.channel_id is not None:
        context["channel"] = "0x" + event.channel_id.hex()
        try:
            channel = node.channel(event.channel_id)
            peer = peer or channel.peer_address
            context["version"] = channel.version
        except ChannelError:
            pass
    if isinstance(peer, bytes):
        context["peer"] = to_checksum(peer)
    return context


# Commands: chain, deploy, node -----------------------------------------------------------------
async def wait_for_stop_signal() -> int:
    """Until SIGINT or SIGTERM; returns the signal number."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            return int(signum)
    return 0  # pragma: no cover - the receiver never ends by itself


async def serve_desk(
    cfg: Config,
    signer: Signer,
    *,
    gas: bytes | TransactionSigner | None = None,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the desk's node, its control socket and its event log until cancelled."""
    from channels.cli.desk_trust import desk_trust
    from channels.runtime.node import open_node

    rpc_url, adjudicator = cfg.require_chain()
    listen = None if cfg.listen_port is None else (cfg.listen_host, cfg.listen_port)
    trust = await desk_trust(cfg)  # amounts in each asset's units, scaled by its decimals
    async with open_node(
        signer=signer,
        store=cfg.store,
        chain=(rpc_url, *cfg.rpc_fallback_urls),
        adjudicator=adjudicator,
        listen=listen,
        settings=cfg.node_settings(),
        transaction_key=gas,
        trust=trust,
        pricer=cfg.quotes.price if cfg.quotes is not None else None,
        quote_limits=cfg.quotes.limits() if cfg.quotes is not None else None,
        watchtowers=cfg.watchtowers,
        peers={
            p.address: (p.host, p.port)
            for p in cfg.peers.values()
            if p.host is not None and p.port is not None
        },
    ) as node:
        # Alarms and their acknowledgements outlive the process, in a file next to the store.
        alarm_path = cfg.store.with_name(cfg.store.name + ".alarms")
        with contextlib.closing(AlarmBook(alarm_path)) as alarm_book:
            await _serve_parts(cfg, node, alarm_book, task_status)


async def _serve_parts(
    cfg: Config, node: Node, alarm_book: AlarmBook, task_status: trio.TaskStatus[Node]
) -> None:
    """The node's event log, health monitor, metrics endpoint and control socket."""
    from channels.control import serve_control
    from channels.ops.health import HealthMonitor
    from channels.ops.metrics import serve_metrics

    async with trio.open_nursery() as nursery:
        await nursery.start(log_events, node)
        health = HealthMonitor(node, alarms=alarm_book)
        await nursery.start(health.run)
        metrics_url = None
        if cfg.metrics:
            try:
                port = await nursery.start(
                    serve_metrics, node, health, cfg.metrics_host, cfg.metrics_port
                )
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(
                        f"port {cfg.metrics_port} on {cfg.metrics_host} is already in use "
                        f"([node] metrics_port in {cfg.path}): choose another port, or 0 "
                        "for one the system picks"
                    ) from None
                raise
            host = f"[{cfg.metrics_host}]" if ":" in cfg.metrics_host else cfg.metrics_host
            metrics_url = f"http://{host}:{port}"
        await nursery.start(
            partial(serve_control, node, cfg.control, health=health, metrics_url=metrics_url)
        )
        log.info(
            "node %s chain_id=%d adjudicator=%s listen=%s control=%s channels=%d",
            to_checksum(node.address),
            node.chain_id,
            to_checksum(node.chain.address),
            "-" if node.listen_port is None else f"{cfg.listen_host}:{node.listen_port}",
            cfg.control,
            len(node.channels),
        )
        for channel in node.channels:
            log.info(
                "[ch=0x%s v=%d] restored phase=%s ours=%d theirs=%d positions=%d",
                channel.id.hex()[:8],
                channel.version,
                channel.phase.value,
                channel.our_balance,
                channel.their_balance,
                len(channel.positions),
            )
        task_status.started(node)
        await trio.sleep_forever()


async def run_node(args: argparse.Namespace) -> int:
    cfg = require_config(args)
    with logging_to_stderr(args.log_level or cfg.log_level, args.log_format or cfg.log_format):
        # Opening a key may decrypt a keystore or ask a remote signer: off the trio loop.
        signer = await trio.to_thread.run_sync(load_signer, cfg)
        gas = await trio.to_thread.run_sync(load_gas_key, cfg)
        cfg.require_chain()
        async with trio.open_nursery() as nursery:
            node = await nursery.start(functools.partial(serve_desk, gas=gas), cfg, signer)
            log.info(
                "ready: desk %s; drive it with `channels -c %s status` (Ctrl-C stops the node)",
                to_checksum(node.address),
                args.config,
            )
            signum = await wait_for_stop_signal()
            log.info("stopping (%s)", signal.Signals(signum).name)
            nursery.cancel_scope.cancel()
        log.info("stopped")
    return 0
