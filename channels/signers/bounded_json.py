"""A nesting check for JSON text from outside, run before parsing it: a deeply nested document
can exhaust the C JSON decoder's stack (seen here: a segmentation fault, not a RecursionError)."""

from __future__ import annotations

__all__ = ["too_deep"]


def too_deep(body: bytes | bytearray, limit: int) -> bool:
    """Whether JSON text nests deeper than ``limit`` (checked before parsing: a deeply nested
    document can crash the C JSON decoder)."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False
