"""``export_stream``: the audit trail over the control socket, one JSON line per record.

A single control line is capped at 1 MiB, which a long history outgrows; this command answers
with the export's records (channels/core/audit.py), each its own line, ending with the end
record (or, if something fails half way, an ``{"ok": false, "error": ...}`` line).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from channels.control.codec import LineStream, decode_request, encode_error
from channels.control.errors import BadRequest
from channels.core.audit import header_record, params_record
from channels.core.audit_quotes import quote_record
from channels.core.errors import ChainError, ChannelError

# The server calls this module, so it is taken as ``Any`` (import-linter: no cycles).
ControlServer = Any

COMMAND = "export_stream"


def wants_stream(line: bytes) -> bool:
    """Whether a request line is an ``export_stream`` request (cheap pre-check, then parsed)."""
    if b"export_stream" not in line:
        return False
    try:
        cmd, _ = decode_request(line)
    except ChannelError:
        return False
    return cmd == COMMAND


def _quote_rows(channel_id: bytes, store: Any) -> Any:
    return store.quote_audit(channel_id)


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


async def records(server: ControlServer, fields: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    node = server.node
    unknown = set(fields) - {"channel"}
    if unknown:
        raise BadRequest(f"{COMMAND}: unknown field(s) {', '.join(sorted(unknown))}")
    channel_text = fields.get("channel")
    if channel_text is not None and not isinstance(channel_text, str):
        raise BadRequest(f"{COMMAND}: channel must be a string")
    channels = [server.resolve(channel_text)] if channel_text else node.channels
    yield header_record(node.address, node.chain_id, node.chain.address, node.now())
    states = txs = quotes = 0
    for channel in channels:
        cid = "0x" + channel.id.hex()
        params = params_record(channel.params)
        yield {"channel": cid, "params": params, "our_index": channel.our_index}
        seen: set[bytes] = set()
        for row in await node.store.run(partial(_quote_rows, channel.id)):
            # the signed quotes we issued or received: what the fills in the states cite
            if row.signed is None or row.signed.quote.quote_id in seen:
                continue
            seen.add(row.signed.quote.quote_id)
            quotes += 1
            yield {"channel": cid, "quote": quote_record(row.signed)}
        for state in await node.store.export_audit(channel.id):
            states += 1
            yield {"channel": cid, "state": state}
        for intent in await node.store.intents(channel_id=channel.id):
            if intent.tx_hash is None:
                continue
            txs += 1
            yield {
                "channel": cid,
                "tx": {
                    "kind": intent.kind,
                    "tx_hash": "0x" + intent.tx_hash.hex(),
                    "status": intent.status.value,
                },
            }
    yield {
        "end": True,
        "channels": len(channels),
        "quotes": quotes,
        "states": states,
        "txs": txs,
    }


async def send_export(server: ControlServer, lines: LineStream, line: bytes) -> None:
    """Answer one ``export_stream`` request on ``lines``."""
    _, fields = decode_request(line)
    try:
        async for record in records(server, fields):
            await lines.send(_line(record))
    except (ChannelError, ChainError, OSError) as exc:
        await lines.send(encode_error(exc))
