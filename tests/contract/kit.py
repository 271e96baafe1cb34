"""Shared set-up of the contract tests: one deployment per module, channels, signing helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from adjudicator import tokens
from adjudicator.client import AdjudicatorClient, signature_tuple
from adjudicator.devchain import DevChain
from adjudicator.rpc import RpcClient, open_rpc
from adjudicator.transactions import TransactionSender
from channels.core import eip712
from channels.core.model import (
    ZERO_ADDRESS,
    ZERO_HASH,
    Address,
    Amount,
    Attestation,
    ChannelId,
    Params,
    Price,
    SignedState,
    State,
    Timestamp,
    Version,
    Withdrawal,
    address,
)
from channels.core.signing import LocalSigner

T = 30.0
TOKEN_DECIMALS = 6
MINTED = 10**15
PERIOD = 3600
NONCES = iter(range(1, 1_000_000))


def key_bytes(key: str) -> bytes:
    return bytes.fromhex(key.removeprefix("0x"))


@dataclass(frozen=True)
class Env:
    """What the module's deployment produced (addresses as bytes)."""

    url: str
    chain_id: int
    keys: tuple[str, ...]
    adjudicator: bytes
    adjudicator_b: bytes
    token: bytes


async def _deploy_env(chain: DevChain) -> Env:
    async with open_rpc(chain.url) as rpc:
        deployer = TransactionSender(rpc, chain.private_keys[0])
        a = await AdjudicatorClient.deploy(rpc, deployer)
        b = await AdjudicatorClient.deploy(rpc, deployer)
        token = await tokens.deploy_test_token(rpc, deployer, TOKEN_DECIMALS)
        for key in chain.private_keys[:3]:
            who = LocalSigner(key_bytes(key)).address
            await tokens.mint(rpc, deployer, token, who, MINTED)
        return Env(chain.url, chain.chain_id, chain.private_keys, a.address, b.address, token)


def deploy_env(chain: DevChain) -> Env:
    return trio.run(_deploy_env, chain)


@dataclass
class Channel:
    params: Params
    domain: eip712.Domain
    signers: tuple[LocalSigner, LocalSigner]

    @property
    def id(self) -> ChannelId:
        return self.params.channel_id

    def state(
        self,
        version: int,
        balances: tuple[int, int] = (0, 0),
        deposited: tuple[int, int] | None = None,
        withdrawn: tuple[int, int] = (0, 0),
        locked: int = 0,
        root: bytes = ZERO_HASH,
        count: int = 0,
        final: bool = False,
        channel_id: bytes | None = None,
    ) -> State:
        if deposited is None:
            deposited = (balances[0] + withdrawn[0] + locked, balances[1] + withdrawn[1])
        return State(
            channel_id=ChannelId(channel_id or self.id),
            version=Version(version),
            balances=(Amount(balances[0]), Amount(balances[1])),
            deposited=(Amount(deposited[0]), Amount(deposited[1])),
            withdrawn=(Amount(withdrawn[0]), Amount(withdrawn[1])),
            locked=Amount(locked),
            positions_root=root,
            position_count=count,
            is_final=final,
        )

    def sign(self, state: State, domain: eip712.Domain | None = None) -> SignedState:
        digest = eip712.state_digest(domain or self.domain, state)
        return SignedState(state, (self.signers[0].sign_digest(digest),
                                   self.signers[1].sign_digest(digest)))

    def signed(self, version: int, **kw: object) -> SignedState:
        return self.sign(self.state(version, **kw))  # type: ignore[arg-type]

    def withdrawal(
        self, version: int, participant: int, amount: int, recipient: bytes
    ) -> tuple[Withdrawal, tuple[bytes, bytes]]:
        w = Withdrawal(ChannelId(self.id), Version(version), participant, Amount(amount),
                       Address(recipient))
        d = eip712.withdrawal_digest(self.domain, w)
        return w, (self.signers[0].sign_digest(d), self.signers[1].sign_digest(d))

    def attest(self, oracle: LocalSigner, underlying: bytes, expiry: int,
               price: int) -> tuple[Attestation, bytes]:
        a = Attestation(underlying, Timestamp(expiry), Price(price))
        return a, oracle.sign_digest(eip712.attestation_digest(self.domain, a))


@dataclass
class Kit:
    """Per-test handles: clients for each actor on deployment A (and alice's on B)."""

    env: Env
    rpc: RpcClient
    alice: LocalSigner
    bob: LocalSigner
    carol: LocalSigner
    oracle: LocalSigner
    a: AdjudicatorClient  # alice sends
    b: AdjudicatorClient  # bob sends
    c: AdjudicatorClient  # carol (third party) sends
    a_on_b: AdjudicatorClient  # alice on the second deployment
    extra: dict[str, object] = field(default_factory=dict)

    def channel(
        self,
        asset: bytes = ZERO_ADDRESS,
        *,
        decimals: int | None = None,
        nonce: int | None = None,
        adjudicator: bytes | None = None,
        period: int = PERIOD,
        chain_id: int | None = None,
    ) -> Channel:
        if decimals is None:
            decimals = 18 if asset == ZERO_ADDRESS else TOKEN_DECIMALS
        params = Params(
            chain_id=chain_id if chain_id is not None else self.env.chain_id,
            adjudicator=Address(adjudicator or self.env.adjudicator),
            asset=Address(asset),
            asset_decimals=decimals,
            participants=(self.alice.address, self.bob.address),
            challenge_period=period,
            oracle=self.oracle.address,
            nonce=nonce if nonce is not None else next(NONCES),
        )
        domain = eip712.Domain(self.env.chain_id, Address(adjudicator or self.env.adjudicator))
        return Channel(params, domain, (self.alice, self.bob))

    async def now(self) -> int:
        return await self.a.block_timestamp()

    async def warp(self, seconds: int) -> None:
        await self.rpc.dev.increase_time(seconds)
        await self.rpc.dev.evm_mine()

    async def eth_balance(self, who: bytes) -> int:
        return await self.rpc.get_balance("0x" + who.hex())

    async def token_balance(self, who: bytes) -> int:
        return await tokens.balance_of(self.rpc, self.env.token, who)

    async def fund(self, ch: Channel, amounts: tuple[int, int]) -> None:
        """Alice deposits for participant 0, bob for participant 1."""
        if amounts[0]:
            await self.a.deposit(ch.params, 0, amounts[0])
        if amounts[1]:
            await self.b.deposit(ch.params, 1, amounts[1])


@asynccontextmanager
async def open_kit(env: Env) -> AsyncIterator[Kit]:
    async with open_rpc(env.url) as rpc:
        signers = [LocalSigner(key_bytes(k)) for k in env.keys[:4]]
        carol, alice, bob, oracle = signers

        def client(i: int, at: bytes) -> AdjudicatorClient:
            return AdjudicatorClient(rpc, at, TransactionSender(rpc, env.keys[i]),
                                     receipt_timeout=T)

        yield Kit(
            env=env, rpc=rpc, alice=alice, bob=bob, carol=carol, oracle=oracle,
            a=client(1, env.adjudicator), b=client(2, env.adjudicator),
            c=client(0, env.adjudicator), a_on_b=client(1, env.adjudicator_b),
        )


def addr(text: str) -> bytes:
    return address(text)


# ---- helpers of the extended suites (vectors, payoff parity, threats, invariants) ------------

import time  # noqa: E402

import httpx  # noqa: E402
from eth_abi.abi import encode as _abi_encode  # noqa: E402

from adjudicator import errors as _errors  # noqa: E402
from adjudicator.abi import ContractAbi  # noqa: E402
from adjudicator.rpc_errors import ExecutionReverted, RpcError, map_rpc_error  # noqa: E402
from channels.core.hashing import keccak256 as _keccak256  # noqa: E402

UINT128_MAX = 2**128 - 1
UINT256_MAX = 2**256 - 1


def artifact_abi(name: str) -> ContractAbi:
    return tokens.load_artifact(name)[0]


async def deploy_artifact(kit: Kit, name: str, *ctor_args: object) -> bytes:
    """Deploy ``build/<name>.json`` from carol's key; returns the address (20 bytes)."""
    abi, code = tokens.load_artifact(name)
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    addr_hex = await sender.deploy(code, abi.encode_constructor(*ctor_args), timeout=T)
    return bytes.fromhex(addr_hex[2:])


class SyncChain:
    """Blocking JSON-RPC on the module's node, for sync (Hypothesis) tests.

    ``call``/``send`` raise the adjudicator's typed :class:`ContractError` on a revert (send
    simulates first, like the client). ``send`` uses ``eth_sendTransaction`` from anvil's
    unlocked dev accounts (the kit's keys), with a fixed gas limit.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=30.0)
        self._ids = iter(range(1, 10**9))

    def close(self) -> None:
        self.http.close()

    def rpc(self, method: str, params: list[object] | None = None) -> object:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                   "params": params or []}
        body = self.http.post(self.url, json=payload).json()
        if "error" in body:
            raise map_rpc_error(body["error"], method)
        return body["result"]

    def batch(self, requests: list[tuple[str, list[object]]]) -> list[object]:
        """One HTTP round trip; each entry is the result or the mapped ``RpcError``."""
        if not requests:
            return []
        first = next(self._ids)
        payload = [{"jsonrpc": "2.0", "id": first + i, "method": m, "params": p}
                   for i, (m, p) in enumerate(requests)]
        for _ in range(len(requests)):
            next(self._ids)
        by_id = {r["id"]: r for r in self.http.post(self.url, json=payload).json()}
        out: list[object] = []
        for i, (method, _p) in enumerate(requests):
            r = by_id[first + i]
            out.append(map_rpc_error(r["error"], method) if "error" in r else r["result"])
        return out

    @staticmethod
    def _tx(to: bytes, data: bytes, sender: bytes | None, value: int) -> dict[str, str]:
        tx = {"to": "0x" + to.hex(), "data": "0x" + data.hex(), "value": hex(value)}
        if sender is not None:
            tx["from"] = "0x" + sender.hex()
        return tx

    @staticmethod
    def _result(res: object) -> bytes | _errors.ContractError:
        if isinstance(res, ExecutionReverted):
            return _errors.from_chain_error(res)
        if isinstance(res, RpcError):
            raise res
        return bytes.fromhex(str(res)[2:])

    def call(self, to: bytes, data: bytes, *, sender: bytes | None = None,
             value: int = 0) -> bytes:
        try:
            out = self.rpc("eth_call", [self._tx(to, data, sender, value), "latest"])
        except ExecutionReverted as exc:
            raise _errors.from_chain_error(exc) from exc
        return bytes.fromhex(str(out)[2:])

    def call_many(self, to: bytes, datas: list[bytes], *, sender: bytes | None = None
                  ) -> list[bytes | _errors.ContractError]:
        """Batched ``eth_call``s: the output bytes, or the typed error of a revert."""
        res = self.batch([("eth_call", [self._tx(to, d, sender, 0), "latest"]) for d in datas])
        return [self._result(r) for r in res]

    def send(self, sender: bytes, to: bytes, data: bytes, *, value: int = 0,
             gas: int = 3_000_000) -> dict[str, object]:
        """Simulate (typed error on revert), send, return the mined receipt (automine)."""
        self.call(to, data, sender=sender, value=value)
        tx = self._tx(to, data, sender, value) | {"gas": hex(gas)}
        tx_hash = self.rpc("eth_sendTransaction", [tx])
        receipt = None
        for _ in range(500):  # automine: normally there at once; poll briefly if not yet
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                break
            time.sleep(0.01)
        assert isinstance(receipt, dict) and receipt["status"] == "0x1", (tx_hash, receipt)
        return receipt

    def timestamp(self) -> int:
        block = self.rpc("eth_getBlockByNumber", ["latest", False])
        assert isinstance(block, dict)
        return int(str(block["timestamp"]), 16)

    def warp(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")


def raw_state_digest(domain: eip712.Domain, fields: tuple[int | bytes | bool, ...]) -> bytes:
    """EIP-712 digest of a State given as its 12 raw ABI fields (uint256 values may exceed the
    core model's uint128 bounds: for overflow tests)."""
    types = ["bytes32", "uint64", "uint256", "uint256", "uint256", "uint256", "uint256",
             "uint256", "uint256", "bytes32", "uint32", "bool"]
    struct_hash = _keccak256(eip712.STATE_TYPEHASH + _abi_encode(types, list(fields)))
    return eip712.digest(domain, struct_hash)


def sign_raw_state(
    ch: Channel, fields: tuple[int | bytes | bool, ...]
) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """Both participants' signatures of raw State ``fields``, as the contract's Signature tuples."""
    d = raw_state_digest(ch.domain, fields)
    sig0, sig1 = (signature_tuple(signer.sign_digest(d)) for signer in ch.signers)
    return sig0, sig1


def deploy_artifact_sync(env: Env, name: str, *ctor_args: object) -> bytes:
    """``deploy_artifact`` for sync (module-scoped) fixtures."""

    async def go() -> bytes:
        async with open_kit(env) as k:
            return await deploy_artifact(k, name, *ctor_args)

    return trio.run(go)


async def outstanding_holdings(kit: Kit, asset: bytes, channels: list[Channel],
                               accounts: tuple[bytes, ...] = ()) -> int:
    """What the adjudicator owes in ``asset`` for ``channels`` (deposits less executed
    withdrawals while open or disputed, the collateral still locked once concluded) plus the
    pull credits of ``accounts``."""
    total = 0
    for ch in channels:
        view = await kit.a.channel(ch.id)
        if view.status.name == "CONCLUDED":
            total += view.locked_remaining
        else:
            total += sum(view.deposits) - sum(view.withdrawn)
    for who in accounts:
        total += await kit.a.credits(asset, who)
    return total
