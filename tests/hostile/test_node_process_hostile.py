"""A real ``channels node`` process fed hostile JSON: on its control socket, and from its chain
endpoint (a proxy in front of anvil). Before the fix, a 200 KB line of nested brackets on either
ended the process with SIGSEGV."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.node.conftest import Desks, desks  # noqa: F401 - the fixture
from tests.watcher.faultproxy import Rule

from .nodeproc import control_call, node_process, ping, write_config
from .test_rpc_hostile import proxy_in_front_of

KEY_ENV = "OC_HOSTILE_KEY"


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ochost-", dir="/tmp") as d:
        yield Path(d)


HOSTILE_LINES = [
    pytest.param(b"[" * 200_000 + b"\n", "refused", id="deep-brackets"),
    pytest.param(b'{"cmd":"ping","x":' + b"{" * 100_000 + b"\n", "refused", id="deep-object"),
    pytest.param(b'{"cmd":"status"' + b"\n", "refused", id="truncated"),
    pytest.param(b"\xff\xfe\xfd\n", "refused", id="not-utf8"),
    pytest.param(b'{"cmd":5}\n', "cmd", id="cmd-not-a-string"),
    pytest.param(b"[1,2,3]\n", "object", id="not-an-object"),
    pytest.param(b'{"cmd":"pay","channel":[1,[2]],"amount":"lots"}\n', "", id="wrong-types"),
    pytest.param(b'{"cmd":"export","channel":{"a":1},"limit":-1}\n', "", id="wrong-types-2"),
    pytest.param(b'{"cmd":"ping","n":1' + b"0" * 10_000 + b"}\n", "refused", id="huge-number"),
]


async def test_hostile_control_lines_do_not_kill_the_node(
    desks: Desks,  # noqa: F811
    workdir: Path,
) -> None:
    cfg = write_config(
        workdir, "a", rpc_url=desks.url, adjudicator=desks.adjudicator, key_env=KEY_ENV
    )
    with trio.fail_after(120):
        async with node_process(cfg, KEY_ENV, "0x" + desks.alice.secret.hex()) as node:
            for param in HOSTILE_LINES:
                line, expect = param.values
                answer = json.loads(await control_call(node.control, line))
                assert answer["ok"] is False, param.id
                assert expect in answer["error"], (param.id, answer)
                assert node.alive, node.stderr()
                assert (await ping(node.control))["ok"] is True
            # Longer than a control line may be: refused and the connection closed.
            answer = await control_call(node.control, b"[" * (2 << 20) + b"\n")
            assert b"longer than" in answer
            assert node.alive, node.stderr()
            assert (await ping(node.control))["ok"] is True


@pytest.mark.parametrize("fault", ["deep", "truncated", "wrong_type", "not_json"])
async def test_poisoned_rpc_replies_do_not_kill_the_node(
    desks: Desks,  # noqa: F811
    workdir: Path,
    fault: str,
) -> None:
    with trio.fail_after(120):
        async with proxy_in_front_of(desks.url) as proxy:
            proxy.enabled = False
            cfg = write_config(
                workdir, "a", rpc_url=proxy.url, adjudicator=desks.adjudicator, key_env=KEY_ENV
            )
            async with node_process(cfg, KEY_ENV, "0x" + desks.alice.secret.hex()) as node:
                proxy.rules = [Rule(None, fault, limit=20)]
                proxy.enabled = True
                while proxy.injected[fault] < 20:
                    assert node.alive, node.stderr()
                    await trio.sleep(0.1)
                assert node.alive, node.stderr()
                assert (await ping(node.control))["ok"] is True
                proxy.enabled = False
                before = proxy.requests["eth_blockNumber"]
                while proxy.requests["eth_blockNumber"] < before + 3:  # it keeps polling
                    assert node.alive, node.stderr()
                    await trio.sleep(0.1)
                assert "Segmentation" not in node.stderr()
