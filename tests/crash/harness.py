"""The crash harness: desk processes, a shared anvil, read-back of stores, and the invariants.

Everything here is synchronous (threads read the children's output) so a test can SIGKILL a child
at any moment; chain look-ups run in short ``trio.run`` calls.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from adjudicator.client import adjudicator_abi
from adjudicator.rpc import open_rpc
from adjudicator.tokens import balance_of, mint
from adjudicator.transactions import TransactionSender
from channels.core import eip712
from channels.core.signing import LocalSigner, recover
from channels.store import Store

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


def _child_env(crash_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHANNELS_CRASH_AT"}
    if crash_at is not None:
        env["CHANNELS_CRASH_AT"] = crash_at
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _exec_child(config: dict[str, Any], crash_at: str | None, log_path: Path) -> Any:
    with open(log_path, "a") as log:
        return subprocess.Popen(
            [sys.executable, str(DESK), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_child_env(crash_at),
            cwd=str(ROOT),
        )


class _Zygote:
    """The fork server (one per test session), shared by every thread of the harness."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "zygote.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(None),
            cwd=str(ROOT),
        )
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._ids = iter(range(1, 10**9))
        self.pids: dict[int, int] = {}
        self.exits: dict[int, int] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            with self._cond:
                if "exit" in obj:
                    self.exits[int(obj["exit"])] = int(obj["code"])
                else:
                    self.pids[int(obj["id"])] = int(obj["pid"])
                self._cond.notify_all()

    def spawn(self, request: dict[str, Any]) -> int:
        request_id = next(self._ids)
        with self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"id": request_id, **request}) + "\n")
            self.proc.stdin.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: request_id in self.pids, 30):
                raise AssertionError("the zygote did not fork")
            return self.pids.pop(request_id)

    def wait(self, pid: int, timeout: float | None) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self.exits, timeout)
            return self.exits.get(pid)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


_ZYGOTE: _Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def zygote() -> _Zygote:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or _ZYGOTE.proc.poll() is not None:
            _ZYGOTE = _Zygote()
            atexit.register(_ZYGOTE.close)
        return _ZYGOTE


def _open_fifo(path: Path, flags: int, unblock: Callable[[], None], timeout: float = 30) -> int:
    """A blocking FIFO open that a watchdog unblocks if the other side never comes."""
    timer = threading.Timer(timeout, unblock)
    timer.start()
    try:
        return os.open(str(path), flags)
    finally:
        timer.cancel()


class ZygoteChild:
    """A forked desk: the same surface as ``subprocess.Popen`` as far as ``Desk`` uses it."""

    def __init__(self, config: dict[str, Any], crash_at: str | None, base: Path, log: Path) -> None:
        self.zygote = zygote()
        fifo_in, fifo_out = Path(f"{base}.in"), Path(f"{base}.out")
        for fifo in (fifo_in, fifo_out):
            fifo.unlink(missing_ok=True)
            os.mkfifo(fifo)
        self.pid = self.zygote.spawn(
            {
                "config": config,
                "crash_at": crash_at,
                "stdin": str(fifo_in),
                "stdout": str(fifo_out),
                "stderr": str(log),
            }
        )

        # The child opens its stdin first, then its stdout: the same order here.
        def unblock_in() -> None:
            os.close(os.open(str(fifo_in), os.O_RDONLY | os.O_NONBLOCK))

        fd_in = _open_fifo(fifo_in, os.O_WRONLY, unblock_in)
        self.stdin = os.fdopen(fd_in, "w")

        def unblock_out() -> None:
            try:
                os.close(os.open(str(fifo_out), os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

        self.stdout = os.fdopen(_open_fifo(fifo_out, os.O_RDONLY, unblock_out), "r")

    def poll(self) -> int | None:
        return self.zygote.exits.get(self.pid)

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def wait(self, timeout: float | None = None) -> int:
        code = self.zygote.wait(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        return code


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


# Reading stores back ---------------------------------------------------------------------------


@dataclass
class StoreView:
    """What one store holds about its (single) channel, read after its process is gone."""

    identity: bytes
    latest_version: int
    latest_hash: bytes
    balances: tuple[int, int]
    highest_signed: int
    history: dict[int, tuple[bytes, tuple[bytes | None, bytes | None]]] = field(
        default_factory=dict
    )
    signed_versions: dict[int, bytes] = field(default_factory=dict)
    last_clean_shutdown: str | None = None


def read_store(path: Path, identity: bytes, chain: Chain) -> StoreView:
    """Open a store only once no process holds it: raw reads first (the signature record and the
    clean-shutdown flag, which the product's ``Store.open`` would overwrite), then ``Store`` for
    the checked history. Closed with ``clean=False``, so the flag stays as a crash left it."""
    raw = sqlite3.connect(str(path))
    try:
        signed = {
            int(v): bytes(h)
            for v, h in raw.execute("SELECT version, state_hash FROM signed_versions")
        }
        flag = raw.execute("SELECT value FROM meta WHERE key = 'last_clean_shutdown'").fetchone()
    finally:
        raw.close()
    store = Store.open(path, identity, chain.chain_id, chain.adjudicator)
    try:
        (stored,) = store.load_channels()
        history = {}
        for update in store.history(stored.channel_id):
            st = update.signed.state
            history[int(st.version)] = (eip712.state_struct_hash(st), update.signed.signatures)
        store.verify_history(stored.channel_id)
        state = stored.latest.signed.state
        return StoreView(
            identity=identity,
            latest_version=int(state.version),
            latest_hash=eip712.state_struct_hash(state),
            balances=(int(state.balances[0]), int(state.balances[1])),
            highest_signed=int(stored.highest_signed),
            history=history,
            signed_versions=signed,
            last_clean_shutdown=None if flag is None else str(flag[0]),
        )
    finally:
        store.close(clean=False)


# Invariants ------------------------------------------------------------------------------------


def signed_by(chain: Chain, state_hash: bytes, signature: bytes | None, who: bytes) -> bool:
    if signature is None:
        return False
    try:
        return recover(eip712.digest(chain.domain(), state_hash), signature) == who
    except Exception:
        return False


def victim_signatures(
    chain: Chain,
    victim: bytes,
    stores: Iterable[StoreView],
    survivor_taps: Iterable[dict[str, Any]],
) -> tuple[dict[int, set[bytes]], list[str]]:
    """Every (version -> state hashes) that carries the victim's signature anywhere we can see:
    both stores' histories, the victim's own signature record, and every message the survivor
    received from it. Also returns the anomalies (a victim signature we cannot attribute)."""
    seen: dict[int, set[bytes]] = {}
    anomalies: list[str] = []
    known: dict[int, set[bytes]] = {}
    stores = list(stores)

    def add(version: int, state_hash: bytes) -> None:
        seen.setdefault(version, set()).add(state_hash)

    for view in stores:
        for version, (h, _sigs) in view.history.items():
            known.setdefault(version, set()).add(h)
        for version, h in view.signed_versions.items():
            known.setdefault(version, set()).add(h)
    for view in stores:
        if view.identity == victim:
            for version, h in view.signed_versions.items():
                add(version, h)
        for version, (h, sigs) in view.history.items():
            if any(signed_by(chain, h, s, victim) for s in sigs):
                add(version, h)
    for row in survivor_taps:
        if row.get("from") != "0x" + victim.hex():
            continue
        kind = row["type"]
        if kind == "Proposal":
            h = bytes.fromhex(row["state_hash"][2:])
            if signed_by(chain, h, bytes.fromhex(row["signature"][2:]), victim):
                add(row["version"], h)
            else:
                anomalies.append(f"a proposal of v{row['version']} not signed by the victim")
        elif kind == "Accept":
            sig = bytes.fromhex(row["signature"][2:])
            matches = [h for h in known.get(row["version"], ()) if signed_by(chain, h, sig, victim)]
            if matches:
                for h in matches:
                    add(row["version"], h)
            else:
                anomalies.append(f"an accept of v{row['version']} signs no state we know of")
        elif kind == "Reestablish":
            h = bytes.fromhex(row["state_hash"][2:])
            for s in row["signatures"]:
                if signed_by(chain, h, bytes.fromhex(s[2:]), victim):
                    add(row["version"], h)
    return seen, anomalies


def assert_no_equivocation(
    chain: Chain, victim: bytes, stores: Iterable[StoreView], taps: Iterable[dict[str, Any]]
) -> dict[int, set[bytes]]:
    seen, anomalies = victim_signatures(chain, victim, stores, taps)
    assert not anomalies, anomalies
    doubles = {v: sorted(h.hex()[:16] for h in hs) for v, hs in seen.items() if len(hs) > 1}
    assert not doubles, f"the victim signed two states of one version: {doubles}"
    return seen


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def force_close_and_check_payouts(
    chain: Chain,
    disputer: Desk,
    other: Desk,
    leader: Desk,
    follower: Desk,
    agreed: dict[str, Any],
    start_balances: tuple[int, int],
    deposit: int = DEPOSIT,
) -> None:
    """Invariant 4: dispute, let the challenge period pass, and compare the payouts (token balance
    changes plus deposits, after both watchers withdrew) with the agreed state's balances."""
    disputer.request("dispute", timeout=20)
    # Cases run side by side on one chain and each moves its time on: a dispute may be concluded
    # before the other side's watcher polls, and that side goes from open to closed directly.
    for desk in (disputer, other):
        desk.wait_event(
            lambda e: (
                e.get("event") == "PhaseChangedEvent" and e["phase"] in ("disputed", "closed")
            ),
            15,
        )
    advance(chain, CHALLENGE_PERIOD + 1)
    expected = (int(agreed["balances"][0]), int(agreed["balances"][1]))
    assert sum(expected) == 2 * deposit
    for desk in (leader, follower):
        desk.wait_event(
            lambda e: e.get("event") == "FinalityChanged" and e["finality"] == "withdrawn", 30
        )

    def paid() -> bool:
        now = token_balances(chain, leader.address, follower.address)
        return (
            now[0] - start_balances[0] + deposit,
            now[1] - start_balances[1] + deposit,
        ) == expected

    try:
        wait_until(paid, 15, "the payouts")
    except AssertionError:
        now = token_balances(chain, leader.address, follower.address)
        raise AssertionError(
            f"payouts {[now[i] - start_balances[i] + deposit for i in (0, 1)]} != agreed {expected}"
        ) from None
