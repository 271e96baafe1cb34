"""Issue 12: a declared peer cannot push the desk past ANY of its terms or risk limits, over real
TCP and anvil; the refusal names the term or limit and the figures, and both desks' channels,
stores and wallets are untouched. The limits bind the desk's own proposals too: refused before
anything is signed or sent.

Bob's terms and limits come from a desk config in the token's units (channels/cli/peer_terms.py),
scaled by the decimals Bob's desk reads from the token on the chain (6): what an operator writes
is what the node enforces. One anvil for the module; the terms share two channels, the limits
one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels.cli import load_config
from channels.cli.desk_trust import desk_trust
from channels.core import eip712
from channels.core.consent import ConsentRefused
from channels.core.model import Amount, Attestation, PositionId, symbol, to_checksum
from channels.core.options import OpenOption, Unwind
from channels.core.signing import LocalSigner
from channels.core.terms import TermsRefused
from channels.core.trust import Peer, Trust
from channels.runtime.channel import Channel
from channels.runtime.node import Node, UpdateRefusedError

from ._helpers import assert_unchanged, desk, propose, snapshot
from .conftest import Desks

TOKEN = 10**6  # the test token has 6 decimals
QTY = 10**18  # one whole option
PRICE = 10**8
DAY = 86_400


def bob_config(tmp_path: Path, desks: Desks, carol: bytes) -> Path:
    """Bob's desk: Alice may open two channels, and Bob consents in advance to every trade she
    asks of him, so only the terms and limits below stand between her and his funds. Carol is
    declared but may not propose channels."""
    path = tmp_path / "bob.toml"
    path.write_text(f"""
[node]
store = "bob.sqlite"

[chain]
rpc_url = "{desks.url}"
adjudicator = "{to_checksum(desks.adjudicator)}"
asset = "{to_checksum(desks.token)}"
oracle = "{to_checksum(desks.oracle.address)}"

[peers.alice]
address = "{to_checksum(desks.alice.address)}"
max_channels = 2
min_challenge_period = "1h"
max_challenge_period = "7d"
approve = ["pay", "buy", "write", "unwind"]
max_open_positions = 3
min_time_to_expiry = "2d"
max_expiry_horizon = "30d"

[peers.alice.assets.token]
address = "{to_checksum(desks.token)}"
max_deposit = "100"
max_total_deposit = "150"
max_collateral_locked = "20"
max_loss = "5"
max_premium_per_day = "1"
max_notional = "1000"
max_notional_by_underlying = {{ ETH-USD = "100" }}

[peers.carol]
address = "{to_checksum(carol)}"
accept_channels = false
""")
    return path


def to_bob(desks: Desks) -> Trust:
    return Trust(peers=(Peer("bob", desks.bob.address),))


async def wallets(desks: Desks, *who: bytes) -> list[tuple[int, int]]:
    async with open_rpc(desks.url) as rpc:
        return [
            (await balance_of(rpc, desks.token, w), await rpc.get_balance("0x" + w.hex()))
            for w in who
        ]


async def test_a_declared_peer_cannot_push_the_desk_past_any_of_its_terms(
    desks: Desks, tmp_path: Path
) -> None:
    carol = LocalSigner.generate()
    trust = await desk_trust(load_config(bob_config(tmp_path, desks, carol.address)))
    with trio.fail_after(120):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=trust) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=to_bob(desks)) as alice,
            desk(desks, carol, tmp_path / "c.sqlite", trust=to_bob(desks)) as carol_desk,
        ):
            port = bob.listen_port
            assert port is not None
            people = (desks.alice.address, desks.bob.address, carol.address)

            async def refused(opener: Node, rule: str, reason: str, **attempt: object) -> None:
                """The proposal is refused naming ``rule`` and the figures; nothing changed."""
                channels = [c.id for c in alice.channels], [c.id for c in bob.channels]
                states = [c.latest for c in (*alice.channels, *bob.channels)]
                before = await wallets(desks, *people)
                with pytest.raises(TermsRefused) as info:
                    await propose(opener, desks, port, **attempt)  # type: ignore[arg-type]
                assert info.value.rule == rule, info.value
                assert info.value.reason == reason
                assert ([c.id for c in alice.channels], [c.id for c in bob.channels]) == channels
                assert [c.latest for c in (*alice.channels, *bob.channels)] == states
                assert carol_desk.channels == []
                assert await wallets(desks, *people) == before

            # Assets allowed: ETH is not in Bob's terms with Alice, only the token.
            eth = "0x" + "00" * 20
            await refused(
                alice, "AssetNotAccepted", f"asset {eth} is not in our terms",
                ask=TOKEN, asset=bytes(20),
            )  # fmt: skip
            # Trusted oracles only: issue 12's attack names Alice's own key as the oracle.
            await refused(
                alice, "OracleNotTrusted",
                f"oracle 0x{desks.alice.address.hex()} is not trusted",
                ask=TOKEN, oracle=desks.alice.address,
            )  # fmt: skip
            # Challenge period bounds, below and above.
            for period in (60, 30 * DAY):
                await refused(
                    alice, "ChallengePeriodOutOfBounds",
                    f"challenge period {period}s is outside [3600s, 604800s]",
                    ask=TOKEN, challenge_period=period,
                )  # fmt: skip
            # Max deposit per channel: "100" tokens.
            await refused(
                alice, "DepositAboveTerms",
                "asked to deposit 200; we deposit at most 100 (per channel 100, left of our "
                "total 150; in the asset's units)",
                ask=200 * TOKEN,
            )  # fmt: skip
            # Within the terms: Bob funds exactly what was asked.
            bob_tokens = (await wallets(desks, desks.bob.address))[0][0]
            await propose(alice, desks, port, ask=100 * TOKEN, mine=100 * TOKEN)
            # Max total deposit with Alice: "150" tokens, 100 of them locked already.
            await refused(
                alice, "DepositAboveTerms",
                "asked to deposit 100; we deposit at most 50 (per channel 100, left of our "
                "total 50; in the asset's units)",
                ask=100 * TOKEN,
            )  # fmt: skip
            await propose(alice, desks, port, ask=50 * TOKEN, mine=TOKEN)
            assert (await wallets(desks, desks.bob.address))[0][0] == bob_tokens - 150 * TOKEN
            # Max channels with Alice: 2.
            await refused(
                alice, "TooManyChannels", "already 2 channels, at most 2", ask=0, mine=TOKEN
            )
            # Carol is declared (she may connect) but may not propose channels.
            await refused(
                carol_desk, "PeerNotAccepted", "we accept no channel proposals from this peer",
                ask=0,
            )  # fmt: skip
            assert len(bob.channels) == len(alice.channels) == 2


async def test_a_declared_peer_cannot_push_the_desk_past_any_of_its_risk_limits(
    desks: Desks, tmp_path: Path
) -> None:
    """Alice asks, Bob's standing approval consents, and each of Bob's seven limits still refuses
    what would take a figure past it; the same trade proposed by Bob himself is refused on his
    side before he signs anything."""
    trust = await desk_trust(load_config(bob_config(tmp_path, desks, bytes(range(20)))))
    with trio.fail_after(180):
        async with (
            desk(desks, desks.bob, tmp_path / "b.sqlite", listen=0, trust=trust) as bob,
            desk(desks, desks.alice, tmp_path / "a.sqlite", trust=to_bob(desks)) as alice,
        ):
            assert bob.listen_port is not None
            ch = await propose(alice, desks, bob.listen_port, ask=100 * TOKEN, mine=100 * TOKEN)
            bch = bob.channel(ch.id)
            await bch.wait_version(ch.version)
            now = alice.now()
            # The oracle's last ETH-USD price, as Bob's desk knows it: 3,100.
            price = Attestation(symbol("ETH-USD"), now, 3100 * PRICE)  # type: ignore[arg-type]
            signed = desks.oracle.sign_digest(eip712.attestation_digest(bch.domain, price))
            bob.add_attestation(price, signed)

            def option(
                kind: str, underlying: str, strike: int, quantity: int, collateral: int, *,
                writer: Channel, expiry: int = now + 7 * DAY,
            ) -> dict[str, object]:  # fmt: skip
                return dict(
                    kind=kind, underlying=underlying, strike=strike * PRICE, expiry=expiry,
                    quantity=quantity, collateral=collateral, writer=writer.our_index,
                )  # fmt: skip

            async def accepted(premium: int, **terms: object) -> PositionId:
                position = ch.new_position(**terms)  # type: ignore[arg-type]
                done = await ch.trade(OpenOption(position, Amount(premium)))
                await bch.wait_version(done.version)
                return position.id

            async def unchanged_after(
                attempt: Callable[[], Awaitable[object]], error: type[Exception], reason: str
            ) -> None:
                """``attempt`` is refused naming the limit and the figures (a regular expression
                for the seconds of time limits); both desks are as before."""
                before = await snapshot(alice, desks, ch.id), await snapshot(bob, desks, ch.id)
                with pytest.raises(error) as info:
                    await attempt()
                assert getattr(info.value, "rule", None) == "LimitExceeded", info.value
                text = getattr(info.value, "reason", None) or str(info.value)
                assert re.fullmatch(reason, text), text
                await assert_unchanged(alice, desks, ch.id, before[0])
                await assert_unchanged(bob, desks, ch.id, before[1])

            async def both_refused(
                reason: str, premium: int, **terms: object
            ) -> None:  # fmt: skip
                """Alice asks it (Bob refuses to countersign); Bob proposes the same trade
                himself (refused locally, before he signs)."""
                position = ch.new_position(**terms)  # type: ignore[arg-type]
                await unchanged_after(
                    lambda: ch.trade(OpenOption(position, Amount(premium))),
                    UpdateRefusedError,
                    reason,
                )
                own = bch.new_position(**terms)  # type: ignore[arg-type]
                await unchanged_after(
                    lambda: bch.trade(OpenOption(own, Amount(premium))), ConsentRefused, reason
                )

            bob_writes = {"writer": bch}
            bob_buys = {"writer": ch}
            # Within every limit. T1: locked 5, a loss of 1 at 3,100; T2: locked 15 in all,
            # still a loss of 1 (it pays nothing at 3,100): counted by collateral, it would be
            # 15, past max_loss "5"; the desk takes the oracle's last price.
            t1 = option("call", "ETH-USD", 3000, QTY // 100, 5 * TOKEN, **bob_writes)
            await accepted(TOKEN // 10, **t1)
            t2 = option("put", "ETH-USD", 2000, QTY // 100, 10 * TOKEN, **bob_writes)
            t2_id = await accepted(TOKEN // 10, **t2)

            # min_time_to_expiry "2d" and max_expiry_horizon "30d".
            soon = option("call", "ETH-USD", 3000, QTY // 1000, TOKEN // 10, expiry=now + DAY,
                          **bob_writes)  # fmt: skip
            await both_refused(
                r"min_time_to_expiry 172800s: position \d+ expires in 86\d\d\ds", 1, **soon
            )
            far = dict(soon, expiry=now + 60 * DAY)
            await both_refused(
                r"max_expiry_horizon 2592000s: position \d+ expires in 518\d\d\d\ds", 1, **far
            )
            # max_collateral_locked "20": 15 locked, 6 more.
            await both_refused(
                r"max_collateral_locked 20: locked would be 21"
                r" \(smallest units: 20000000, 21000000\)", 1,
                **option("put", "ETH-USD", 2000, QTY // 1000, 6 * TOKEN, **bob_writes),
            )  # fmt: skip
            # max_loss "5" at the oracle's last price: a call at 2,500 pays 6 at 3,100, capped
            # by its collateral of 5 (locked would be exactly 20: within its limit).
            await both_refused(
                r"max_loss 5: the loss at the last prices would be 6"
                r" \(smallest units: 5000000, 6000000\)", 1,
                **option("call", "ETH-USD", 2500, QTY // 100, 5 * TOKEN, **bob_writes),
            )  # fmt: skip
            # max_notional per underlying: ETH-USD's own "100" (50 held), then the default
            # "1000" for BTC-USD.
            await both_refused(
                r"max_notional 100: notional in ETH-USD would be 110"
                r" \(smallest units: 100000000, 110000000\)", 1,
                **option("call", "ETH-USD", 3000, QTY // 50, TOKEN // 10, **bob_writes),
            )  # fmt: skip
            await both_refused(
                r"max_notional 1000: notional in BTC-USD would be 1200"
                r" \(smallest units: 1000000000, 1200000000\)", 1,
                **option("call", "BTC-USD", 60_000, QTY // 50, TOKEN // 10, **bob_writes),
            )  # fmt: skip
            # max_premium_per_day "1": Bob buys for 1.5 in one go.
            alice_writes = option("call", "ETH-USD", 4000, QTY // 1000, TOKEN // 10, **bob_buys)
            await both_refused(
                r"max_premium_per_day 1: premium paid in 24h would be 1.5"
                r" \(smallest units: 1000000, 1500000\)",
                3 * TOKEN // 2, **alice_writes,
            )  # fmt: skip
            # T3: Bob buys for 0.6 (within the day's 1) and holds a third position.
            await accepted(6 * TOKEN // 10, **alice_writes)
            # max_open_positions 3.
            await both_refused(
                "max_open_positions 3: open positions would be 4", 1,
                **option("put", "ETH-USD", 100, QTY // 100, TOKEN // 10, **bob_writes),
            )  # fmt: skip
            # T2 is unwound (Bob gets his collateral back): two positions again, but 0.6 of the
            # day's premium is spent, so 0.5 more is past the limit.
            done = await ch.trade(Unwind(t2_id, Amount(0)))
            await bch.wait_version(done.version)
            await both_refused(
                r"max_premium_per_day 1: premium paid in 24h would be 1.1"
                r" \(smallest units: 1000000, 1100000\)",
                TOKEN // 2, **alice_writes,
            )  # fmt: skip
            assert bch.state.position_count == 2 and bch.state == ch.state
