"""JSON log lines (one object per line) for log shippers: time, level, logger, message, and the
``channel`` and ``peer`` a line is about when it is about one."""

from __future__ import annotations

import datetime as dt
import json
import logging

#: ``extra=`` keys a log call may set; they become top-level fields of the JSON line.
CONTEXT_FIELDS = ("channel", "peer", "version", "event")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
