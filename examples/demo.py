"""The two-desk demo (``make demo``).

A local chain with the adjudicator and a test token; two desks, each a ``channels node`` process
of its own, driven through their control sockets as a desk's tools would. They fund a channel,
trade options both ways (premiums, collateral, an unwind, a settlement with the oracle's signed
price), then desk B goes offline and tries to cheat with an old state; desk A's watcher refutes it
and the adjudicator pays out the latest state. A summary table ends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adjudicator.client import connect_adjudicator
from adjudicator.devchain import free_port
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import control
from channels.core.model import to_checksum
from channels.store import Store
from channels.testing.devnet import PRICE, UNIT, USD, DevNetwork, dev_network

PERIOD = 600  # the channel's challenge period: 10 minutes of chain time, fast-forwarded here
NAMES = {
    "deposit": "deposit",
    "conclude": "cooperative close",
    "register": "register",  # the first starts the dispute, a later one refutes it
    "checkpoint": "checkpoint",
    "concludeAfterTimeout": "conclude after timeout + payouts",
    "settlePosition": "settle a position",
    "releaseUnsettled": "release a position",
    "approve": "token approve",
}


PAYMENTS = 200  # one at a time, both ways: enough for a rate, short enough for the demo
CONSOLE = Console(stderr=True)


def say(text: str = "") -> None:
    print(text, flush=True)


class Phase:
    """Shows that a long step is under way: a spinner on a terminal, one line otherwise."""

    def __init__(self, label: str) -> None:
        self.status = CONSOLE.status(label) if CONSOLE.is_terminal else None
        if self.status is not None:
            self.status.start()
        else:
            print(f"... {label}", file=sys.stderr, flush=True)

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()

    def done(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def usd(amount: int) -> str:
    return f"{amount / USD:,.2f}"


#: Each desk's quote table: the firm quotes its node gives on its own (premium and collateral
#: per whole option). Alice sells 3,000 calls; Bob sells 2,800 puts.
QUOTES = {
    "alice": ("call", "3000", 75 * USD, 1_000 * USD),
    "bob": ("put", "2800", 90 * USD, 2_800 * USD),
}


def describe(position: dict[str, Any]) -> str:
    """``2 ETH-USD call @ 3,000`` from a position as the control socket shows it."""
    quantity = int(position["quantity"]) / UNIT
    strike = int(position["strike"]) // PRICE
    return f"{quantity:g} {position['underlying']} {position['kind']} @ {strike:,}"


def premium_of(quote: dict[str, Any], position: dict[str, Any]) -> int:
    """The premium paid for a filled quote: its price per unit times the quantity."""
    return int(quote["price"]) * int(position["quantity"]) // UNIT


def write_config(
    workdir: Path,
    name: str,
    net: DevNetwork,
    port: int | None,
    peer: tuple[str, bytes, int | None],
    approve: list[str],
) -> Path:
    """A desk's config: it declares its one peer, the terms it accepts with it (the dev token and
    oracle, a 10,000 USD deposit, a challenge period of at least PERIOD) and the value-moving
    trades its operator consents to in advance (``approve``); nothing else gets in."""
    listen = f'listen_host = "127.0.0.1"\nlisten_port = {port}\n' if port else ""
    peer_name, peer_address, peer_port = peer
    where = f'host = "127.0.0.1"\nport = {peer_port}\n' if peer_port else ""
    kind, strike, price, collateral = QUOTES[name]
    path = workdir / f"{name}.toml"
    path.write_text(
        f'[node]\nkey_env = "{name.upper()}_KEY"\nstore = "{name}.sqlite"\n'
        f'control = "{name}.sock"\nlog_level = "warning"\n{listen}\n'
        f'[chain]\nrpc_url = "{net.url}"\nadjudicator = "{to_checksum(net.adjudicator)}"\n'
        f'poll_interval = 0.1\nasset = "{to_checksum(net.token)}"\n'
        f'oracle = "{to_checksum(net.oracle.address)}"\n\n'
        f'[peers.{peer_name}]\naddress = "{to_checksum(peer_address)}"\n{where}'
        f"max_channels = 1\nmin_challenge_period = {PERIOD}\napprove = {json.dumps(approve)}\n\n"
        f'[peers.{peer_name}.assets.usd]\naddress = "{to_checksum(net.token)}"\n'
        f'max_deposit = "10000"\n\n'
        f"[quotes]\nvalid_for = 60\n\n"
        f'[[quotes.table]]\nunderlying = "ETH-USD"\nkind = "{kind}"\nstrike = "{strike}"\n'
        f'side = "buy"\nprice_raw = {price}\ncollateral_raw = {collateral}\n'
    )
    return path


@contextmanager
def desk_process(workdir: Path, name: str, key: bytes) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, **{f"{name.upper()}_KEY": key.hex()})
    config = workdir / f"{name}.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "channels.cli", "node", "--config", str(config)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"{name}.log", "wb"),
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_control(sock: Path) -> None:
    with trio.fail_after(30):
        while True:
            try:
                await control.call(sock, "ping")
                return
            except (OSError, control.ControlError, control.NodeNotRunning):
                await trio.sleep(0.1)


async def gas_table(net: DevNetwork) -> list[tuple[str, int]]:
    """gasUsed of every transaction sent to the adjudicator, named by its function."""
    from adjudicator.client import adjudicator_abi

    abi = adjudicator_abi()
    selectors = {}
    for name in NAMES:
        try:
            selectors[abi.function(name).selector] = NAMES[name]
        except Exception:
            continue
    rows: list[tuple[str, int]] = []
    async with open_rpc(net.url) as rpc:
        head = await rpc.block_number()
        for number in range(1, head + 1):
            block = await rpc.request("eth_getBlockByNumber", [hex(number), True])
            for tx in block["transactions"]:
                if (tx.get("to") or "").lower() != "0x" + net.adjudicator.hex():
                    continue
                data = bytes.fromhex(tx["input"][2:])
                name = selectors.get(data[:4])
                if name is None:
                    continue
                receipt = await rpc.get_transaction_receipt(tx["hash"])
                assert receipt is not None
                if name == "register":  # the first starts the dispute, a later one refutes it
                    seen = any(n.startswith(("register", "refute")) for n, _ in rows)
                    name = "refute (newer state)" if seen else "register (dispute)"
                rows.append((name, receipt.gas_used))
    return rows


async def run(workdir: Path) -> None:
    started = time.perf_counter()
    chain_phase = Phase("starting a local chain, deploying the adjudicator and a test token")
    async with dev_network() as net:
        chain_phase.done()
        alice_key, bob_key = net.desks
        say(f"local chain {net.url}, adjudicator {to_checksum(net.adjudicator)}")
        a_sock, b_sock = workdir / "alice.sock", workdir / "bob.sock"
        b_port = free_port()
        # The options trade as fills of firm quotes (the quote desk decides); payments to a desk
        # and settlements need nobody; alice lets bob unwind the put she holds.
        write_config(workdir, "alice", net, None, ("bob", bob_key.address, b_port), ["unwind"])
        write_config(workdir, "bob", net, b_port, ("alice", alice_key.address, None), [])
        async with open_rpc(net.url) as rpc:
            wallets0 = [await balance_of(rpc, net.token, k.address) for k in (alice_key, bob_key)]
        with desk_process(workdir, "alice", alice_key.secret):
            with desk_process(workdir, "bob", bob_key.secret):
                with Phase("starting two desk processes"):
                    await wait_control(a_sock)
                    await wait_control(b_sock)
                say("two desk processes up: alice (leader) and bob")
                opening = Phase("opening the channel: both deposit, then confirmations")
                row = await control.call(
                    a_sock,
                    "open",
                    peer_host="127.0.0.1",
                    peer_port=b_port,
                    peer_address="0x" + bob_key.address.hex(),
                    asset="0x" + net.token.hex(),
                    deposit=10_000 * USD,
                    peer_deposit=10_000 * USD,
                    oracle="0x" + net.oracle.address.hex(),
                    challenge_period=PERIOD,
                )
                opening.done()
                cid = row["id"]
                deposits = f"{usd(row['our_balance'])} / {usd(row['their_balance'])}"
                say(f"channel {cid[:18]}… funded on chain: {deposits} USD (alice / bob)")
                # Options trade as desks trade them OTC: a request for a firm quote, the quoting
                # desk's signed quote (from its config's quote table), one update to fill it.
                call_quote = quote = await control.call(
                    b_sock,
                    "request_quote",
                    channel=cid,
                    kind="call",
                    underlying="ETH-USD",
                    strike=3_000 * PRICE,
                    expiry_in=3 * PERIOD,
                    side="buy",
                    quantity=2 * UNIT,
                )
                say(
                    f"bob asks alice for a quote: 2 ETH-USD calls at 3,000; alice's signed quote "
                    f"{quote['quote_id'][:12]}… says {usd(quote['price'])} USD per call"
                )
                call = await control.call(b_sock, "fill", channel=cid, quote=quote["quote_id"])
                quote = await control.call(
                    a_sock,
                    "request_quote",
                    channel=cid,
                    kind="put",
                    underlying="ETH-USD",
                    strike=2_800 * PRICE,
                    expiry_in=3 * PERIOD,
                    side="buy",
                    quantity=UNIT,
                )
                put = await control.call(a_sock, "fill", channel=cid, quote=quote["quote_id"])
                call_premium = premium_of(call_quote, call["position"])
                put_premium = premium_of(quote, put["position"])
                say(
                    f"bob filled it: alice wrote {describe(call['position'])} to bob "
                    f"(premium {usd(call_premium)} USD)"
                )
                say(
                    f"alice filled bob's quote: bob wrote {describe(put['position'])} to alice "
                    f"(premium {usd(put_premium)} USD)"
                )
                trades = PAYMENTS
                async with (
                    control.connect_control(a_sock) as a_ctl,
                    control.connect_control(b_sock) as b_ctl,
                ):
                    with Progress(
                        TextColumn("payments both ways"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TimeElapsedColumn(),
                        console=CONSOLE,
                        transient=True,
                        disable=not CONSOLE.is_terminal,
                    ) as progress:
                        task = progress.add_task("pay", total=trades)
                        t0 = time.perf_counter()
                        for i in range(trades):
                            await (a_ctl if i % 2 else b_ctl).call("pay", channel=cid, amount=USD)
                            progress.advance(task)
                        rate = trades / (time.perf_counter() - t0)
                say(
                    f"{trades} payments both ways, one at a time, each durable on both desks "
                    f"before the next: {rate:,.0f} updates/s"
                )
                unwind_share = 35 * USD
                await control.call(
                    b_sock,
                    "unwind",
                    channel=cid,
                    position=put["position"]["id"],
                    holder_share=unwind_share,
                )
                say(
                    f"bob's put unwound early: alice, its holder, takes {usd(unwind_share)} USD "
                    "of the collateral"
                )
                await net.advance(3 * PERIOD)
                expiry = call["position"]["expiry"]
                with Phase("waiting until both desks see the calls' expiry on chain"):
                    with trio.fail_after(30):
                        for sock in (a_sock, b_sock):
                            while (await control.call(sock, "ping"))["now"] < expiry:
                                await trio.sleep(0.1)
                before_settle = (await control.call(b_sock, "status"))[0]["our_balance"]
                settle_price = 3_250 * PRICE
                attestation, signature = net.attest("ETH-USD", expiry, settle_price)
                settled = await control.call(
                    b_sock,
                    "settle",
                    channel=cid,
                    position=call["position"]["id"],
                    price=attestation.price,
                    signature="0x" + signature.hex(),
                )
                payoff = settled["our_balance"] - before_settle
                say(
                    f"expiry: the oracle signs {settle_price // PRICE:,}; bob's calls settle off "
                    f"chain ({usd(payoff)} USD to bob)"
                )
                # Bob (the follower) has the new state once he countersigned it; Alice stores it
                # when his signature reaches her.
                with trio.fail_after(10):
                    while (status := (await control.call(a_sock, "status"))[0])[
                        "version"
                    ] < settled["version"]:
                        await trio.sleep(0.05)
                honest = status
                say(f"latest state: version {status['version']}")
            # Bob's process is gone. He registers an old state in which he was richer.
            store = Store.open(
                workdir / "bob.sqlite",
                identity=bob_key.address,
                chain_id=net.chain_id,
                adjudicator=net.adjudicator,
            )
            try:
                cid_bytes = bytes.fromhex(cid[2:])
                history = list(store.history(cid_bytes))  # type: ignore[arg-type]
                params = store.load_channel(cid_bytes).params  # type: ignore[arg-type]
            finally:
                store.close()
            old = max(history[:-1], key=lambda u: u.signed.state.balances[1]).signed
            async with connect_adjudicator(net.url, net.adjudicator, bob_key.secret) as bob_chain:
                await bob_chain.register(params, old)
                say(
                    f"bob goes offline and registers his old version {old.state.version} "
                    f"(he would get {usd(old.state.balances[1])} USD)"
                )
                with Phase("waiting for alice's watcher"), trio.fail_after(30):
                    while (await bob_chain.channel(cid_bytes)).version == old.state.version:
                        await trio.sleep(0.1)
                view = await bob_chain.channel(cid_bytes)
                say(f"alice's watcher refuted it with version {view.version}")
                await net.advance(PERIOD + 1)
                with Phase("challenge period fast-forwarded: waiting for the payout"):
                    with trio.fail_after(30):
                        while (await bob_chain.channel(cid_bytes)).status != 2:
                            await trio.sleep(0.1)
                say("challenge period over: the adjudicator concluded the latest state")
        async with open_rpc(net.url) as rpc:
            wallets1 = [await balance_of(rpc, net.token, k.address) for k in (alice_key, bob_key)]
        with Phase("reading the gas of every on-chain step"):
            gas = await gas_table(net)
    say("")
    say(f"{'position':<26}{'writer -> holder':<18}{'premium':>9}  outcome")
    say(
        f"{describe(call['position']):<26}{'alice -> bob':<18}{usd(call_premium):>9}  "
        f"settled off chain at {settle_price // PRICE:,}: {usd(payoff)} to bob"
    )
    say(
        f"{describe(put['position']):<26}{'bob -> alice':<18}{usd(put_premium):>9}  "
        f"unwound before expiry: {usd(unwind_share)} to alice"
    )
    say("")
    say(f"{'desk':<8}{'channel balance':>18}{'wallet change':>16}")
    for i, name in enumerate(("alice", "bob")):
        balance = honest["our_balance"] if i == 0 else honest["their_balance"]
        say(f"{name:<8}{usd(balance):>18}{usd(wallets1[i] - wallets0[i]):>16}")
        # The adjudicator paid out exactly the latest state, whatever Bob registered.
        assert wallets1[i] - wallets0[i] == balance - 10_000 * USD, "payout != latest state"
    say("")
    say(f"{'on-chain step':<36}{'gas':>10}")
    for name, used in gas:
        say(f"{name:<36}{used:>10,}")
    say("")
    say(
        f"off-chain: {rate:,.0f} updates/s one at a time through the control sockets; "
        f"demo finished in {time.perf_counter() - started:.1f} s"
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="optchan-demo-") as tmp:
        trio.run(run, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
