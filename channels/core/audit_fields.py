"""How the audit verifier reads one field of an export record: a fixed-size 0x hex string or a
non-negative integer (JSON number or decimal string). Pure. Shared by the state records
(channels/core/audit.py) and the quote records (channels/core/audit_quotes.py), so both refuse
the same malformed values with the same message.
"""

from __future__ import annotations


def hex_field(value: object, size: int, what: str) -> bytes:
    """``value`` as exactly ``size`` bytes from 0x hex, else ValueError naming ``what``."""
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise ValueError(f"{what} must be 0x hex")
    raw = bytes.fromhex(value[2:])
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes")
    return raw


def uint_field(value: object, what: str) -> int:
    """``value`` as a non-negative integer (a JSON integer or a string of digits; never a
    boolean), else ValueError naming ``what``."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a non-negative integer")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"{what} must be a non-negative integer")
