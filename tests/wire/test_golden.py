"""The codec against the golden vectors of ``tests/vectors/wire.json`` (kept forever).

The vectors were written by the per-message codec before the schema table replaced it; every one
must still decode to the same object and encode back to the same bytes, so the wire format of every
message and store record is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vectors.wire_generate import KINDS

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "wire.json").read_text())


def test_every_kind_has_vectors() -> None:
    assert {v["kind"] for v in VECTORS} == set(KINDS)
    assert len(VECTORS) >= 40 * len(KINDS)


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v['kind']}-{i}" for i, v in enumerate(VECTORS)])
def test_golden_vector(vector: dict[str, str]) -> None:
    _, encode, decode = KINDS[vector["kind"]]
    data = bytes.fromhex(vector["hex"])
    obj = decode(data)
    assert repr(obj) == vector["repr"]
    assert encode(obj) == data
