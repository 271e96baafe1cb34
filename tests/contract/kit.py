"""Shared set-up of the contract tests: one deployment per module, channels, signing helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from adjudicator import tokens
from adjudicator.client import AdjudicatorClient
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
