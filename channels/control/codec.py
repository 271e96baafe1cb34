"""The control protocol's wire format: JSON values, request/response lines, line framing."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from channels.control.errors import (
    BadRequest,
    ControlError,
    ControlProtocolError,
    error_text,
    one_line,
)
from channels.core import boundedjson
from channels.core.model import OptionKind

if TYPE_CHECKING:
    pass

#: /2: balances in replies are ``our_balance`` and ``their_balance`` (no ``balances`` list).
PROTOCOL = "option-channels-control/2"
MAX_LINE = 1 << 20
"""Longest request or response line (an export of a long history is the largest)."""
MAX_DEPTH = 32
"""Deepest nesting of a control line (requests and results are a few levels deep)."""
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to about 104-108 bytes, depending on the OS."""
EXPORT_FORMAT = "option-channels-audit/1"


# Values ----------------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """A JSON-friendly copy: bytes as 0x-hex, enums by value (option kinds by name), dataclasses as
    dicts, tuples as lists; ints stay ints (exact, however large)."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, OptionKind):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _key(key: object) -> str:
    if isinstance(key, bytes):
        return "0x" + key.hex()
    return str(key)


def hex_bytes(text: str, what: str) -> bytes:
    raw = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise BadRequest(f"{what} must be 0x-prefixed hex, not {text!r}") from None


# Codec -----------------------------------------------------------------------------------------
def _dump(obj: object) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _load(line: bytes) -> dict[str, Any]:
    try:
        obj = boundedjson.loads(line, max_bytes=MAX_LINE, max_depth=MAX_DEPTH)
    except boundedjson.JsonRejected as exc:
        raise ControlProtocolError(f"control line refused: {one_line(str(exc))}") from None
    if not isinstance(obj, dict):
        raise ControlProtocolError("a control line must be a JSON object")
    return obj


def encode_request(cmd: str, **fields: Any) -> bytes:
    """One request line. Fields whose value is None are left out."""
    body = {k: to_json(v) for k, v in fields.items() if v is not None}
    return _dump({"cmd": cmd, **body})


def decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """``(cmd, fields)`` of a request line."""
    obj = _load(line)
    cmd = obj.pop("cmd", None)
    if not isinstance(cmd, str) or not cmd:
        raise ControlProtocolError('a request needs a "cmd" string')
    return cmd, obj


def encode_result(result: Any) -> bytes:
    return _dump({"ok": True, "result": to_json(result)})


def encode_error(exc: BaseException) -> bytes:
    return _dump({"ok": False, "error": error_text(exc)})


def decode_response(line: bytes) -> Any:
    """The result of a response line, or raise :class:`ControlError` for an error response."""
    obj = _load(line)
    ok = obj.get("ok")
    if ok is True and "result" in obj:
        return obj["result"]
    if ok is False and isinstance(obj.get("error"), str):
        kind, sep, message = obj["error"].partition(": ")
        return _raise(ControlError(kind, message if sep else ""))
    raise ControlProtocolError('a response needs "ok" and a "result" or an "error"')


def _raise(exc: BaseException) -> Any:
    raise exc


class LineStream:
    """Newline-delimited messages over a trio stream, each at most :data:`MAX_LINE` bytes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def receive_line(self) -> bytes | None:
        """The next line without its newline; None at a clean end of stream."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_LINE:
                raise ControlProtocolError(f"control line longer than {MAX_LINE} bytes")
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                if self._buffer.strip():
                    raise ControlProtocolError("the connection ended in the middle of a line")
                return None
            self._buffer += chunk

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)
