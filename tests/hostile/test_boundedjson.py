"""Bounded JSON parsing: every hostile document becomes one typed error, never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.core import boundedjson
from channels.core.boundedjson import JsonMalformed, JsonRejected, JsonTooDeep, JsonTooLarge
from channels.core.errors import RemoteError

BIG = 1 << 20


def test_nested_brackets_are_refused_before_decoding() -> None:
    with pytest.raises(JsonTooDeep):
        boundedjson.loads(b"[" * 200_000, max_bytes=BIG)
    with pytest.raises(JsonTooDeep):
        boundedjson.loads('{"a":' * 100 + "1" + "}" * 100, max_bytes=BIG)


def test_depth_at_the_bound_is_accepted() -> None:
    doc = "[" * 64 + "]" * 64
    assert boundedjson.loads(doc, max_bytes=BIG, max_depth=64) == json.loads(doc)
    with pytest.raises(JsonTooDeep):
        boundedjson.loads(doc, max_bytes=BIG, max_depth=63)


def test_brackets_inside_strings_do_not_count() -> None:
    doc = json.dumps({"s": "[" * 5000 + '\\"[' + "{" * 10})
    assert boundedjson.loads(doc, max_bytes=BIG)["s"].startswith("[[[")
    assert boundedjson.nesting_depth(doc) == 1


def test_size_bound() -> None:
    with pytest.raises(JsonTooLarge):
        boundedjson.loads(b'"' + b"a" * 100 + b'"', max_bytes=50)
    assert boundedjson.loads(b'"' + b"a" * 48 + b'"', max_bytes=50) == "a" * 48


@pytest.mark.parametrize(
    "doc",
    [b"", b"{", b'{"a": [1, 2', b"\xff\xfe", b"NaN", b"[Infinity]", b"1" * 5000, b"[1,]", b"]]]]"],
)
def test_malformed(doc: bytes) -> None:
    with pytest.raises(JsonMalformed):
        boundedjson.loads(doc, max_bytes=BIG)


def test_errors_are_remote_protocol_errors_and_value_errors() -> None:
    assert issubclass(JsonRejected, RemoteError)
    assert issubclass(JsonRejected, ValueError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.text(alphabet='[]{}",:0\\ a', max_size=3000))
def test_any_input_decodes_or_is_rejected(doc: bytes | str) -> None:
    try:
        boundedjson.loads(doc, max_bytes=BIG, max_depth=16)
    except JsonRejected:
        pass
