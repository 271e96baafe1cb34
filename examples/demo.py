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

import trio

from adjudicator.client import connect_adjudicator
from adjudicator.devchain import free_port
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of
from channels import control
from channels.store import Store
from channels.testing.devnet import PRICE, UNIT, USD, DevNetwork, dev_network

PERIOD = 600  # the channel's challenge period: 10 minutes of chain time, fast-forwarded here
NAMES = {
    "deposit": "deposit",
    "conclude": "cooperative close",
    "register": "register (dispute)",
    "checkpoint": "checkpoint",
    "concludeAfterTimeout": "conclude after timeout + payouts",
    "settlePosition": "settle a position",
    "releaseUnsettled": "release a position",
    "approve": "token approve",
}


def say(text: str = "") -> None:
    print(text, flush=True)


def usd(amount: int) -> str:
    return f"{amount / USD:,.2f}"


#: Each desk's quote table: the firm quotes its node gives on its own (premium and collateral
#: per whole option). Alice sells 3,000 calls; Bob sells 2,800 puts.
QUOTES = {
    "alice": ("call", "3000", 75 * USD, 1_000 * USD),
    "bob": ("put", "2800", 90 * USD, 2_800 * USD),
}


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
        f'[chain]\nrpc_url = "{net.url}"\nadjudicator = "0x{net.adjudicator.hex()}"\n'
        f'poll_interval = 0.1\nasset = "0x{net.token.hex()}"\n'
        f'oracle = "0x{net.oracle.address.hex()}"\n\n'
        f'[peers.{peer_name}]\naddress = "0x{peer_address.hex()}"\n{where}'
        f"max_deposit = {10_000 * USD}\nmax_channels = 1\nmin_challenge_period = {PERIOD}\n"
        f"approve = {json.dumps(approve)}\n\n"
        f"[quotes]\nvalid_for = 60\n\n"
        f'[[quotes.table]]\nunderlying = "ETH-USD"\nkind = "{kind}"\nstrike = "{strike}"\n'
        f'side = "buy"\nprice = {price}\ncollateral = {collateral}\n'
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
                rows.append((name, receipt.gas_used))
    return rows


async def run(workdir: Path) -> None:
    started = time.perf_counter()
    async with dev_network() as net:
        alice_key, bob_key = net.desks
        say(f"local chain {net.url}, adjudicator 0x{net.adjudicator.hex()}")
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
                await wait_control(a_sock)
                await wait_control(b_sock)
                say("two desk processes up: alice (leader) and bob")
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
                cid = row["id"]
                say(f"channel {cid[:18]}… funded on chain: 10,000 USD each")
                # Options trade as desks trade them OTC: a request for a firm quote, the quoting
                # desk's signed quote (from its config's quote table), one update to fill it.
                quote = await control.call(
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
                say("bob filled it: alice wrote 2 ETH-USD calls at 3,000 to bob (premium 150 USD)")
                say(
                    "alice filled bob's quote: bob wrote 1 ETH-USD put at 2,800 to alice "
                    f"(premium {usd(quote['price'])} USD)"
                )
                trades = 1_000
                async with (
                    control.connect_control(a_sock) as a_ctl,
                    control.connect_control(b_sock) as b_ctl,
                ):
                    t0 = time.perf_counter()
                    for i in range(trades):
                        await (a_ctl if i % 2 else b_ctl).call("pay", channel=cid, amount=USD)
                    rate = trades / (time.perf_counter() - t0)
                say(
                    f"{trades} payments both ways, one at a time, each durable on both desks "
                    f"before the next: {rate:,.0f} updates/s"
                )
                await control.call(
                    b_sock,
                    "unwind",
                    channel=cid,
                    position=put["position"]["id"],
                    holder_share=35 * USD,
                )
                say("bob's put unwound early: alice, its holder, takes 35 USD of the collateral")
                await net.advance(3 * PERIOD)
                expiry = call["position"]["expiry"]
                with trio.fail_after(30):  # until both desks have seen the new chain time
                    for sock in (a_sock, b_sock):
                        while (await control.call(sock, "ping"))["now"] < expiry:
                            await trio.sleep(0.1)
                attestation, signature = net.attest("ETH-USD", expiry, 3_250 * PRICE)
                settled = await control.call(
                    b_sock,
                    "settle",
                    channel=cid,
                    position=call["position"]["id"],
                    price=attestation.price,
                    signature="0x" + signature.hex(),
                )
                say("expiry: the oracle signs 3,250; bob's calls settle off chain (500 USD)")
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
                with trio.fail_after(30):
                    while (await bob_chain.channel(cid_bytes)).version == old.state.version:
                        await trio.sleep(0.1)
                view = await bob_chain.channel(cid_bytes)
                say(f"alice's watcher refuted it with version {view.version}")
                await net.advance(PERIOD + 1)
                with trio.fail_after(30):
                    while (await bob_chain.channel(cid_bytes)).status != 2:
                        await trio.sleep(0.1)
                say("challenge period over: the adjudicator concluded the latest state")
        async with open_rpc(net.url) as rpc:
            wallets1 = [await balance_of(rpc, net.token, k.address) for k in (alice_key, bob_key)]
        gas = await gas_table(net)
    say("")
    say(f"{'position':<26}{'writer -> holder':<18}{'premium':>9}  outcome")
    say(
        f"{'2 ETH-USD call @ 3,000':<26}{'alice -> bob':<18}{usd(150 * USD):>9}  "
        f"settled off chain at 3,250: {usd(500 * USD)} to bob"
    )
    say(
        f"{'1 ETH-USD put @ 2,800':<26}{'bob -> alice':<18}{usd(90 * USD):>9}  "
        f"unwound before expiry: {usd(35 * USD)} to alice"
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
