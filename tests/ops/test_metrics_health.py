"""The metrics endpoint is scraped while two desks trade, and the health check turns unhealthy
when the chain (a real anvil) stops: chain unreachable, in /healthz, in the metrics and in the
node's control answers."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from adjudicator import devchain
from adjudicator.deploy import deploy_dev_setup
from adjudicator.rpc import open_rpc
from channels import cli, open_node
from channels.control import call, serve_control
from channels.core.signing import LocalSigner
from channels.ops.health import HealthMonitor
from channels.ops.metrics import serve_metrics
from channels.runtime.settings import NodeSettings

from ..partners import partners

FAST = NodeSettings(chain_poll_interval=0.05, update_timeout=10.0, open_timeout=30.0)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ocops-", dir="/tmp") as d:
        yield Path(d)


def _captured(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {key} in:\n{text}")


async def test_metrics_scraped_and_health_follows_the_chain(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, proc = devchain.start_anvil(devchain.AnvilConfig(block_time=1))
    try:
        keys = chain.private_keys
        alice, bob = LocalSigner.from_hex(keys[1]), LocalSigner.from_hex(keys[2])
        oracle = LocalSigner.from_hex(keys[9])
        async with open_rpc(chain.url) as rpc:
            dep = await deploy_dev_setup(rpc, keys[0], fund=[alice.address, bob.address])
        assert dep.token is not None
        with trio.fail_after(120):
            async with (
                open_node(
                    signer=bob,
                    store=workdir / "b.sqlite",
                    chain=chain.url,
                    adjudicator=dep.adjudicator,
                    listen=("127.0.0.1", 0),
                    settings=FAST,
                    trust=partners(alice.address, assets=[dep.token], oracles=[oracle.address]),
                ) as node_b,
                open_node(
                    signer=alice,
                    store=workdir / "a.sqlite",
                    chain=chain.url,
                    adjudicator=dep.adjudicator,
                    settings=FAST,
                    trust=partners(bob.address, assets=[dep.token], oracles=[oracle.address]),
                ) as node_a,
                trio.open_nursery() as nursery,
            ):
                health = HealthMonitor(node_a, probe_interval=0.2, probe_timeout=1.0)
                await nursery.start(health.run)
                sock = workdir / "a.sock"
                await nursery.start(partial(serve_control, node_a, sock, health=health))
                port = await nursery.start(serve_metrics, node_a, health, "127.0.0.1", 0)
                base = f"http://127.0.0.1:{port}"
                assert node_b.listen_port is not None
                channel = await node_a.open_channel(
                    peer=("127.0.0.1", node_b.listen_port),
                    peer_address=bob.address,
                    asset=dep.token,
                    deposit=5_000_000,
                    peer_deposit=5_000_000,
                    oracle=oracle.address,
                    challenge_period=3600,
                )
                await channel.pay(1_000_000)
                async with httpx.AsyncClient(timeout=5) as http:
                    text = (await http.get(f"{base}/metrics")).text
                    cid = "0x" + channel.id.hex()
                    assert metric(text, "channels_channels", 'phase="open"') == 1
                    assert metric(text, "channels_balance", f'channel="{cid}",side="ours"') == (
                        channel.our_balance
                    )
                    assert metric(text, "channels_updates_total", 'proposer="ours"') >= 1
                    assert metric(text, "channels_chain_reachable") == 1
                    assert metric(text, "channels_peers_connected") == 1
                    assert metric(text, "channels_healthy") in (0, 1)  # alarms may be open
                    assert "channels_watcher_polls_total" in text
                    assert "channels_alarms_open" in text
                    healthz = await http.get(f"{base}/healthz")
                    body = healthz.json()
                    assert body["chain_reachable"] is True and body["peers_connected"] == 1
                    assert healthz.status_code == (200 if body["healthy"] else 503)
                    assert (await http.get(f"{base}/nope")).status_code == 404
                    assert (await http.post(f"{base}/metrics")).status_code == 405

                    devchain.stop_anvil(proc, 5)  # the chain goes away
                    while True:
                        healthz = await http.get(f"{base}/healthz")
                        if healthz.status_code == 503 and not healthz.json()["chain_reachable"]:
                            break
                        await trio.sleep(0.1)
                    body = healthz.json()
                    assert body["healthy"] is False
                    assert any("chain unreachable" in p for p in body["problems"])
                    text = (await http.get(f"{base}/metrics")).text
                    assert metric(text, "channels_chain_reachable") == 0
                    assert metric(text, "channels_healthy") == 0
                info = await call(sock, "getinfo")
                assert info["health"]["chain_reachable"] is False
                # `channels status` shows no (extrapolated) chain time while the chain is down
                capsys.readouterr()
                code = await trio.to_thread.run_sync(cli.main, ["--socket", str(sock), "status"])
                shown = capsys.readouterr().out
                assert code == 0
                assert "chain time UNKNOWN: chain unreachable" in shown
                assert "UNHEALTHY: chain unreachable" in shown
                status = json.loads(
                    await trio.to_thread.run_sync(
                        _captured, capsys, ["--socket", str(sock), "--json", "status"]
                    )
                )
                assert status["node"]["now"] is None
                assert status["health"]["healthy"] is False
                assert json.dumps(info)  # plain JSON
                nursery.cancel_scope.cancel()
    finally:
        if proc.poll() is None:
            devchain.stop_anvil(proc, 5)
