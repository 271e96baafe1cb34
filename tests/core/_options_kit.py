"""The channel, clock, positions and signed settlements the option tests trade with, and
``refused``: a batch that must fail with its rule and leave the book as it was."""

from __future__ import annotations

import pytest

from channels.core import eip712, model
from channels.core.options import (
    Context,
    CreditDeposit,
    Limits,
    Settle,
    apply_trades,
    opening_state,
)
from channels.core.positions import PositionBook

from ._strategies import ALICE, BOB, DOMAIN, ORACLE

ETH = model.symbol("ETH-USD")
BTC = model.symbol("BTC-USD")
NOW = 1_700_000_000
CHALLENGE = 3600
EXPIRY = NOW + 7 * 24 * 3600
FUNDS = 10**6

PARAMS = model.Params(
    chain_id=31337,
    adjudicator=DOMAIN.verifying_contract,
    asset=model.ZERO_ADDRESS,
    asset_decimals=6,
    participants=(ALICE.address, BOB.address),
    challenge_period=CHALLENGE,
    oracle=ORACLE.address,
    nonce=1,
)


def ctx(now: int = NOW, deposits: tuple[int, int] = (FUNDS, FUNDS), **limits: int) -> Context:
    return Context(PARAMS, DOMAIN, now, deposits, Limits(**limits))


def funded(amounts: tuple[int, int] = (FUNDS, FUNDS)) -> tuple[model.State, PositionBook]:
    book = PositionBook()
    s0 = opening_state(PARAMS)
    trades = [CreditDeposit(i, a) for i, a in enumerate(amounts) if a]
    s1 = apply_trades(s0, book, trades, ctx(deposits=amounts), 1)
    return s1, book


def position(
    pid: int = 1,
    kind: model.OptionKind = model.OptionKind.CALL,
    strike: int = 2_000 * 10**8,
    expiry: int = EXPIRY,
    quantity: int = 10**18,
    writer: int = 0,
    collateral: int = 1_000,
    underlying: bytes = ETH,
) -> model.Position:
    return model.Position(pid, underlying, kind, strike, expiry, quantity, writer, collateral)


def attest(price: int, underlying: bytes = ETH, expiry: int = EXPIRY, signer=ORACLE):  # type: ignore[no-untyped-def]
    att = model.Attestation(underlying, expiry, price)
    return att, signer.sign_digest(eip712.attestation_digest(DOMAIN, att))


def settle(pid: int, price: int, **kw: object) -> Settle:
    att, sig = attest(price, **kw)  # type: ignore[arg-type]
    return Settle(pid, att, sig)


def refused(
    state: model.State,
    book: PositionBook,
    trades: list[object],
    error: type[Exception],
    context: Context | None = None,
) -> None:
    """The batch raises ``error`` and, rolled back, leaves the book exactly as it was."""
    before = (book.root, len(book), book.locked, book.snapshot())
    book.begin()
    with pytest.raises(error):
        apply_trades(state, book, trades, context or ctx(), state.version + 1)  # type: ignore[arg-type]
    book.rollback_newest()
    assert (book.root, len(book), book.locked, book.snapshot()) == before
