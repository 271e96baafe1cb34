"""One desk node in its own OS process, driven by JSON lines (the kill -9 harness's child).

Run as ``python tests/crash/desk_process.py '<config json>'``; config keys:

``key``          hex private key of the desk (it also pays gas)
``store``        path of the node's SQLite file
``chain``        JSON-RPC URL of the chain
``adjudicator``  hex address of the adjudicator
``listen_port``  TCP port to listen on (0 picks one), or null for no listener
``settings``     keyword arguments for :class:`channels.runtime.node.NodeSettings`
``tap``          optional path: every message the node *receives* is appended there as one JSON
                 line (type, version, state hash, signatures), flushed at once. It is the harness's
                 record of which signatures left the peer's process (docs/THREATS.md section 5.2).

Crash points come from the environment as the product reads them (``CHANNELS_CRASH_AT``).

Standard input carries one command per line, ``{"id": 7, "cmd": "pay", "amount": 5}``; each runs in
its own task, so a slow command never blocks ``status``. Every command gets exactly one reply line
``{"id": 7, "ok": true, ...}`` or ``{"id": 7, "ok": false, "error": "<type>", "message": "..."}``.
Node events are printed as ``{"event": "<EventType>", ...}`` lines. Commands:

``open``           peer_port, peer_address, asset, deposit, peer_deposit, oracle, challenge_period
``pay``            amount (the first channel unless ``channel`` is given)
``write_option``   kind, underlying, strike, expiry, quantity, premium, collateral
``status``         one row per channel (node.status() plus the latest state's hash, signatures, ...)
``wait_version``   version
``wait_phase``     phase (value, e.g. "closed")
``dispute``        register the latest fully signed state on chain
``quit``           leave ``open_node`` normally (the store is closed cleanly), then exit 0

Every output line is flushed as it is written, so the harness sees it even if SIGKILL follows.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import trio

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, _ROOT)

from channels.core import eip712  # noqa: E402
from channels.core.messages import Accept, Proposal, Reestablish  # noqa: E402
from channels.core.node_events import (  # noqa: E402
    Alarm,
    ChainEventSeen,
    FinalityChanged,
    PeerConnected,
    PeerLost,
    PhaseChangedEvent,
    StateUpdated,
    UpdateRefusedEvent,
)
from channels.core.protocol import Phase  # noqa: E402
from channels.core.signing import LocalSigner  # noqa: E402
from channels.runtime.node import Node, NodeSettings, open_node  # noqa: E402
from channels.testing.faults import tap_received  # noqa: E402
from tests.partners import partners  # noqa: E402


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return str(value)


def state_json(state: Any) -> dict[str, Any]:
    return {
        "version": int(state.version),
        "state_hash": "0x" + eip712.state_struct_hash(state).hex(),
        "balances": [int(b) for b in state.balances],
        "deposited": [int(d) for d in state.deposited],
        "locked": int(state.locked),
        "position_count": int(state.position_count),
        "is_final": bool(state.is_final),
    }


def event_json(event: object) -> dict[str, Any]:
    out: dict[str, Any] = {"event": type(event).__name__}
    cid = getattr(event, "channel_id", None)
    if cid is not None:
        out["channel_id"] = "0x" + bytes(cid).hex()
    if isinstance(event, StateUpdated):
        out.update(state_json(event.state), ours=event.ours)
    elif isinstance(event, Alarm):
        out.update(kind=event.kind, detail=event.detail)
    elif isinstance(event, PhaseChangedEvent):
        out["phase"] = event.phase.value
    elif isinstance(event, PeerConnected | PeerLost):
        out["peer"] = "0x" + bytes(event.peer).hex()
    elif isinstance(event, FinalityChanged):
        out.update(finality=event.finality.value, version=event.version)
    elif isinstance(event, UpdateRefusedEvent):
        out.update(request_id=event.request_id, rule=event.rule, reason=event.reason)
    elif isinstance(event, ChainEventSeen):
        out.update(name=event.name, block_number=event.block_number)
        if "version" in event.args:
            out["version"] = int(event.args["version"])  # type: ignore[call-overload]
    return out


class Tap:
    """Appends every received protocol message to a JSON-lines file (flushed per line)."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)

    def record(self, peer: bytes, message: object) -> None:
        row: dict[str, Any] = {"type": type(message).__name__, "from": "0x" + bytes(peer).hex()}
        if isinstance(message, Proposal):
            row.update(
                version=int(message.state.version),
                state_hash="0x" + eip712.state_struct_hash(message.state).hex(),
                signature="0x" + message.signature.hex(),
            )
        elif isinstance(message, Accept):
            row.update(version=int(message.version), signature="0x" + message.signature.hex())
        elif isinstance(message, Reestablish):
            row.update(
                version=int(message.state.version),
                state_hash="0x" + eip712.state_struct_hash(message.state).hex(),
                signatures=["0x" + s.hex() for s in message.signatures],
            )
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()


def install_tap(node: Node, tap: Tap) -> None:
    """Record what the node receives, before it is handled (test instrumentation only)."""
    tap_received(node, tap.record)


def channel_of(node: Node, command: dict[str, Any]) -> Any:
    if "channel" in command:
        return node.channel(bytes.fromhex(command["channel"].removeprefix("0x")))
    if not node.channels:
        raise LookupError("no channel yet")
    return node.channels[0]


def status(node: Node) -> list[dict[str, Any]]:
    rows = []
    for info in node.status():
        ch = node.channel(info.channel_id)
        signed = ch.latest
        rows.append(
            {
                "channel_id": "0x" + info.channel_id.hex(),
                "peer": "0x" + info.peer.hex(),
                "phase": info.phase.value,
                "version": info.version,
                "our_balance": info.our_balance,
                "their_balance": info.their_balance,
                "positions": info.positions,
                "locked": info.locked,
                "deadline": info.deadline,
                "connected": info.connected,
                "state": state_json(ch.state),
                "signatures": ["0x" + s.hex() if s else None for s in signed.signatures],
                "fully_signed": signed.fully_signed,
                "highest_signed": int(ch.highest_signed),
                "pending": list(ch.in_flight),
                "reestablishing": not info.in_sync,
                "index": info.our_index,
            }
        )
    return rows


async def run_command(node: Node, command: dict[str, Any], stop: trio.Event) -> dict[str, Any]:
    cmd = command["cmd"]
    if cmd == "status":
        return {"channels": status(node), "address": "0x" + node.address.hex(), "now": node.now()}
    if cmd == "open":
        ch = await node.open_channel(
            peer=("127.0.0.1", int(command["peer_port"])),
            peer_address=command["peer_address"],
            asset=command["asset"],
            deposit=int(command["deposit"]),
            peer_deposit=int(command["peer_deposit"]),
            oracle=command["oracle"],
            challenge_period=int(command.get("challenge_period", 60)),
        )
        return {"channel_id": "0x" + ch.id.hex(), **state_json(ch.state)}
    if cmd == "pay":
        state = await channel_of(node, command).pay(int(command["amount"]))
        return state_json(state)
    if cmd == "top_up":
        state = await channel_of(node, command).top_up(int(command["amount"]))
        return state_json(state)
    if cmd == "write_option":
        ch = channel_of(node, command)
        position = await ch.write_option(
            kind=command.get("kind", "call"),
            underlying=command.get("underlying", "ETH-USD"),
            strike=int(command["strike"]),
            expiry=int(command["expiry"]),
            quantity=int(command["quantity"]),
            premium=int(command["premium"]),
            collateral=int(command["collateral"]),
        )
        return {"position_id": int(position.id), **state_json(ch.state)}
    if cmd == "wait_version":
        state = await channel_of(node, command).wait_version(int(command["version"]))
        return state_json(state)
    if cmd == "wait_phase":
        ch = channel_of(node, command)
        phase = await ch.wait_phase(Phase(command["phase"]))
        return {"phase": phase.value}
    if cmd == "dispute":
        ch = channel_of(node, command)
        await node.dispute(ch.id)
        return {"registered": int(ch.state.version)}
    if cmd == "quit":
        stop.set()
        return {}
    raise ValueError(f"unknown command {cmd!r}")


async def serve_commands(node: Node, stop: trio.Event) -> None:
    async def one(command: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": command.get("id")}
        try:
            reply.update(ok=True, **await run_command(node, command, stop))
        except Exception as exc:  # every failure goes back to the harness as a reply
            reply.update(ok=False, error=type(exc).__name__, message=str(exc))
            if not isinstance(exc, trio.TooSlowError):
                reply["traceback"] = traceback.format_exc(limit=4)
        emit(reply)

    async with trio.open_nursery() as nursery:
        while not stop.is_set():
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:  # the harness closed our stdin: treat it as quit
                stop.set()
                break
            if line.strip():
                nursery.start_soon(one, json.loads(line))
        nursery.cancel_scope.cancel()


async def forward_events(node: Node, events: Any) -> None:
    async for event in events:
        emit(event_json(event))


async def main_async(config: dict[str, Any]) -> None:
    signer = LocalSigner.from_hex(config["key"])
    settings = NodeSettings(**config.get("settings", {}))
    listen_port = config.get("listen_port")
    tap = Tap(config["tap"]) if config.get("tap") else None
    stop = trio.Event()
    async with open_node(
        signer=signer,
        store=config["store"],
        chain=config["chain"],
        adjudicator=config["adjudicator"],
        listen=("127.0.0.1", int(listen_port)) if listen_port is not None else None,
        settings=settings,
        trust=partners(
            *(bytes.fromhex(a[2:]) for a in config.get("partners", [])),
            assets=[bytes.fromhex(a[2:]) for a in config.get("assets", [])],
            oracles=[bytes.fromhex(a[2:]) for a in config.get("oracles", [])],
        ),
    ) as node:
        # No checkpoint between the node's start and these two lines: nothing the node's own
        # tasks receive or emit after start-up is missed.
        if tap is not None:
            install_tap(node, tap)
        async with node.events() as events, trio.open_nursery() as nursery:
            nursery.start_soon(forward_events, node, events)
            emit(
                {
                    "event": "ready",
                    "pid": os.getpid(),
                    "address": "0x" + node.address.hex(),
                    "port": node.listen_port,
                    "channels": status(node),
                }
            )
            await serve_commands(node, stop)
            nursery.cancel_scope.cancel()
    emit({"event": "bye"})


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    trio.run(main_async, json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
