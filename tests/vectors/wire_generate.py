"""Generate the wire golden vectors in ``wire.json`` (run once, from the codec they pin down).

    .venv/bin/python tests/vectors/wire_generate.py          # rewrite wire.json
    .venv/bin/python tests/vectors/wire_generate.py --check  # exit 1 if the codec disagrees

Each vector is one object drawn (deterministically) from the hypothesis strategies in
``tests/wire/strategies.py``: its type, its encoded bytes (hex) and its ``repr`` (the dataclasses'
generated reprs show every field, so the repr is an encoding-independent picture of the object).
``tests/wire/test_golden.py`` checks the codec against the file: the bytes decode to an object with
the same repr, and that object encodes to the same bytes. The file was written by the codec as it
was before the schema table replaced the per-message functions, so the test shows the two agree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from channels.core import wire  # noqa: E402
from tests.wire import strategies as s  # noqa: E402

OUT = Path(__file__).resolve().parent / "wire.json"
PER_KIND = 40

#: kind -> (strategy, encoder, decoder)
KINDS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "OpenProposal": (s.open_proposals, wire.encode_message, wire.decode_message),
    "OpenAccept": (s.open_accepts, wire.encode_message, wire.decode_message),
    "UpdateRequest": (s.update_requests, wire.encode_message, wire.decode_message),
    "Proposal": (s.proposals, wire.encode_message, wire.decode_message),
    "Accept": (s.accepts, wire.encode_message, wire.decode_message),
    "Reject": (s.rejects, wire.encode_message, wire.decode_message),
    "Reestablish": (s.reestablishes, wire.encode_message, wire.decode_message),
    "OpenCounter": (s.open_counters, wire.encode_message, wire.decode_message),
    "SignedUpdate": (s.signed_updates, wire.encode_update, wire.decode_update),
    "Params": (s.params(), wire.encode_params, wire.decode_params),
    "State": (s.states, wire.encode_state, wire.decode_state),
    "BookSnapshot": (s.books, wire.encode_book, wire.decode_book),
    "Trades": (s.trade_batches, wire.encode_trades, wire.decode_trades),
}


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same ones on every run (derandomised)."""
    out: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        if len(out) < count:
            out.append(value)

    collect()
    return out


def generate() -> list[dict[str, str]]:
    vectors: list[dict[str, str]] = []
    for kind, (strategy, encode, decode) in KINDS.items():
        for value in draw(strategy, PER_KIND):
            data = encode(value)
            assert decode(data) == value, kind
            vectors.append({"kind": kind, "hex": data.hex(), "repr": repr(value)})
    return vectors


def main() -> int:
    if "--check" in sys.argv[1:]:
        vectors = json.loads(OUT.read_text())
        for v in vectors:
            _, encode, decode = KINDS[v["kind"]]
            obj = decode(bytes.fromhex(v["hex"]))
            if repr(obj) != v["repr"] or encode(obj).hex() != v["hex"]:
                print(f"{v['kind']} vector disagrees with the codec", file=sys.stderr)
                return 1
        return 0
    OUT.write_text(json.dumps(generate(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
