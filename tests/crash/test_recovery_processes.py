"""A desk's store restored from an old copy, or lost altogether, with every part a real process.

Desks A and B are ``channels node`` processes and A's watchtower a ``channels tower`` process,
each from its own TOML config, on a real anvil. The test drives them with ``channels`` commands
(the CLI's ``main`` in a worker thread, as tests/cli/test_end_to_end.py does, talking to each
node's control socket) and reads the chain itself. The in-process versions of these cases, and
their variants, are in test_stale_publication.py, test_data_loss.py and
tests/watcher/test_tower_backup.py.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from channels.core.signing import LocalSigner
from tests.cli.desk_processes import DeskSpec, write_desk_config
from tests.cli.test_end_to_end import Runner
from tests.hostile.nodeproc import NodeProcess, node_process, tower_process, write_tower_config

from .harness import Chain, adjudicator_calls, free_port
from .test_data_loss import backup, fresh_desk, head, restore, token_balance

log = logging.getLogger(__name__)

KEY_TOWER = "OC_E2E_KEY_TOWER"
STORE_FILES = ("", "-wal", "-shm", "-journal", ".alarms")
#: Refusals of a trade made while the link is still being set up after a start.
RETRIED = ("resynchronising", "Disconnected", "NotCountersigned")


@dataclass
class Scene:
    """Two desks and A's tower: their keys, configs and the ports a restart must keep."""

    chain: Chain
    workdir: Path
    a: DeskSpec
    b: DeskSpec
    tower: LocalSigner
    tower_port: int
    a_cfg: Path
    b_cfg: Path
    tower_cfg: Path

    @property
    def a_store(self) -> Path:
        return self.workdir / "a.sqlite"

    def node_a(self) -> AbstractAsyncContextManager[NodeProcess]:
        return node_process(self.a_cfg, self.a.key_env, self.a.key_hex)

    def node_b(self) -> AbstractAsyncContextManager[NodeProcess]:
        return node_process(self.b_cfg, self.b.key_env, self.b.key_hex)

    def watchtower(self) -> AbstractAsyncContextManager[trio.Process]:
        key = "0x" + self.tower.secret.hex()
        return tower_process(self.tower_cfg, KEY_TOWER, key, self.tower_port)


async def make_scene(chain: Chain, workdir: Path) -> Scene:
    a_key, b_key = await fresh_desk(chain), await fresh_desk(chain)
    tower = LocalSigner.generate()
    b_port, tower_port = free_port(), free_port()
    # B listens on a port of its own, so A finds it again after either restarts; A asks B to
    # take the options it writes and to let it unwind them; B asks nothing of A.
    a = DeskSpec(
        "a", a_key, peer_endpoint=("127.0.0.1", b_port), watchtowers=((tower.address, tower_port),)
    )
    b = DeskSpec("b", b_key, listen=True, port=b_port, approve=("buy", "unwind"))
    terms = {
        "rpc_url": chain.url,
        "adjudicator": chain.adjudicator,
        "asset": chain.token,
        "oracle": chain.oracle,
    }
    a_cfg = write_desk_config(workdir, a, peer=b_key.address, **terms)
    b_cfg = write_desk_config(workdir, b, peer=a_key.address, **terms)
    tower_cfg = write_tower_config(
        workdir, "tower", rpc_url=chain.url, adjudicator=chain.adjudicator, key_env=KEY_TOWER,
        port=tower_port, clients=[a_key.address],
    )  # fmt: skip
    return Scene(chain, workdir, a, b, tower, tower_port, a_cfg, b_cfg, tower_cfg)


@pytest.fixture
def workdir() -> Iterator[Path]:
    # A short path: the control sockets live next to the stores.
    with tempfile.TemporaryDirectory(prefix="ocrec-", dir="/tmp") as d:
        yield Path(d)


# Driving the desks ------------------------------------------------------------------------------


class DeskCli:
    """``channels -c CONFIG ...`` for one desk, amounts in the asset's smallest units."""

    def __init__(self, run: Runner, config: Path) -> None:
        self.run = run
        self.config = str(config)

    async def json(self, *argv: str) -> Any:
        return await self.run.json("--raw", "-c", self.config, *argv)

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        return await self.run("--raw", "-c", self.config, *argv)

    async def rows(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in (await self.json("status"))["channels"]}

    async def until(
        self, what: str, ready: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 30
    ) -> dict[str, dict[str, Any]]:
        """Poll ``status`` until ``ready(rows)``; fail naming ``what`` and the last rows."""
        rows: dict[str, dict[str, Any]] = {}
        with trio.move_on_after(timeout):
            while not ready(rows := await self.rows()):
                await trio.sleep(0.1)
            return rows
        raise AssertionError(f"{self.config}: never {what}: {rows}")

    async def trade(self, *argv: str) -> Any:
        """One trade; retried while the link is still being set up after a start (a proposal
        then is refused as resynchronising, or lost with a link that is replaced)."""
        with trio.fail_after(30):
            while True:
                code, out, err = await self("--json", *argv)
                if code == 0:
                    return json.loads(out)
                if not any(s in out + err for s in RETRIED):  # --json: the error is on stdout
                    raise AssertionError(f"`{' '.join(argv)}` exited {code}: {out}{err}")
                await trio.sleep(0.1)


def linked(cid: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    """The peer is connected, its reestablish arrived and the version is known current."""
    return lambda rows: (
        cid in rows and all(rows[cid][k] for k in ("peer_connected", "in_sync", "known_current"))
    )


def backed_up(*cids: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    """The tower acked each channel's latest version."""
    return lambda rows: all(c in rows and rows[c]["backed_up"] == rows[c]["version"] for c in cids)


async def open_channel(desk: DeskCli, deposit: str) -> str:
    row = await desk.json("open", "other", "--deposit", deposit)
    assert row["phase"] == "open", row
    return str(row["id"])


async def write_call(desk: DeskCli, cid: str, strike: str) -> dict[str, Any]:
    done = await desk.trade(
        "write", cid, "--kind", "call", "--underlying", "ETH-USD", "--strike", strike,
        "--expiry", "+7d", "--quantity", "1", "--premium", "20000", "--collateral", "300000",
    )  # fmt: skip
    return dict(done["position"])


def stale_states_sent(chain: Chain, desk: bytes, first_block: int) -> list[Any]:
    """Every adjudicator call from ``desk`` since ``first_block`` that carries a state."""
    calls = adjudicator_calls(chain, first_block)
    return [c for c in calls if c.sender == desk and c.version is not None]


def _positions(row: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(p["id"], p["side"], p["kind"], p["strike"], p["collateral"]) for p in row["positions"]]


# The tests --------------------------------------------------------------------------------------


async def test_restored_old_store_publishes_nothing_and_catches_up(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A's store goes back to a copy taken several versions ago. Alone (B and the tower away),
    the node holds the old version as not known current: it refuses a dispute and puts nothing
    on chain. When the tower is back it adopts the newest state, positions included; B then
    finds it in step and they trade on. The chain never sees a state from A."""
    s = await make_scene(chain, workdir)
    run = Runner(capsys)
    a, b = DeskCli(run, s.a_cfg), DeskCli(run, s.b_cfg)
    a_address = s.a.signer.address
    first = await head(chain)
    started = trio.current_time()
    copy = workdir / "a-backup.sqlite"
    with trio.fail_after(240):
        async with s.watchtower():
            async with s.node_b():
                async with s.node_a() as node:
                    cid = await open_channel(a, "1_000_000")
                    await a.trade("pay", cid, "10000")
                    await write_call(a, cid, "3000")
                    old = (await a.until("backed up", backed_up(cid)))[cid]
                assert node.process.returncode == 0, node.stderr()
                backup(s.a_store, copy)  # the operator's copy of the stopped desk's store
                async with s.node_a():
                    await a.until("linked again", linked(cid))
                    for _ in range(2):
                        await b.trade("pay", cid, "5000")
                    await write_call(a, cid, "3100")  # the book changes after the copy
                    await a.trade("pay", cid, "1000")
                    latest = (await a.until("backed up", backed_up(cid)))[cid]
                    assert latest["version"] >= old["version"] + 4
        t_setup = trio.current_time() - started

        restore(copy, s.a_store)
        async with s.node_a():  # alone: B and the tower are away
            row = (await a.rows())[cid]
            assert row["version"] == old["version"] and row["known_current"] is False
            assert _positions(row) == _positions(old)
            code, out, err = await a("status")
            assert code == 0 and f"{cid[:12]}: v{old['version']} not known current" in out, out
            code, out, err = await a("dispute", cid, "--no-wait")
            assert code != 0 and "NotKnownCurrent" in err and "--force" in err, err
            assert not await trio.to_thread.run_sync(stale_states_sent, chain, a_address, first)

            # The tower is back: the node, still without its peer, asks it again and adopts
            # the newest state with its positions.
            caught_at = trio.current_time()
            async with s.watchtower():
                rows = await a.until(
                    "brought current by the tower",
                    lambda r: r[cid]["known_current"] and r[cid]["version"] == latest["version"],
                )
                t_tower = trio.current_time() - caught_at
                assert rows[cid]["ours"] == latest["ours"] and not rows[cid]["peer_connected"]
                assert _positions(rows[cid]) == _positions(latest)
                info = await a.json("getinfo")
                assert info["towers"]["restored"] == {cid: [old["version"], latest["version"]]}
                code, out, err = await a("getinfo")
                assert f"brought from v{old['version']} to v{latest['version']}" in out, out

                # B is back: in step at once, and the channel trades on.
                async with s.node_b():
                    await a.until("linked to B", linked(cid))
                    done = await b.trade("pay", cid, "2000")
                    assert done["version"] > latest["version"]
                    rows = await a.until(
                        "at B's version", lambda r: r[cid]["version"] == done["version"]
                    )
                    assert rows[cid]["ours"] == latest["ours"] + 2000
                    assert (await b.rows())[cid]["theirs"] == rows[cid]["ours"]
    calls = await trio.to_thread.run_sync(stale_states_sent, chain, a_address, first)
    assert not calls, f"A sent states to the adjudicator: {calls}"
    log.info(
        "restored store: v%d copy, v%d newest; set-up %.1f s, tower catch-up %.1f s, total %.1f s",
        old["version"], latest["version"], t_setup, t_tower, trio.current_time() - started,
    )  # fmt: skip


async def test_wiped_store_is_rebuilt_from_the_tower_and_closes_at_the_latest_state(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A's disk is lost: only its key and config are left. Restarted, the node rebuilds both
    channels from its tower at their exact versions, open positions included, reaches B again,
    trades, and closes cooperatively: the chain pays each desk what the latest state says."""
    s = await make_scene(chain, workdir)
    run = Runner(capsys)
    a, b = DeskCli(run, s.a_cfg), DeskCli(run, s.b_cfg)
    started = trio.current_time()
    with trio.fail_after(240):
        async with s.watchtower(), s.node_b():
            async with s.node_a() as node:
                with_options = await open_channel(a, "1_000_000")
                payments = await open_channel(a, "500_000")
                await a.trade("pay", with_options, "10000")
                calls = [await write_call(a, with_options, k) for k in ("3000", "3200")]
                for amount in ("3000", "1000", "2000"):
                    await b.trade("pay", payments, amount)
                await a.trade("pay", payments, "500")
                before = await a.until("backed up", backed_up(with_options, payments))
            assert node.process.returncode == 0, node.stderr()
            t_trading = trio.current_time() - started

            for suffix in STORE_FILES:  # the disk is gone
                (workdir / f"a.sqlite{suffix}").unlink(missing_ok=True)
            restart = trio.current_time()
            async with s.node_a():
                t_rebuild = trio.current_time() - restart
                info = await a.json("getinfo")
                rebuilt = info["towers"]["rebuilt"]
                assert rebuilt["channels"] == {c: before[c]["version"] for c in before}
                assert rebuilt["positions"] == {with_options: 2, payments: 0}
                assert rebuilt["skipped"] == {}
                rows = await a.rows()
                for c in before:
                    for key in ("version", "ours", "theirs", "locked", "phase"):
                        assert rows[c][key] == before[c][key], (c, key)
                    assert _positions(rows[c]) == _positions(before[c])
                code, out, err = await a("getinfo")
                assert "rebuilt from the towers: 2 channel(s), 2 open position(s)" in out, out

                await a.until("linked to B", lambda r: all(linked(c)(r) for c in before))
                t_linked = trio.current_time() - restart
                done = await a.trade("pay", payments, "700")
                assert done["version"] > before[payments]["version"]
                for position in calls:  # the rebuilt book is the real one: unwind on it
                    await a.trade("unwind", with_options, str(position["id"]), "0")
                final = await a.rows()
                assert final[with_options]["positions"] == []
                b_rows = await b.rows()  # the peer holds the same latest states
                for c in before:
                    assert (b_rows[c]["version"], b_rows[c]["ours"], b_rows[c]["theirs"]) == (
                        final[c]["version"],
                        final[c]["theirs"],
                        final[c]["ours"],
                    )

                wallet_a = await token_balance(chain, s.a.signer.address)
                wallet_b = await token_balance(chain, s.b.signer.address)
                owed_a = sum(int(final[c]["ours"]) for c in before)
                owed_b = sum(int(final[c]["theirs"]) for c in before)
                for c in before:
                    code, out, err = await a("close", c)
                    assert code == 0 and "closed at version" in out, err
                with trio.fail_after(60):  # each desk's watcher withdraws its payout
                    while (
                        await token_balance(chain, s.a.signer.address) != wallet_a + owed_a
                        or await token_balance(chain, s.b.signer.address) != wallet_b + owed_b
                    ):
                        await trio.sleep(0.2)
    log.info(
        "wiped store: rebuilt %d channel(s) at v%s with %d open position(s); trading %.1f s, "
        "rebuild to ready %.1f s, to linked %.1f s, total %.1f s",
        len(rebuilt["channels"]), sorted(rebuilt["channels"].values()),
        sum(rebuilt["positions"].values()), t_trading, t_rebuild, t_linked,
        trio.current_time() - started,
    )  # fmt: skip
