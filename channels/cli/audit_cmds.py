"""``channels export`` (streams the audit trail as JSON Lines) and ``channels verify EXPORT``
(checks an export without trusting the node that wrote it; see channels/core/audit.py)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import IO

import trio

from adjudicator.audit_chain import verify_txs_on_chain
from channels.cli.config import Config
from channels.cli.format import note, out, print_json
from channels.control import ControlClient, ControlError
from channels.control.codec import decode_response
from channels.control.export_stream import COMMAND
from channels.core import boundedjson
from channels.core.audit import MAX_RECORD, AuditInvalid, AuditReport, verify_export
from channels.core.errors import ChannelError


async def cmd_export(client: ControlClient, args: argparse.Namespace, cfg: Config | None) -> int:
    """Write the node's export as it streams in: to a temporary file renamed at the end (or to
    stdout), never holding it whole in memory."""
    target = None if args.output in (None, "-") else Path(args.output)
    tmp = None if target is None else target.with_name(target.name + ".tmp")
    sink: IO[bytes] = sys.stdout.buffer if tmp is None else tmp.open("wb")
    counts: dict[str, object] = {}

    def take(line: bytes) -> bool:
        record = boundedjson.loads(line, max_bytes=MAX_RECORD, max_depth=16)
        if isinstance(record, dict) and record.get("ok") is False:
            decode_response(line)  # raises the node's error
        sink.write(line + b"\n")
        if isinstance(record, dict) and record.get("end") is True:
            counts.update(record)
            return True
        return False

    try:
        await client.stream(COMMAND, take, channel=args.channel)
        sink.flush()
    finally:
        if tmp is not None:
            sink.close()
    if not counts:
        raise ControlError("ControlProtocolError", "the export ended without its end record")
    if target is not None and tmp is not None:
        os.replace(tmp, target)
        note(
            f"exported {counts['channels']} channel(s), {counts['states']} signed state(s), "
            f"{counts['txs']} chain transaction(s) to {target} ({target.stat().st_size} bytes)"
        )
    return 0


async def run_verify(args: argparse.Namespace) -> int:
    path = Path(args.export)

    def check() -> AuditReport:
        with path.open("rb") as fh:
            return verify_export(fh)

    try:
        report = await trio.to_thread.run_sync(check)
        on_chain = None
        if args.rpc:
            on_chain = await verify_txs_on_chain(args.rpc, report)
    except FileNotFoundError:
        print(f"error: export file {path} not found", file=sys.stderr)
        return 2
    except AuditInvalid as exc:
        print(f"error: AuditInvalid: {path}: {exc}", file=sys.stderr)
        return 1
    except (ChannelError, OSError) as exc:  # the endpoint failed: nothing was shown wrong
        print(f"error: {type(exc).__name__}: {args.rpc}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        summary: dict[str, object] = {
            "channels": report.channels,
            "quotes": report.quotes,
            "fills": report.fills,
            "states": report.states,
            "txs": report.txs,
            "latest": report.latest,
        }
        if on_chain is not None:
            summary["on_chain"] = dataclasses.asdict(on_chain)
        print_json(summary)
        return 0
    out(
        f"{path}: verified {report.channels} channel(s), {report.states} signed state(s), "
        f"{report.quotes} quote(s) and {report.fills} fill(s), {report.txs} chain "
        "transaction(s): ids, state hashes, signatures, links and fills check out"
    )
    if on_chain is not None:
        out(
            f"on chain: {on_chain.confirmed} confirmed transaction(s) found with their events, "
            f"{on_chain.failed} failed one(s) not succeeded, {on_chain.unsettled} without an "
            "outcome to check"
        )
    return 0
