"""Generate the golden vectors in ``eip712.json`` from the Python core.

    .venv/bin/python tests/vectors/generate.py          # rewrite eip712.json
    .venv/bin/python tests/vectors/generate.py --check  # exit 1 if the file is out of date

Everything is deterministic: the keys are ``keccak256(name)``, signatures are RFC 6979, and the
JSON keeps a fixed key order. The same file is checked against the Solidity adjudicator (through
``eth_call``), so it holds every input the contract hashes and every hash it should get.

Number format: uints are decimal strings (they exceed JSON's safe integers), byte strings are
lowercase ``0x`` hex, addresses are EIP-55 checksummed, booleans are JSON booleans.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from channels.core import eip712, model, options  # noqa: E402
from channels.core.hashing import keccak256  # noqa: E402
from channels.core.positions import PositionBook  # noqa: E402
from channels.core.signing import LocalSigner, malleate  # noqa: E402

OUT = Path(__file__).resolve().parent / "eip712.json"

CHAIN_ID = 31337
ADJUDICATOR = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
U64 = 2**64 - 1
U128 = 2**128 - 1
U256 = 2**256 - 1


def h(b: bytes) -> str:
    return "0x" + b.hex()


def n(x: int) -> str:
    return str(int(x))


def a(addr: bytes) -> str:
    return model.to_checksum(addr)


def _uint256_or_none(x: int) -> str | None:
    return n(x) if x <= U256 else None


def key(name: str) -> LocalSigner:
    return LocalSigner(keccak256(name.encode()))


KEY_NAMES = ("alice", "bob", "oracle")


def _domain(domain: eip712.Domain) -> dict[str, Any]:
    return {
        "name": eip712.DOMAIN_NAME,
        "version": eip712.DOMAIN_VERSION,
        "chainId": n(domain.chain_id),
        "verifyingContract": a(domain.verifying_contract),
        "separator": h(domain.separator),
    }


def _params(p: model.Params) -> dict[str, Any]:
    return {
        "chainId": n(p.chain_id),
        "adjudicator": a(p.adjudicator),
        "asset": a(p.asset),
        "assetDecimals": n(p.asset_decimals),
        "participant0": a(p.participants[0]),
        "participant1": a(p.participants[1]),
        "challengePeriod": n(p.challenge_period),
        "oracle": a(p.oracle),
        "nonce": n(p.nonce),
        "abiEncoded": h(p.abi_encode()),
        "channelId": h(p.channel_id),
    }


def _state_fields(s: model.State) -> dict[str, Any]:
    return {
        "channelId": h(s.channel_id),
        "version": n(s.version),
        "balance0": n(s.balances[0]),
        "balance1": n(s.balances[1]),
        "deposited0": n(s.deposited[0]),
        "deposited1": n(s.deposited[1]),
        "withdrawn0": n(s.withdrawn[0]),
        "withdrawn1": n(s.withdrawn[1]),
        "locked": n(s.locked),
        "positionsRoot": h(s.positions_root),
        "positionCount": n(s.position_count),
        "isFinal": s.is_final,
    }


def _signed(digest: bytes, signers: dict[str, LocalSigner]) -> dict[str, str]:
    return {name: h(signer.sign_digest(digest)) for name, signer in signers.items()}


def _position(p: model.Position) -> dict[str, Any]:
    return {
        "id": n(p.id),
        "underlying": h(p.underlying),
        "kind": n(int(p.kind)),
        "strike": n(p.strike),
        "expiry": n(p.expiry),
        "quantity": n(p.quantity),
        "writer": n(p.writer),
        "collateral": n(p.collateral),
    }


def _tree(book: PositionBook) -> dict[str, Any]:
    snap = book.snapshot()
    return {
        "highWater": n(snap.high_water),
        "root": h(book.root),
        "count": n(len(book)),
        "locked": n(book.locked),
        "slots": [
            {
                "slot": n(slot),
                "position": _position(pos),
                "leaf": h(pos.leaf()),
                "proof": [h(x) for x in book.proof(pos.id)],
            }
            for slot, pos in snap.slots
        ],
    }


def tree_positions() -> list[model.Position]:
    eth, btc = model.symbol("ETH-USD"), model.symbol("BTC-USD")
    call, put = model.OptionKind.CALL, model.OptionKind.PUT
    return [
        model.Position(1, eth, call, 3_000 * 10**8, 1_735_689_600, 10**18, 0, 500 * 10**6),
        model.Position(2, eth, put, 2_500 * 10**8, 1_735_689_600, 2 * 10**18, 1, 5_000 * 10**6),
        model.Position(3, btc, call, 100_000 * 10**8, 1_738_368_000, 10**17, 1, 1_000 * 10**6),
        model.Position(4, btc, put, 90_000 * 10**8, 1_738_368_000, 5 * 10**16, 0, 4_500 * 10**6),
        model.Position(U64, eth, call, 1, U64, U256, 0, U128 - 11_000 * 10**6),
    ]


PAYOFF_CASES: list[tuple[int, int, int, int, int, int]] = [
    # kind, strike, price, quantity, collateral, assetDecimals. Every diff * quantity * 10**decimals
    # fits 512 bits, so Solidity's Math.mulDiv can compute the same value.
    (0, 3_000 * 10**8, 3_500 * 10**8, 10**18, 1_000 * 10**6, 6),  # call ITM, below cap
    (0, 3_000 * 10**8, 5_000 * 10**8, 10**18, 1_000 * 10**6, 6),  # call ITM, capped
    (0, 3_000 * 10**8, 2_999 * 10**8, 10**18, 1_000 * 10**6, 6),  # call OTM
    (0, 3_000 * 10**8, 3_000 * 10**8, 10**18, 1_000 * 10**6, 6),  # call at the money
    (1, 2_500 * 10**8, 2_000 * 10**8, 2 * 10**18, 5_000 * 10**6, 6),  # put ITM
    (1, 2_500 * 10**8, 3_000 * 10**8, 2 * 10**18, 5_000 * 10**6, 6),  # put OTM
    (1, 2_500 * 10**8, 0, 2 * 10**18, 5_000 * 10**6, 6),  # put at price 0, full collateral
    (0, 1, 2, 1, 1, 6),  # 1e-20 units: rounds down to 0
    (0, 100_000_000, 299_999_999, 10**18, 10, 0),  # 1.99999999 USD with 0 decimals: 1
    (1, 3_333_33333333, 1_000_00000001, 3 * 10**17, 10**30, 18),  # 18 decimals, inexact
    (0, 1, U256, U256 // 10**36, U128, 36),  # 512-bit intermediate product
    (1, U256, 0, U256 // 10**36, U128, 36),  # put with a huge strike, capped at uint128 max
    (0, 2 * 10**8, 3 * 10**8, 10**18, 10**18, 36),  # 36 decimals
]


def build() -> dict[str, Any]:
    signers = {name: key(name) for name in KEY_NAMES}
    alice, bob, oracle = signers["alice"], signers["bob"], signers["oracle"]
    parties = {"alice": alice, "bob": bob}
    domain = eip712.Domain(CHAIN_ID, model.address(ADJUDICATOR))

    params_list = [
        model.Params(
            CHAIN_ID,
            domain.verifying_contract,
            model.ZERO_ADDRESS,
            18,
            (alice.address, bob.address),
            3600,
            oracle.address,
            0,
        ),
        model.Params(
            CHAIN_ID,
            domain.verifying_contract,
            model.address(USDC),
            6,
            (alice.address, bob.address),
            86_400,
            oracle.address,
            1,
        ),
        model.Params(
            U256,
            domain.verifying_contract,
            model.address(USDC),
            36,
            (bob.address, alice.address),
            model.MAX_CHALLENGE_PERIOD,
            oracle.address,
            U256,
        ),
        model.Params(
            CHAIN_ID,
            domain.verifying_contract,
            model.ZERO_ADDRESS,
            0,
            (alice.address, bob.address),
            model.CONTRACT_MIN_CHALLENGE_PERIOD,
            oracle.address,
            7,
        ),
    ]
    cid = params_list[1].channel_id

    book = PositionBook()
    positions = tree_positions()
    for p in positions:
        book.add(p)
    full_tree = _tree(book)
    book.remove(positions[2].id)  # a slot in the middle becomes empty
    pruned_tree = _tree(book)
    pruned_root, pruned_count, pruned_locked = book.root, len(book), book.locked

    states = [
        options.opening_state(params_list[1]),
        model.State(cid, 1, (10**9, 2 * 10**9), (10**9, 2 * 10**9), (0, 0), 0, bytes(32), 0, False),
        model.State(
            cid,
            42,
            (600 * 10**6, 1_400 * 10**6),
            (10**9, 2 * 10**9),
            (0, 500 * 10**6),
            500 * 10**6,
            keccak256(b"root"),
            3,
            False,
        ),
        model.State(
            cid,
            43,
            (U128 - pruned_locked, 0),
            (U128, 0),
            (0, 0),
            pruned_locked,
            pruned_root,
            pruned_count,
            False,
        ),
        model.State(cid, 99, (1, 2), (3, 0), (0, 0), 0, bytes(32), 0, True),
        model.State(
            b"\xff" * 32,
            U64,
            (U128, U128),
            (U128, U128),
            (U128, U128),
            U128,
            b"\xff" * 32,
            2**32 - 1,
            True,
        ),
        model.State(bytes(32), 0, (0, 0), (0, 0), (0, 0), 0, bytes(32), 0, False),
    ]
    attestations = [
        model.Attestation(model.symbol("ETH-USD"), 1_735_689_600, 3_456_78901234),
        model.Attestation(model.symbol("BTC-USD"), 1_738_368_000, 98_765_43210000),
        model.Attestation(b"\xff" * 32, U64, U256),
        model.Attestation(model.symbol("ETH-USD"), 0, 1),
    ]
    withdrawals = [
        model.Withdrawal(cid, 42, 1, 10**9, alice.address),
        model.Withdrawal(cid, 7, 0, 1, bob.address),
        model.Withdrawal(b"\xff" * 32, U64, 1, U128, model.address("0x" + "ff" * 20)),
    ]

    digest0 = eip712.state_digest(domain, states[1])
    good = alice.sign_digest(digest0)
    r, s_ = good[:32], good[32:64]
    n_bytes = (2**256 - 1).to_bytes(32, "big")
    bad_signatures = [
        ("malleated high-s twin", malleate(good)),
        ("v = 0", good[:64] + b"\x00"),
        ("v = 1", good[:64] + b"\x01"),
        ("v = 29", good[:64] + b"\x1d"),
        ("r = 0", bytes(32) + s_ + good[64:]),
        ("s = 0", r + bytes(32) + good[64:]),
        ("r = 2**256-1", n_bytes + s_ + good[64:]),
        ("all zero", bytes(65)),
        ("64 bytes", good[:64]),
        ("66 bytes", good + b"\x00"),
    ]

    return {
        "description": "Golden vectors for docs/PROTOCOL.md, written by tests/vectors/generate.py",
        "format": "uints: decimal strings; bytes: 0x hex; addresses: EIP-55; bools: JSON",
        "keys": [
            {"name": name, "secret": h(keccak256(name.encode())), "address": a(sk.address)}
            for name, sk in signers.items()
        ],
        "typeHashes": {
            "EIP712Domain": {"type": eip712.DOMAIN_TYPE, "hash": h(eip712.DOMAIN_TYPEHASH)},
            "State": {"type": eip712.STATE_TYPE, "hash": h(eip712.STATE_TYPEHASH)},
            "Attestation": {
                "type": eip712.ATTESTATION_TYPE,
                "hash": h(eip712.ATTESTATION_TYPEHASH),
            },
            "Withdrawal": {"type": eip712.WITHDRAWAL_TYPE, "hash": h(eip712.WITHDRAWAL_TYPEHASH)},
        },
        "domain": _domain(domain),
        "params": [_params(p) for p in params_list],
        "states": [
            {
                "state": _state_fields(st),
                "structHash": h(eip712.state_struct_hash(st)),
                "digest": h(eip712.state_digest(domain, st)),
                "signatures": _signed(eip712.state_digest(domain, st), parties),
                # False for the encoding-only edge vector: the contract must refuse to register it.
                "wellFormed": st.conserves() and not (st.is_final and st.position_count),
            }
            for st in states
        ],
        "attestations": [
            {
                "attestation": {
                    "underlying": h(at.underlying),
                    "expiry": n(at.expiry),
                    "price": n(at.price),
                },
                "structHash": h(eip712.attestation_struct_hash(at)),
                "digest": h(eip712.attestation_digest(domain, at)),
                "signatures": _signed(eip712.attestation_digest(domain, at), {"oracle": oracle}),
            }
            for at in attestations
        ],
        "withdrawals": [
            {
                "withdrawal": {
                    "channelId": h(w.channel_id),
                    "version": n(w.version),
                    "participant": n(w.participant),
                    "amount": n(w.amount),
                    "recipient": a(w.recipient),
                },
                "structHash": h(eip712.withdrawal_struct_hash(w)),
                "digest": h(eip712.withdrawal_digest(domain, w)),
                "signatures": _signed(eip712.withdrawal_digest(domain, w), parties),
            }
            for w in withdrawals
        ],
        "positions": [
            {"position": _position(p), "abiEncoded": h(p.abi_encode()), "leaf": h(p.leaf())}
            for p in positions
        ],
        "trees": {
            "full": full_tree,
            "afterRemovingId3": pruned_tree,
            "empty": {"root": h(PositionBook().root)},
        },
        "payoffs": [
            {
                "kind": n(kind),
                "strike": n(strike),
                "price": n(price),
                "quantity": n(qty),
                "collateral": n(coll),
                "assetDecimals": n(dec),
                "payoff": n(
                    options.payoff(
                        model.Position(
                            0, model.symbol("X"), model.OptionKind(kind), strike, 0, qty, 0, coll
                        ),
                        price,
                        dec,
                    )
                ),
                # null when it does not fit uint256 (the contract cannot hold it either)
                "fullPutCollateral": _uint256_or_none(
                    options.full_put_collateral(strike, qty, dec)
                ),
            }
            for kind, strike, price, qty, coll, dec in PAYOFF_CASES
        ],
        "invalidSignatures": {
            "digest": h(digest0),
            "signer": a(alice.address),
            "valid": h(good),
            "invalid": [{"reason": why, "signature": h(sig)} for why, sig in bad_signatures],
        },
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
