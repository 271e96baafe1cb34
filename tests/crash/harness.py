"""The crash harness: desk processes on a shared anvil (the invariants they are checked against
are in ``invariants.py``, the zygote's client in ``forking.py``).

Everything here is synchronous (threads read the children's output) so a test can SIGKILL a child
at any moment; chain look-ups run in short ``trio.run`` calls.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from adjudicator.client import adjudicator_abi
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of, mint
from adjudicator.transactions import TransactionSender
from channels.core import eip712
from channels.core.signing import LocalSigner

from .forking import ZygoteChild, child_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DESK = HERE / "desk_process.py"

CHALLENGE_PERIOD = 60
DEPOSIT = 1_000_000

#: Node settings for the children: fast polls, quick reconnects, short trade timeouts.
FAST_SETTINGS: dict[str, Any] = {
    "chain_poll_interval": 0.2,
    "update_timeout": 5.0,
    "open_timeout": 30.0,
    "connect_timeout": 2.0,
    "reconnect_backoff": (0.05, 0.3),
}


# The chain ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    url: str
    chain_id: int
    adjudicator: bytes
    token: bytes
    deployer_key: str
    oracle: bytes

    def domain(self) -> eip712.Domain:
        return eip712.Domain(self.chain_id, self.adjudicator)


def run(fn: Callable[..., Any], *args: Any) -> Any:
    return trio.run(fn, *args)


def new_desk(chain: Chain, tokens: int = 10 * DEPOSIT) -> LocalSigner:
    """A fresh key with gas money and ``tokens`` test tokens: balances belong to one test only."""
    signer = LocalSigner(secrets.token_bytes(32))

    async def fund() -> None:
        async with open_rpc(chain.url) as rpc:
            await rpc.dev.set_balance("0x" + signer.address.hex(), 10**20)
            # The test token's mint is public: each desk mints its own (no shared nonce).
            sender = TransactionSender(rpc, signer.secret)
            await mint(rpc, sender, chain.token, signer.address, tokens)

    run(fund)
    return signer


def token_balances(chain: Chain, *accounts: bytes) -> list[int]:
    async def go() -> list[int]:
        async with open_rpc(chain.url) as rpc:
            return [await balance_of(rpc, chain.token, a) for a in accounts]

    return run(go)


def advance(chain: Chain, seconds: int) -> None:
    async def go() -> None:
        async with open_rpc(chain.url) as rpc:
            await rpc.dev.increase_time(seconds)
            await rpc.dev.evm_mine()

    run(go)


def head(chain: Chain) -> int:
    async def go() -> int:
        async with open_rpc(chain.url) as rpc:
            return await rpc.block_number()

    return run(go)


@dataclass(frozen=True)
class ChainCall:
    block: int
    sender: bytes
    function: str
    version: int | None


def adjudicator_calls(chain: Chain, first_block: int) -> list[ChainCall]:
    """Every transaction to the adjudicator from ``first_block`` on (eth_getBlockByNumber with
    full transactions), with the function its selector names and the state version it carries."""
    abi = adjudicator_abi()
    carrying = {abi.function(n).selector: n for n in ("register", "checkpoint", "conclude")}
    others = {sel: fn.name for sel, fn in abi.functions_by_selector.items()}

    async def go() -> list[ChainCall]:
        out: list[ChainCall] = []
        async with open_rpc(chain.url) as rpc:
            last = await rpc.block_number()
            for number in range(first_block, last + 1):
                block = await rpc.get_block(number, full=True)
                assert block is not None
                for tx in block.transactions:
                    to = tx.get("to")
                    if not to or bytes.fromhex(to[2:]) != chain.adjudicator:
                        continue
                    data = bytes.fromhex((tx.get("input") or tx.get("data") or "0x")[2:])
                    selector = data[:4]
                    version = None
                    if selector in carrying:
                        fn = abi.function(carrying[selector])
                        _params, raw_state, _s0, _s1 = fn.decode_input(data)
                        version = int(raw_state[1])
                        name = carrying[selector]
                    else:
                        name = others.get(selector, "0x" + selector.hex())
                    out.append(ChainCall(number, bytes.fromhex(tx["from"][2:]), name, version))
        return out

    return run(go)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Launching children -------------------------------------------------------------------------

#: Fork desks from a zygote that imported the node once (``zygote.py``); set
#: ``CHANNELS_CRASH_NO_ZYGOTE=1`` to exec a fresh interpreter for every desk instead.
USE_ZYGOTE = os.environ.get("CHANNELS_CRASH_NO_ZYGOTE") != "1"


def _exec_child(config: dict[str, Any], crash_at: str | None, log_path: Path) -> Any:
    with open(log_path, "a") as log:
        return subprocess.Popen(
            [sys.executable, str(DESK), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=child_env(crash_at),
            cwd=str(ROOT),
        )


# Desk processes --------------------------------------------------------------------------------


class DeskDied(AssertionError):
    pass


class Desk:
    """One desk_process child: JSON commands in, JSON replies and events out."""

    def __init__(
        self,
        name: str,
        chain: Chain,
        signer: LocalSigner,
        workdir: Path,
        *,
        listen_port: int | None = None,
        partners: Sequence[bytes] = (),
        crash_at: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.chain = chain
        self.signer = signer
        self.address = signer.address
        self.store_path = workdir / f"{name}.sqlite"
        self.tap_path = workdir / f"{name}.tap.jsonl"
        self.log_path = workdir / f"{name}.log"
        #: Every line the desk printed (replies and events), with the harness's wall-clock time:
        #: what a failure message quotes, and what survives the desk's restarts.
        self.journal_path = workdir / f"{name}.events.jsonl"
        self.listen_port = listen_port
        #: Declared counterparties (tests/partners.py): the desk talks to nobody else.
        self.partners = list(partners)
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.proc: Any = None
        self.starts = 0
        self.lines: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._ids = iter(range(1, 10**9))
        self.start(crash_at)

    # life cycle --------------------------------------------------------------------------------
    def start(self, crash_at: str | None = None, *, wait_ready: bool = True) -> None:
        assert self.proc is None or self.proc.poll() is not None
        config = {
            "key": "0x" + self.signer.secret.hex(),
            "store": str(self.store_path),
            "chain": self.chain.url,
            "adjudicator": "0x" + self.chain.adjudicator.hex(),
            "listen_port": self.listen_port,
            "settings": self.settings,
            "tap": str(self.tap_path),
            "partners": ["0x" + p.hex() for p in self.partners],
            "assets": ["0x" + self.chain.token.hex()],
            "oracles": ["0x" + self.chain.oracle.hex()],
        }
        with self._cond:
            self.lines = []
            self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"--- start {self.starts} crash_at={crash_at}\n")
        with open(self.journal_path, "a") as journal:
            journal.write(f"--- start {self.starts} crash_at={crash_at}\n")
        if USE_ZYGOTE:
            self.proc = ZygoteChild(
                config, crash_at, self.log_path.parent / f"{self.name}.{self.starts}", self.log_path
            )
        else:
            self.proc = _exec_child(config, crash_at, self.log_path)
        proc = self.proc
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        if wait_ready:
            self.wait_event(lambda e: e.get("event") == "ready", 30)

    def _read(self, proc: Any) -> None:
        assert proc.stdout is not None
        journal = open(self.journal_path, "a", buffering=1)
        try:
            self._read_lines(proc, journal)
        finally:
            journal.close()

    def _read_lines(self, proc: Any, journal: Any) -> None:
        for line in proc.stdout:
            if not line.endswith("\n"):
                break  # torn by SIGKILL
            journal.write(
                f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {line}"
            )
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if proc is self.proc:
                    self.lines.append(obj)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (the harness's own kill, for points the node never reaches)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def wait_dead(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return int(self.proc.wait(timeout))
        except subprocess.TimeoutExpired:
            return None

    def quit(self, timeout: float = 20) -> None:
        """Graceful stop: the node leaves open_node, the store is closed cleanly."""
        assert self.proc is not None
        if self.proc.poll() is None:
            try:
                self._write({"id": 0, "cmd": "quit"})
                self.proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not stop within {timeout}s") from None
        code = self.proc.poll()
        assert code == 0, f"{self.name} exited with {code}"

    # commands ----------------------------------------------------------------------------------
    def _write(self, obj: dict[str, Any]) -> None:
        assert self.proc is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def send(self, cmd: str, **args: Any) -> int:
        request_id = next(self._ids)
        try:
            self._write({"id": request_id, "cmd": cmd, **args})
        except (BrokenPipeError, OSError, ValueError):
            pass  # dead: reply() reports it
        return request_id

    def reply(self, request_id: int, timeout: float) -> dict[str, Any] | None:
        """The reply to ``request_id``; None if the process died first or the time ran out."""
        found = self._wait(lambda o: o.get("id") == request_id, timeout, stop_on_death=True)
        return found

    def request(self, cmd: str, timeout: float = 20, **args: Any) -> dict[str, Any]:
        """Send and wait for the reply; raise on failure or death."""
        request_id = self.send(cmd, **args)
        answer = self.reply(request_id, timeout)
        if answer is None:
            raise DeskDied(
                f"{self.name}: no reply to {cmd} {args} (alive={self.alive})" + self.diagnosis()
            )
        if not answer.get("ok"):
            raise AssertionError(f"{self.name}: {cmd} {args} failed: {answer}" + self.diagnosis())
        return answer

    def diagnosis(self, lines: int = 40) -> str:
        """The tails of this desk's log (its stderr) and of its journal, for a failure message:
        a failure on a loaded CI machine must be explainable from its report alone."""
        out = []
        for path in (self.log_path, self.journal_path):
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError as exc:
                tail = [f"({exc})"]
            out.append(f"\n--- {path.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "".join(out)

    def status(self) -> dict[str, Any]:
        (row,) = self.request("status", timeout=10)["channels"]
        return row

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        found = self._wait(lambda o: "event" in o and predicate(o), timeout, stop_on_death=True)
        if found is None:
            raise AssertionError(
                f"{self.name}: no such event within {timeout}s (alive={self.alive})"
                + self.diagnosis()
            )
        return found

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [o for o in self.lines if "event" in o and (name is None or o["event"] == name)]

    def _wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, *, stop_on_death: bool
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for obj in self.lines[seen:]:
                    if predicate(obj):
                        return obj
                seen = len(self.lines)
                if stop_on_death and not self.alive:
                    # Let the reader drain what the child wrote before it died.
                    self._cond.wait(0.05)
                    if len(self.lines) == seen:
                        return None
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

    def taps(self) -> list[dict[str, Any]]:
        if not self.tap_path.exists():
            return []
        out = []
        for line in self.tap_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def converge(a: Desk, b: Desk, timeout: float = 15) -> dict[str, Any]:
    """Wait until both desks are connected, out of reestablish, and hold the same latest state."""
    deadline = time.monotonic() + timeout
    last: tuple[Any, Any] = (None, None)
    steady = 0
    while time.monotonic() < deadline:
        sa, sb = a.status(), b.status()
        last = (sa, sb)
        if (
            sa["connected"]
            and sb["connected"]
            and not sa["reestablishing"]
            and not sb["reestablishing"]
            and not sa["pending"]
            and sa["state"] == sb["state"]
        ):
            # Twice in a row: "connected" shows before the reestablish starts, and a trade in
            # that gap can strand a proposal (test_restart_race.py).
            steady += 1
            if steady == 2:
                return sa["state"]
        else:
            steady = 0
        time.sleep(0.05)
    raise AssertionError(
        f"no convergence within {timeout}s:\n{a.name}: {last[0]}\n{b.name}: {last[1]}"
        + a.diagnosis()
        + b.diagnosis()
    )


def pay(desk: Desk, amount: int, timeout: float = 15) -> dict[str, Any]:
    """A payment that retries while the channel is still resynchronising after a reconnect."""
    deadline = time.monotonic() + timeout
    while True:
        request_id = desk.send("pay", amount=amount)
        answer = desk.reply(request_id, timeout)
        if answer is None:
            raise DeskDied(f"{desk.name}: no reply to pay {amount}")
        if answer.get("ok"):
            return answer
        message = str(answer.get("message", ""))
        retry = "resynchronising" in message or message.startswith("Disconnected")
        if not retry or time.monotonic() > deadline:
            raise AssertionError(f"{desk.name}: pay {amount} failed: {answer}")
        time.sleep(0.05)


def open_channel(leader: Desk, follower: Desk, deposit: int = DEPOSIT) -> str:
    assert follower.listen_port is not None
    try:
        answer = leader.request(
            "open",
            timeout=40,
            peer_port=follower.listen_port,
            peer_address="0x" + follower.address.hex(),
            asset="0x" + leader.chain.token.hex(),
            deposit=deposit,
            peer_deposit=deposit,
            oracle="0x" + leader.chain.oracle.hex(),
            challenge_period=CHALLENGE_PERIOD,
        )
    except AssertionError as exc:  # the leader's side is in the message; add the follower's
        raise AssertionError(f"{exc}{follower.diagnosis()}") from None
    # The leader credits both deposits in a state of its own right after the funding.
    deadline = time.monotonic() + 20
    while True:
        state = converge(leader, follower)
        if state["deposited"] == [deposit, deposit]:
            return str(answer["channel_id"])
        if time.monotonic() > deadline:
            raise AssertionError(f"deposits never credited: {state}")
        time.sleep(0.05)
