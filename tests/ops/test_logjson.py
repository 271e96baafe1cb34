"""JSON log lines carry the channel and the peer a line is about."""

from __future__ import annotations

import json
import logging

from channels.ops.logjson import JsonFormatter


def test_json_log_line_has_channel_and_peer_fields() -> None:
    record = logging.LogRecord(
        "channels.desk", logging.WARNING, __file__, 1, "refused %s", ("InsufficientFunds",), None
    )
    record.channel = "0x" + "ab" * 32
    record.peer = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    record.version = 7
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "refused InsufficientFunds"
    assert line["level"] == "warning" and line["logger"] == "channels.desk"
    assert line["channel"] == record.channel and line["peer"] == record.peer
    assert line["version"] == 7 and line["time"].endswith("Z")
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    assert set(json.loads(JsonFormatter().format(plain))) == {"time", "level", "logger", "message"}
