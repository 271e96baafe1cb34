"""The control protocol: the JSON-lines codec, error mapping, and the server on a Unix socket."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from channels import control
from channels.control import (
    BadRequest,
    ControlError,
    ControlProtocolError,
    ControlServer,
    ControlSocketInUse,
    NodeNotRunning,
)
from channels.core.errors import InsufficientFunds, UnknownChannel
from channels.core.model import OptionKind
from channels.core.node_events import Event


def test_request_codec_roundtrip() -> None:
    big = 2**255 + 12345
    line = control.encode_request(
        "pay", channel=b"\x01\x02", amount=big, memo=None, kind=OptionKind.PUT
    )
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    cmd, fields = control.decode_request(line.rstrip(b"\n"))
    assert cmd == "pay"
    assert fields == {"channel": "0x0102", "amount": big, "kind": "put"}


def test_response_codec_and_error_mapping() -> None:
    assert control.decode_response(control.encode_result({"v": 2**300, "b": b"\xff"})) == {
        "v": 2**300,
        "b": "0xff",
    }
    line = control.encode_error(InsufficientFunds("participant 1 has 5,\n cannot pay 9"))
    assert json.loads(line) == {
        "ok": False,
        "error": "InsufficientFunds: participant 1 has 5, cannot pay 9",
    }
    with pytest.raises(ControlError) as info:
        control.decode_response(line)
    assert info.value.kind == "InsufficientFunds"
    assert info.value.message == "participant 1 has 5, cannot pay 9"
    assert str(info.value) == "InsufficientFunds: participant 1 has 5, cannot pay 9"
    with pytest.raises(ControlError) as bare:
        control.decode_response(b'{"ok": false, "error": "Timeout"}')
    assert bare.value.kind == "Timeout" and bare.value.message == ""


def test_error_text() -> None:
    assert (
        control.error_text(UnknownChannel("no channel 0xab")) == "UnknownChannel: no channel 0xab"
    )
    assert control.error_text(trio.TooSlowError()).startswith("Timeout: ")
    assert control.error_text(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: Connection refused"
    )
    assert control.error_text(ValueError()) == "ValueError"


@pytest.mark.parametrize(
    "line",
    [b"not json", b"[1, 2]", b'{"cmd": 5}', b"{}", b'{"cmd": ""}', b"\xff\xfe"],
)
def test_bad_request_lines(line: bytes) -> None:
    with pytest.raises(ControlProtocolError):
        control.decode_request(line)


@pytest.mark.parametrize("line", [b'{"ok": true}', b'{"ok": false}', b'{"result": 1}', b"[]"])
def test_bad_response_lines(line: bytes) -> None:
    with pytest.raises(ControlProtocolError):
        control.decode_response(line)


def test_to_json() -> None:
    from channels.core.protocol import Phase

    assert control.to_json({b"\x01": (1, Phase.OPEN, None, True)}) == {
        "0x01": [1, "open", None, True]
    }
    with pytest.raises(TypeError):
        control.to_json(object())


# A server around a stand-in node ---------------------------------------------------------------
class _Chain:
    address = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


class _Channel:
    def __init__(self, cid: bytes) -> None:
        self.id = cid


class FakeNode:
    """Just what the server touches without a channel operation."""

    address = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")
    chain_id = 31337
    chain = _Chain()
    listen_port = 9401

    def __init__(self, ids: list[bytes] | None = None) -> None:
        self.channels = [_Channel(i) for i in ids or []]

    def now(self) -> int:
        return 1_700_000_000

    @asynccontextmanager
    async def events(self) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        send, receive = trio.open_memory_channel[Event](10)
        async with send:
            yield receive


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are short (about 104 bytes): pytest's tmp_path may be too long.
    with tempfile.TemporaryDirectory(prefix="occtl-", dir="/tmp") as d:
        yield Path(d)


async def test_server_roundtrip_and_errors(sock_dir: Path) -> None:
    path = sock_dir / "n.sock"
    server = ControlServer(FakeNode([b"\xab" * 32, b"\xac" * 32]))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        async with control.connect_control(path) as client:
            info = await client.call("ping")
            assert info["address"] == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            assert info["chain_id"] == 31337 and info["channels"] == 2
            with pytest.raises(ControlError, match="BadRequest: unknown command 'fly'"):
                await client.call("fly")
            with pytest.raises(ControlError, match=r"BadRequest: pay: unknown field.*amout"):
                await client.call("pay", channel="ab", amout=5)
            with pytest.raises(ControlError, match="matches 2 channels"):
                await client.call("pay", channel="0xa", amount=5)
            with pytest.raises(ControlError, match="UnknownChannel: no channel 0xff"):
                await client.call("pay", channel="ff", amount=5)
            with pytest.raises(ControlError, match="BadRequest: channel must be a hex"):
                await client.call("pay", channel="xyz", amount=5)
            # the connection survives every error
            assert (await client.call("ping"))["listen_port"] == 9401
        # A raw client: a garbage line gets an error line back, not a dropped connection.
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            await stream.send_all(b'garbage\n{"cmd": "ping"}\n')
            lines = control.LineStream(stream)
            first = await lines.receive_line()
            second = await lines.receive_line()
        assert first is not None and json.loads(first)["error"].startswith("ControlProtocolError")
        assert second is not None and json.loads(second)["ok"] is True
        # A second server on the same path is refused while the first one answers.
        with pytest.raises(ControlSocketInUse):
            await ControlServer(FakeNode()).serve(path)  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()
    assert not path.exists()  # removed on the way out


async def test_fields_validation() -> None:
    server = ControlServer(FakeNode([b"\xab" * 32]))  # type: ignore[arg-type]
    for fields, match in (
        ({"channel": "ab"}, "missing field 'amount'"),
        ({"channel": "ab", "amount": -1}, "non-negative integer"),
        ({"channel": "ab", "amount": "5"}, "non-negative integer"),
        ({"channel": "ab", "amount": True}, "non-negative integer"),
        ({"channel": 5, "amount": 1}, "must be a string"),
    ):
        with pytest.raises(BadRequest, match=match):
            await server.handle("pay", fields)


async def test_stale_socket_is_replaced_and_no_node_is_reported(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # a socket file nobody listens on: what a killed node leaves behind
    with pytest.raises(NodeNotRunning, match="no node is serving"):
        await control.call(path, "ping")
    async with trio.open_nursery() as nursery:
        await nursery.start(ControlServer(FakeNode()).serve, path)  # type: ignore[arg-type]
        assert (await control.call(path, "ping"))["channels"] == 0
        nursery.cancel_scope.cancel()
    regular = sock_dir / "file"
    regular.write_text("x")
    with pytest.raises(ControlSocketInUse, match="not a socket"):
        await ControlServer(FakeNode()).serve(regular)  # type: ignore[arg-type]
    with pytest.raises(ControlProtocolError, match="longer than"):
        await ControlServer(FakeNode()).serve(sock_dir / ("x" * 120))  # type: ignore[arg-type]


def test_command_table_documents_every_command() -> None:
    server = ControlServer(FakeNode())  # type: ignore[arg-type]
    doc = control.__doc__ or ""
    for name in server.commands:
        assert f"``{name}``" in doc, name
    assert set(server.commands) >= {
        "status",
        "open",
        "pay",
        "write_option",
        "buy_option",
        "unwind",
        "close",
        "dispute",
        "withdraw",
        "export",
    }


def test_any_typing() -> None:  # keep ``Any`` import used for readers of fake signatures
    value: Any = control.to_json([b""])
    assert value == ["0x"]
