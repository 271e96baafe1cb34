"""The audit verifier's field readers refuse every malformed value with a message naming the
field, the same way for state records and quote records (channels/core/audit_fields.py)."""

from __future__ import annotations

import pytest

from channels.core.audit_fields import hex_field, uint_field


def test_hex_field_reads_exactly_the_size() -> None:
    assert hex_field("0x" + "ab" * 32, 32, "link") == b"\xab" * 32
    assert hex_field("0X0102", 2, "x") == b"\x01\x02"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ab" * 32, "link must be 0x hex"),
        (b"\x00" * 32, "link must be 0x hex"),
        (None, "link must be 0x hex"),
        ("0x" + "ab" * 31, "link must be 32 bytes"),
        ("0x" + "ab" * 33, "link must be 32 bytes"),
        ("0xzz", "non-hexadecimal"),
    ],
)
def test_hex_field_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hex_field(value, 32, "link")


def test_uint_field_reads_integers_and_digit_strings() -> None:
    assert uint_field(0, "version") == 0
    assert uint_field(7, "version") == 7
    assert uint_field("12345678901234567890123", "locked") == 12345678901234567890123


@pytest.mark.parametrize("value", [-1, "-1", True, False, 1.0, "1e3", "", " 1", None, [1]])
def test_uint_field_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="version must be a non-negative integer"):
        uint_field(value, "version")
