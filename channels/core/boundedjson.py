"""JSON from outside, parsed with bounds on its size and its nesting depth.

Every JSON document that comes from outside the process (a JSON-RPC reply, a control socket line,
a file) goes through :func:`loads`. The standard decoder recurses once per nesting level; a
dependency (py_ecc, imported by eth-account) raises Python's recursion limit to 100,000, and at
that limit a line of 200,000 ``[`` overflows the C stack and the process dies with SIGSEGV instead
of raising. :func:`loads` measures the depth first, without recursion, and refuses anything deeper
than ``max_depth`` before the decoder sees it. :func:`restore_recursion_limit` undoes the
dependency's change (``channels`` calls it at import).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from channels.core.errors import RemoteError

DEFAULT_MAX_DEPTH = 64
"""Deeper than anything the protocols here produce (a JSON-RPC log is about 4 levels)."""
SAFE_RECURSION_LIMIT = 1000
"""CPython's default; deep enough for every library used here, shallow for the C stack."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonRejected(RemoteError, ValueError):
    """A JSON document from outside was refused before or while decoding it."""


class JsonTooLarge(JsonRejected):
    """The document is longer than the bound its reader allows."""


class JsonTooDeep(JsonRejected):
    """Arrays and objects are nested deeper than the bound its reader allows."""


class JsonMalformed(JsonRejected):
    """The document is not JSON (truncated, bad syntax, bad UTF-8, NaN, an oversized number)."""


def nesting_depth(text: str, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings do not
    count), without recursion; stops counting once it passes ``stop_above``."""
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in skeleton:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(
    data: bytes | bytearray | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Decode one JSON document of at most ``max_bytes`` bytes (UTF-8) nested at most
    ``max_depth`` deep, or raise a :class:`JsonRejected` saying which bound it broke."""
    size = len(data) if not isinstance(data, str) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonTooLarge(f"JSON document of {size} bytes is longer than the limit {max_bytes}")
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonMalformed(f"JSON document is not UTF-8: {exc.reason}") from None
    depth = nesting_depth(text, stop_above=max_depth)
    if depth > max_depth:
        raise JsonTooDeep(f"JSON document nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise JsonMalformed(f"not a JSON document: {detail}") from None


def restore_recursion_limit(limit: int = SAFE_RECURSION_LIMIT) -> None:
    """Lower Python's recursion limit back to ``limit`` if an import raised it above."""
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
