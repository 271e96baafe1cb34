"""Alarms have ids and are acknowledged: the book on its own (a real SQLite file, reopened as a
restarted node would), then a desk on anvil driven by ``channels alarms`` / ``channels ack``, with
/healthz, getinfo and status counting only open alarms, across a restart of the desk."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from adjudicator.rpc import open_rpc
from channels import cli
from channels.core.signing import LocalSigner
from channels.ops.alarms import MAX_ALARMS, AlarmBook, UnknownAlarm
from channels.runtime.node import Node

from ..cli.test_end_to_end import Chain, Runner, chain, desk_config, workdir

__all__ = ["chain", "workdir"]  # fixtures


def test_alarm_book_persists_acknowledgements(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite.alarms"
    book = AlarmBook(path)
    first = book.raise_alarm("ChainTxFailed", "register: out of gas", "0x" + "ab" * 32, 100.0)
    again = book.raise_alarm("ChainTxFailed", "register: out of gas", "0x" + "ab" * 32, 160.0)
    assert again.id == first.id and again.repeats == 1 and again.last_raised_at == 160.0
    other = book.raise_alarm("StaleHead", "no block for 200s", None, 170.0)
    assert other.id != first.id and [a.id for a in book.open_records()] == [first.id, other.id]
    record, was_open = book.ack(first.id, 200.0)
    assert was_open and record.acked_at == 200.0 and not record.open
    assert book.ack(first.id, 300.0) == (record, False)  # idempotent: the first ack stands
    with pytest.raises(UnknownAlarm, match="no alarm 99"):
        book.ack(99, 300.0)
    book.close()

    reopened = AlarmBook(path)  # a restarted node
    assert [a.id for a in reopened.open_records()] == [other.id]
    # the same condition raised again after the restart stays acknowledged
    repeat = reopened.raise_alarm("ChainTxFailed", "register: out of gas", "0x" + "ab" * 32, 400)
    assert repeat.id == first.id and not repeat.open and repeat.repeats == 2
    assert [a.id for a in reopened.open_records()] == [other.id]
    reopened.close()


def test_alarm_book_is_bounded_and_never_drops_open_alarms(tmp_path: Path) -> None:
    book = AlarmBook()
    kept = book.raise_alarm("DataLossRecovered", "v4 -> v9", None, 1.0)
    for i in range(MAX_ALARMS + 20):
        record = book.raise_alarm("PeerMisbehaved", f"bad frame {i}", None, 2.0 + i)
        book.ack(record.id, 3.0 + i)
    assert len(book.records()) <= MAX_ALARMS
    assert [a.id for a in book.open_records()] == [kept.id]
    long = book.raise_alarm("Quoted", "x" * 5000, None, 9.0)  # a detail quoting hostile text
    assert len(long.detail) == 1000


async def test_alarms_and_ack_from_the_command_line(
    chain: Chain, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OC_AL_KEY", chain.keys[4])
    peer = LocalSigner.from_hex(chain.keys[5]).address
    path = desk_config(workdir, "al", chain, "OC_AL_KEY", False, peer, "[]")
    desk = str(path)
    conf = cli.load_config(path)
    run = Runner(capsys)

    async def fresh_head() -> None:  # /healthz also wants a recent block
        async with open_rpc(chain.url) as rpc:
            await rpc.dev.evm_mine()

    async def get(url: str) -> httpx.Response:
        return await trio.to_thread.run_sync(httpx.get, url)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:  # the desk's first run
            node: Node = await nursery.start(cli.serve_desk, conf, cli.load_signer(conf))
            node.alarm("DeadlineAtRisk", "refute not mined after 3 tries", None)
            while not (await run.json("-c", desk, "alarms"))["alarms"]:  # delivered by events
                await trio.sleep(0.05)
            code, out, err = await run("-c", desk, "alarms")
            assert code == 0, err
            assert "DeadlineAtRisk" in out and " open " in out and "channels ack ID" in out
            (alarm,) = (await run.json("-c", desk, "alarms"))["alarms"]
            assert alarm["state"] == "open" and alarm["raised_at"].endswith("Z")
            alarm_id = str(alarm["id"])
            info = await run.json("-c", desk, "getinfo")
            assert info["health"]["healthy"] is False
            assert info["health"]["open_alarms"][0]["id"] == alarm["id"]
            assert (await get(f"{info['metrics_url']}/healthz")).status_code == 503
            code, out, err = await run("-c", desk, "status")
            assert f"ALARM {alarm_id} DeadlineAtRisk" in out

            # acknowledged: health, status and metrics count it no more ---------------------
            code, out, err = await run("-c", desk, "ack", alarm_id)
            assert code == 0 and f"alarm {alarm_id} (DeadlineAtRisk) acknowledged" in out
            code, out, err = await run("-c", desk, "ack", alarm_id)
            assert code == 0 and "already acknowledged" in out
            code, out, err = await run("-c", desk, "ack", "99")
            assert code == 2 and "no alarm 99" in err
            code, out, err = await run("-c", desk, "ack", "first")
            assert code == 2 and "not an alarm id" in err
            await fresh_head()
            while not (await run.json("-c", desk, "getinfo"))["health"]["healthy"]:  # probe: 1 s
                await fresh_head()
                await trio.sleep(0.2)
            healthz = await get(f"{info['metrics_url']}/healthz")
            assert healthz.status_code == 200
            metrics = (await get(f"{info['metrics_url']}/metrics")).text
            assert "channels_alarms_open 0.0" in metrics
            code, out, err = await run("-c", desk, "status")
            assert "ALARM" not in out
            assert (await run.json("-c", desk, "alarms"))["alarms"] == []

            nursery.cancel_scope.cancel()

        # restart: still acknowledged, also when raised again; a new condition pages --------
        async with trio.open_nursery() as nursery:
            node = await nursery.start(cli.serve_desk, conf, cli.load_signer(conf))
            node.alarm("DeadlineAtRisk", "refute not mined after 3 tries", None)
            node.alarm("ChainTxFailed", "conclude: reverted", None)
            while not (await run.json("-c", desk, "alarms"))["alarms"]:
                await trio.sleep(0.05)
            (new,) = (await run.json("-c", desk, "alarms"))["alarms"]
            assert new["kind"] == "ChainTxFailed" and new["id"] != alarm["id"]
            everything = (await run.json("-c", desk, "alarms", "--all"))["alarms"]
            old = next(a for a in everything if a["id"] == alarm["id"])
            assert old["state"] == "acknowledged" and old["repeats"] == 1
            nursery.cancel_scope.cancel()
