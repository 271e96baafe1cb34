"""Every golden vector of tests/vectors/eip712.json that the contract can compute, recomputed by
the Solidity code on anvil (``Harness`` through ``eth_call``): type hashes, domain separator,
channel ids, State/Attestation/Withdrawal struct hashes and digests, leaf hashes, Merkle roots of
every proof (and the zeroed-slot root the adjudicator stores after a settlement), payoffs, and
signature recovery (valid ones recover the named key, invalid ones revert).

The vectors' domain is chain 31337 and adjudicator 0x5FbDB2315678afecb367f032d93F642f64180aa3,
which is exactly where a fresh anvil puts the module's first deployment: so the golden
signatures are also submitted to the real adjudicator (``register``) and accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adjudicator import errors
from adjudicator.client import signature_tuple
from channels.core.errors import IllegalCall
from channels.core.model import to_checksum

from .kit import Env, Kit, SyncChain, artifact_abi, deploy_artifact_sync

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "eip712.json").read_text()
)
HARNESS = artifact_abi("Harness")
ADJ = artifact_abi("Adjudicator")
CHAIN_ID = int(VECTORS["domain"]["chainId"])
VERIFYING = bytes.fromhex(VECTORS["domain"]["verifyingContract"][2:])
ADDRESSES = {k["name"]: bytes.fromhex(k["address"][2:]) for k in VECTORS["keys"]}


def b(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def params_t(p: dict[str, str]) -> tuple[Any, ...]:
    return (int(p["chainId"]), b(p["adjudicator"]), b(p["asset"]), int(p["assetDecimals"]),
            b(p["participant0"]), b(p["participant1"]), int(p["challengePeriod"]), b(p["oracle"]),
            int(p["nonce"]))


def state_t(s: dict[str, Any]) -> tuple[Any, ...]:
    return (b(s["channelId"]), int(s["version"]), int(s["balance0"]), int(s["balance1"]),
            int(s["deposited0"]), int(s["deposited1"]), int(s["withdrawn0"]),
            int(s["withdrawn1"]), int(s["locked"]), b(s["positionsRoot"]),
            int(s["positionCount"]), bool(s["isFinal"]))


def attestation_t(a: dict[str, str]) -> tuple[Any, ...]:
    return (b(a["underlying"]), int(a["expiry"]), int(a["price"]))


def withdrawal_t(w: dict[str, str]) -> tuple[Any, ...]:
    return (b(w["channelId"]), int(w["version"]), int(w["participant"]), int(w["amount"]),
            b(w["recipient"]))


def position_t(p: dict[str, str]) -> tuple[Any, ...]:
    return (int(p["id"]), b(p["underlying"]), int(p["kind"]), int(p["strike"]), int(p["expiry"]),
            int(p["quantity"]), int(p["writer"]), int(p["collateral"]))


@pytest.fixture(scope="module")
def harness(env: Env) -> bytes:
    return deploy_artifact_sync(env, "Harness")


@pytest.fixture(scope="module")
def chain(env: Env) -> Iterator[SyncChain]:
    c = SyncChain(env.url)
    yield c
    c.close()


class Calls:
    """Collects Harness calls with their expected results; runs them in one batch."""

    def __init__(self, chain: SyncChain, harness: bytes) -> None:
        self.chain, self.harness = chain, harness
        self.items: list[tuple[str, str, tuple[Any, ...], Any]] = []

    def expect(self, what: str, fn: str, args: tuple[Any, ...], expected: Any) -> None:
        self.items.append((what, fn, args, expected))

    def check(self) -> int:
        datas = [HARNESS.encode_call(fn, *args) for _, fn, args, _ in self.items]
        results = self.chain.call_many(self.harness, datas)
        for (what, fn, _args, expected), res in zip(self.items, results, strict=True):
            if isinstance(expected, type) and issubclass(expected, Exception):
                assert isinstance(res, expected), f"{what}: {fn} gave {res!r}, not {expected}"
                continue
            assert isinstance(res, bytes), f"{what}: {fn} reverted: {res!r}"
            got = HARNESS.decode_output(fn, res)[0]
            if isinstance(got, str) and got.startswith("0x") and len(got) == 42:
                got = bytes.fromhex(got[2:])
            assert got == expected, f"{what}: {fn} = {got!r}, vector {expected!r}"
        return len(self.items)


def test_type_hashes_and_domain(chain: SyncChain, harness: bytes, env: Env) -> None:
    calls = Calls(chain, harness)
    th = VECTORS["typeHashes"]
    calls.expect("State", "stateTypehash", (), b(th["State"]["hash"]))
    calls.expect("Attestation", "attestationTypehash", (), b(th["Attestation"]["hash"]))
    calls.expect("Withdrawal", "withdrawalTypehash", (), b(th["Withdrawal"]["hash"]))
    # the EIP712Domain type hash has no accessor: the separator built from it is checked instead
    calls.expect("domain", "domainSeparator", (CHAIN_ID, VERIFYING),
                 b(VECTORS["domain"]["separator"]))
    assert calls.check() == 4


def test_deployment_is_the_vectors_domain(chain: SyncChain, env: Env) -> None:
    """The module's adjudicator sits at the vectors' address, and its own OZ EIP712 domain
    separator (cached at construction) equals the golden one."""
    assert env.chain_id == CHAIN_ID
    assert env.adjudicator == VERIFYING, (
        "the first deployment of a fresh anvil moved: the on-chain register test needs it at "
        + to_checksum(VERIFYING)
    )
    out = chain.call(env.adjudicator, ADJ.encode_call("domainSeparator"))
    assert bytes(ADJ.decode_output("domainSeparator", out)[0]) == b(VECTORS["domain"]["separator"])


def test_channel_ids(chain: SyncChain, harness: bytes) -> None:
    calls = Calls(chain, harness)
    for i, p in enumerate(VECTORS["params"]):
        calls.expect(f"params[{i}]", "channelId", (params_t(p),), b(p["channelId"]))
    assert calls.check() == len(VECTORS["params"]) == 4


def test_states(chain: SyncChain, harness: bytes, env: Env) -> None:
    calls = Calls(chain, harness)
    for i, v in enumerate(VECTORS["states"]):
        st = state_t(v["state"])
        calls.expect(f"states[{i}]", "hashState", (st,), b(v["structHash"]))
        calls.expect(f"states[{i}]", "stateDigest", (CHAIN_ID, VERIFYING, st), b(v["digest"]))
        for name, sig in v["signatures"].items():
            calls.expect(f"states[{i}] sig {name}", "recover",
                         (b(v["digest"]), signature_tuple(b(sig))), ADDRESSES[name])
    assert calls.check() == 7 * 4
    # and the deployed adjudicator's own digest (its domain is the vectors' domain)
    datas = [ADJ.encode_call("stateDigest", state_t(v["state"])) for v in VECTORS["states"]]
    for v, out in zip(VECTORS["states"], chain.call_many(env.adjudicator, datas), strict=True):
        assert isinstance(out, bytes)
        assert bytes(ADJ.decode_output("stateDigest", out)[0]) == b(v["digest"])


def test_attestations(chain: SyncChain, harness: bytes, env: Env) -> None:
    calls = Calls(chain, harness)
    for i, v in enumerate(VECTORS["attestations"]):
        at = attestation_t(v["attestation"])
        calls.expect(f"att[{i}]", "hashAttestation", (at,), b(v["structHash"]))
        calls.expect(f"att[{i}]", "attestationDigest", (CHAIN_ID, VERIFYING, at), b(v["digest"]))
        calls.expect(f"att[{i}] sig", "recover",
                     (b(v["digest"]), signature_tuple(b(v["signatures"]["oracle"]))),
                     ADDRESSES["oracle"])
    assert calls.check() == 4 * 3
    datas = [ADJ.encode_call("attestationDigest", attestation_t(v["attestation"]))
             for v in VECTORS["attestations"]]
    for v, out in zip(VECTORS["attestations"], chain.call_many(env.adjudicator, datas),
                      strict=True):
        assert isinstance(out, bytes)
        assert bytes(ADJ.decode_output("attestationDigest", out)[0]) == b(v["digest"])


def test_withdrawals(chain: SyncChain, harness: bytes, env: Env) -> None:
    calls = Calls(chain, harness)
    for i, v in enumerate(VECTORS["withdrawals"]):
        w = withdrawal_t(v["withdrawal"])
        calls.expect(f"w[{i}]", "hashWithdrawal", (w,), b(v["structHash"]))
        calls.expect(f"w[{i}]", "withdrawalDigest", (CHAIN_ID, VERIFYING, w), b(v["digest"]))
        for name, sig in v["signatures"].items():
            calls.expect(f"w[{i}] sig {name}", "recover", (b(v["digest"]), signature_tuple(b(sig))),
                         ADDRESSES[name])
    assert calls.check() == 3 * 4
    datas = [ADJ.encode_call("withdrawalDigest", withdrawal_t(v["withdrawal"]))
             for v in VECTORS["withdrawals"]]
    for v, out in zip(VECTORS["withdrawals"], chain.call_many(env.adjudicator, datas),
                      strict=True):
        assert isinstance(out, bytes)
        assert bytes(ADJ.decode_output("withdrawalDigest", out)[0]) == b(v["digest"])


def test_leaves_and_every_proof(chain: SyncChain, harness: bytes) -> None:
    calls = Calls(chain, harness)
    for i, v in enumerate(VECTORS["positions"]):
        calls.expect(f"pos[{i}]", "leaf", (position_t(v["position"]),), b(v["leaf"]))
    n = len(VECTORS["positions"])
    trees = VECTORS["trees"]
    for name in ("full", "afterRemovingId3"):
        tree = trees[name]
        root = b(tree["root"])
        for slot in tree["slots"]:
            proof = [b(x) for x in slot["proof"]]
            what = f"{name} slot {slot['slot']}"
            calls.expect(what, "leaf", (position_t(slot["position"]),), b(slot["leaf"]))
            calls.expect(what, "rootWith", (proof, b(slot["leaf"])), root)
            calls.expect(what, "verify", (proof, root, b(slot["leaf"])), True)
            calls.expect(what + " wrong root", "verify", (proof, bytes(32), b(slot["leaf"])),
                         False)
            n += 4
    # Zeroing position 3's slot with its own siblings gives the pruned tree's root: exactly
    # what the adjudicator stores after settling or releasing it (PROTOCOL.md 8.1).
    (slot3,) = [s for s in trees["full"]["slots"] if s["position"]["id"] == "3"]
    calls.expect("zeroed slot of id 3", "rootWith", ([b(x) for x in slot3["proof"]], bytes(32)),
                 b(trees["afterRemovingId3"]["root"]))
    assert b(trees["empty"]["root"]) == bytes(32)  # no tree: nothing for the contract to hash
    assert calls.check() == n + 1


def test_payoffs(chain: SyncChain, harness: bytes) -> None:
    calls = Calls(chain, harness)
    for i, v in enumerate(VECTORS["payoffs"]):
        kind, strike, price = int(v["kind"]), int(v["strike"]), int(v["price"])
        qty, coll, dec = int(v["quantity"]), int(v["collateral"]), int(v["assetDecimals"])
        calls.expect(f"payoff[{i}]", "payoff", (kind, strike, qty, coll, price, dec),
                     int(v["payoff"]))
        diff = max(0, price - strike) if kind == 0 else max(0, strike - price)
        calls.expect(f"payoff[{i}] capped", "cappedValue", (diff, qty, dec, coll),
                     int(v["payoff"]))
        if kind == 1 and v["fullPutCollateral"] is not None:
            full = int(v["fullPutCollateral"])
            # covered put at price 0: the exact value rounded down, at most 1 unit below the cap
            uncapped = strike * qty * 10**dec // 10**26
            assert full - uncapped in (0, 1)
            calls.expect(f"payoff[{i}] covered put", "payoff", (1, strike, qty, full, 0, dec),
                         uncapped)
    assert calls.check() >= 2 * len(VECTORS["payoffs"])


def test_invalid_signatures(chain: SyncChain, harness: bytes) -> None:
    inv = VECTORS["invalidSignatures"]
    digest = b(inv["digest"])
    calls = Calls(chain, harness)
    calls.expect("valid", "recover", (digest, signature_tuple(b(inv["valid"]))), b(inv["signer"]))
    unsendable = 0
    for item in inv["invalid"]:
        try:
            compact = signature_tuple(b(item["signature"]))
        except IllegalCall:  # wrong length or v: the compact form has no room for it
            unsendable += 1
            continue
        expected = errors.HighS if "high-s" in item["reason"] else errors.InvalidSignature
        calls.expect(item["reason"], "recover", (digest, compact), expected)
    # v = 0, 1, 29, all zero (v = 0), 64 and 66 bytes: the client refuses them (and the twin if
    # its s has the top bit set); the rest reaches the contract
    assert unsendable >= 6
    assert calls.check() == 1 + len(inv["invalid"]) - unsendable


async def test_golden_signatures_accepted_by_the_adjudicator(kit: Kit) -> None:
    """The golden states of params[1] (alice/bob from keccak256("alice"/"bob")), registered in
    increasing version order on the real deployment: every well-formed one is accepted with the
    golden signatures, and the registered struct hash is the golden one."""
    assert kit.env.adjudicator == VERIFYING
    params = params_t(VECTORS["params"][1])
    cid = b(VECTORS["params"][1]["channelId"])
    ours = [v for v in VECTORS["states"] if b(v["state"]["channelId"]) == cid]
    assert [int(v["state"]["version"]) for v in ours] == [0, 1, 42, 43, 99]
    for v in ours:
        st = state_t(v["state"])
        sigs = [signature_tuple(b(v["signatures"][who])) for who in ("alice", "bob")]
        assert v["wellFormed"]
        await kit.c.transact("register", params, st, *sigs)
        view = await kit.a.channel(cid)
        assert view.version == int(v["state"]["version"])
        assert view.state_hash == b(v["structHash"])
    # the encoding-only edge vectors are refused
    for v in VECTORS["states"]:
        if v["wellFormed"]:
            continue
        st = state_t(v["state"])
        sigs = [signature_tuple(b(v["signatures"][who])) for who in ("alice", "bob")]
        with pytest.raises((errors.WrongChannelId, errors.ConservationViolated)):
            await kit.c.transact("register", params, st, *sigs)
