"""``channels export`` (streams the audit trail as JSON Lines) and ``channels verify EXPORT``
(checks an export without trusting the node that wrote it; see channels/core/audit.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

import trio

from channels.cli.config import Config
from channels.cli.format import note, out, print_json
from channels.control import ControlClient, ControlError
from channels.control.codec import decode_response
from channels.control.export_stream import COMMAND
from channels.core import boundedjson
from channels.core.audit import MAX_RECORD, AuditInvalid, AuditReport, verify_export


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
    except FileNotFoundError:
        print(f"error: export file {path} not found", file=sys.stderr)
        return 2
    except AuditInvalid as exc:
        print(f"error: AuditInvalid: {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json(report)
    else:
        out(
            f"{path}: verified {report.channels} channel(s), {report.states} signed state(s), "
            f"{report.txs} chain transaction(s): ids, state hashes, signatures and links check out"
        )
    return 0
