"""Generate the golden ``eth_signTypedData_v4`` vectors in ``typed_data.json`` from the core.

    .venv/bin/python tests/vectors/generate_typed_data.py          # rewrite typed_data.json
    .venv/bin/python tests/vectors/generate_typed_data.py --check  # exit 1 if out of date

One vector per signed message type (state, withdrawal, attestation, firm quote, transport login)
at the largest values each field may carry, plus a small realistic one, in two domains (the
local dev chain, and chain id 2**256-1). ``typed_data`` is the exact JSON text a wallet is given;
uints in it are decimal strings. Keys are ``keccak256(name)``; RFC 6979 signatures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from channels.core import eip712, model, quotes  # noqa: E402
from channels.core.hashing import keccak256  # noqa: E402
from channels.core.signing import LocalSigner, SignRequest  # noqa: E402

OUT = Path(__file__).resolve().parent / "typed_data.json"
U8, U32, U64, U128, U256 = (2**b - 1 for b in (8, 32, 64, 128, 256))
SIGNER_NAME = "typed-data-signer"


def signer() -> LocalSigner:
    return LocalSigner(keccak256(SIGNER_NAME.encode()))


def request(domain: eip712.Domain, message: object) -> SignRequest:
    """The signature request the node builds for ``message`` (a quote carries its encoder)."""
    if isinstance(message, quotes.Quote):
        digest = model.Digest(quotes.quote_digest(domain, message))
        return SignRequest(domain, message, digest, quotes.quote_typed_data)
    return SignRequest(domain, message)


def messages() -> list[tuple[str, object]]:
    """Each message type at the maxima the protocol allows, and a small realistic one."""
    top = model.ChannelId(b"\xff" * 32)
    recipient = model.Address(b"\xff" * 20)
    return [
        (
            "state-max",
            model.State(
                channel_id=top,
                version=model.Version(U64),
                balances=(model.Amount(U128), model.Amount(U128)),
                deposited=(model.Amount(U128), model.Amount(U128)),
                withdrawn=(model.Amount(U128), model.Amount(U128)),
                locked=model.Amount(U128),
                positions_root=b"\xff" * 32,
                position_count=U32,
                is_final=True,
            ),
        ),
        (
            "state-small",
            model.State(
                channel_id=model.ChannelId(keccak256(b"channel")),
                version=model.Version(7),
                balances=(model.Amount(10**16), model.Amount(3 * 10**15)),
                deposited=(model.Amount(10**16), model.Amount(3 * 10**15)),
                withdrawn=(model.Amount(0), model.Amount(0)),
                locked=model.Amount(0),
                positions_root=bytes(32),
                position_count=0,
                is_final=False,
            ),
        ),
        (
            "withdrawal-max",
            model.Withdrawal(top, model.Version(U64), 1, model.Amount(U128), recipient),
        ),
        (
            "attestation-max",
            model.Attestation(b"\xff" * 32, model.Timestamp(U64), model.Price(U256)),
        ),
        (
            "quote-max",
            quotes.Quote(
                quote_id=b"\xff" * 32,
                channel_id=top,
                quoter=signer().address,
                request_id=U64,
                underlying=b"\xff" * 32,
                kind=model.OptionKind.PUT,
                strike=model.Price(U256),
                expiry=model.Timestamp(U64),
                quoter_writes=True,
                price=model.Amount(U128),
                collateral=model.Amount(U128),
                max_quantity=model.Quantity(U128),
                valid_until=model.Timestamp(U64),
                replaces=b"\xfe" * 32,
            ),
        ),
        ("login-max", eip712.Login(U8, b"\xff" * 32)),
        ("login-initiator", eip712.Login(1, keccak256(b"handshake"))),
    ]


DOMAINS = {
    "devchain": eip712.Domain(31337, model.address("0x5FbDB2315678afecb367f032d93F642f64180aa3")),
    "max-chain-id": eip712.Domain(U256, model.Address(b"\xff" * 20)),
}


def build() -> dict[str, Any]:
    key = signer()
    vectors = []
    for domain_name, domain in DOMAINS.items():
        for name, message in messages():
            req = request(domain, message)
            digest = req.digest
            vectors.append(
                {
                    "name": f"{name}@{domain_name}",
                    "typed_data": json.dumps(req.typed_data()),
                    "digest": "0x" + digest.hex(),
                    "signature": "0x" + key.sign_digest(digest).hex(),
                }
            )
    return {
        "signer": {
            "name": SIGNER_NAME,
            "secret": "0x" + key.secret.hex(),
            "address": model.to_checksum(key.address),
        },
        "vectors": vectors,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
