"""The local control protocol: one-shot ``channels`` commands drive a running ``channels node``.

Transport: a Unix domain socket (mode 0600, so only the desk's own user can reach it) whose path is
in the node's config (by default next to the store: ``<store>.sock``). The node serves it from a
trio task in its own nursery (:func:`serve_control`).

Framing: JSON lines, UTF-8, at most :data:`MAX_LINE` bytes each. A client sends one request per
line and reads one response line per request, in order, on the same connection::

    {"cmd": "pay", "channel": "0x1f2e...", "amount": 1000}
    {"ok": true, "result": {"version": 7, "balances": [1024000, 976000], "locked": 0}}
    {"ok": false, "error": "UpdateRefusedError: InsufficientFunds: ..."}

Values: amounts, prices, quantities and times are JSON integers (Python's ``json`` keeps them
exact, however large); bytes (addresses, channel ids, hashes) are ``0x``-prefixed hex strings.
A ``channel`` may be given as any unique prefix of its id, as ``channels status`` shows it.

Errors are ``"<ErrorClass>: message"``, the class being the one the node raised (a rule violation
keeps the rule's name), so a script can match on the part before the first colon. Fields that a
command does not know are refused (``BadRequest``), so a typo never becomes a silent default.

Commands (fields in brackets are optional):

============== ==================================================================================
``ping``       the node's address, chain id, adjudicator, listen port and chain time
``status``     a list of channels: id, peer, phase, version, balances, positions, finality,
               dispute deadline, next expiry
``chain_view`` ``channel``: the adjudicator's record of a channel and the node's chain time
``open``       ``peer_host, peer_port, peer_address, asset, deposit, peer_deposit, oracle``
               ``[challenge_period, asset_decimals]``: returns the channel's status row
``pay``        ``channel, amount``
``write_option`` / ``buy_option``
               ``channel, kind, underlying, strike, quantity, premium, collateral`` and
               ``expiry`` (unix time) or ``expiry_in`` (seconds from the node's chain time)
``unwind``     ``channel, position, holder_share``
``settle``     ``channel, position, price, signature``: settle an expired position off chain with
               the oracle's signature over (underlying, expiry, price)
``top_up``     ``channel, amount``
``close``      ``channel``: agree a final state and conclude it on chain
``dispute``    ``channel [wait]``: force close: register our latest state, then (unless
               ``wait`` is false) wait until the watcher concluded it after the challenge period
``withdraw``   ``channel, amount [recipient]``: partial withdrawal while the channel stays open;
               or ``asset [recipient]`` without ``channel``: pull what failed payouts credited us
``export``     ``[channel]``: the audit trail of signed states (the store's ``export_audit``)
============== ==================================================================================
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from adjudicator.rpc import ChainError
from channels.core.errors import ChannelError, LocalProtocolError, UnknownChannel
from channels.core.machine import Phase
from channels.core.model import (
    Address,
    Attestation,
    ChannelId,
    OptionKind,
    Position,
    Price,
    State,
    address,
    symbol_text,
    to_checksum,
)
from channels.events import Finality, FinalityChanged, PeerConnected, PeerLost

if TYPE_CHECKING:
    from channels.channel import Channel
    from channels.node import Node

log = logging.getLogger("channels.control")

PROTOCOL = "option-channels-control/1"
MAX_LINE = 1 << 20
"""Longest request or response line (an export of a long history is the largest)."""
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to about 104-108 bytes, depending on the OS."""
EXPORT_FORMAT = "option-channels-audit/1"


# Errors ----------------------------------------------------------------------------------------
class ControlError(ChannelError):
    """The node answered a control request with an error.

    ``kind`` is the class name of the error the node raised, ``message`` its text.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message


class ControlProtocolError(ChannelError):
    """A control line is not valid JSON, not an object, too long, or lacks its fields."""


class BadRequest(LocalProtocolError):
    """A control request names an unknown command or has a missing, unknown or mistyped field."""

    rule = "BadRequest"


class Unsupported(LocalProtocolError):
    """The running node does not implement this command yet."""

    rule = "Unsupported"


class NodeNotRunning(ChannelError):
    """Nothing answers on the control socket."""


class ControlSocketInUse(ChannelError):
    """Another process already serves the control socket."""


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so an error fits on one line."""
    return " ".join(text.split())


def error_text(exc: BaseException) -> str:
    """``"<ErrorClass>: message"`` (just the class when there is no message), on one line."""
    if isinstance(exc, ControlError):
        return one_line(str(exc))
    if isinstance(exc, trio.TooSlowError):
        return "Timeout: the operation did not finish in time"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{where}"
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# Values ----------------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """A JSON-friendly copy: bytes as 0x-hex, enums by value (option kinds by name), dataclasses as
    dicts, tuples as lists; ints stay ints (exact, however large)."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, OptionKind):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _key(key: object) -> str:
    if isinstance(key, bytes):
        return "0x" + key.hex()
    return str(key)


def hex_bytes(text: str, what: str) -> bytes:
    raw = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise BadRequest(f"{what} must be 0x-prefixed hex, not {text!r}") from None


# Codec -----------------------------------------------------------------------------------------
def _dump(obj: object) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _load(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ControlProtocolError(f"control line longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ControlProtocolError(f"control line is not JSON: {one_line(str(exc))}") from None
    if not isinstance(obj, dict):
        raise ControlProtocolError("a control line must be a JSON object")
    return obj


def encode_request(cmd: str, **fields: Any) -> bytes:
    """One request line. Fields whose value is None are left out."""
    body = {k: to_json(v) for k, v in fields.items() if v is not None}
    return _dump({"cmd": cmd, **body})


def decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """``(cmd, fields)`` of a request line."""
    obj = _load(line)
    cmd = obj.pop("cmd", None)
    if not isinstance(cmd, str) or not cmd:
        raise ControlProtocolError('a request needs a "cmd" string')
    return cmd, obj


def encode_result(result: Any) -> bytes:
    return _dump({"ok": True, "result": to_json(result)})


def encode_error(exc: BaseException) -> bytes:
    return _dump({"ok": False, "error": error_text(exc)})


def decode_response(line: bytes) -> Any:
    """The result of a response line, or raise :class:`ControlError` for an error response."""
    obj = _load(line)
    ok = obj.get("ok")
    if ok is True and "result" in obj:
        return obj["result"]
    if ok is False and isinstance(obj.get("error"), str):
        kind, sep, message = obj["error"].partition(": ")
        return _raise(ControlError(kind, message if sep else ""))
    raise ControlProtocolError('a response needs "ok" and a "result" or an "error"')


def _raise(exc: BaseException) -> Any:
    raise exc


class LineStream:
    """Newline-delimited messages over a trio stream, each at most :data:`MAX_LINE` bytes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def receive_line(self) -> bytes | None:
        """The next line without its newline; None at a clean end of stream."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_LINE:
                raise ControlProtocolError(f"control line longer than {MAX_LINE} bytes")
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                if self._buffer.strip():
                    raise ControlProtocolError("the connection ended in the middle of a line")
                return None
            self._buffer += chunk

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)


# Client ----------------------------------------------------------------------------------------
class ControlClient:
    """A connection to a node's control socket: ``await client.call("status")``."""

    def __init__(self, stream: trio.abc.Stream, path: Path) -> None:
        self._lines = LineStream(stream)
        self._lock = trio.Lock()
        self.path = path

    async def call(self, cmd: str, **fields: Any) -> Any:
        async with self._lock:
            try:
                await self._lines.send(encode_request(cmd, **fields))
                line = await self._lines.receive_line()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise NodeNotRunning(f"the node at {self.path} went away: {exc}") from None
            if line is None:
                raise NodeNotRunning(f"the node at {self.path} closed the connection")
            return decode_response(line)


@asynccontextmanager
async def connect_control(path: str | os.PathLike[str]) -> AsyncIterator[ControlClient]:
    """``async with connect_control(path) as client:``; :class:`NodeNotRunning` if no node."""
    sock_path = Path(path)
    try:
        stream = await trio.open_unix_socket(str(sock_path))
    except (FileNotFoundError, ConnectionRefusedError):
        raise NodeNotRunning(
            f"no node is serving {sock_path} (start one with `channels node --config ...`)"
        ) from None
    async with stream:
        yield ControlClient(stream, sock_path)


async def call(path: str | os.PathLike[str], cmd: str, **fields: Any) -> Any:
    """One request on a fresh connection."""
    async with connect_control(path) as client:
        return await client.call(cmd, **fields)


# Server ----------------------------------------------------------------------------------------
class Fields:
    """A request's fields with typed, validated getters."""

    def __init__(self, cmd: str, raw: Mapping[str, Any]) -> None:
        self.cmd = cmd
        self.raw = raw

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def _get(self, name: str) -> Any:
        value = self.raw.get(name)
        if value is None:
            raise BadRequest(f"{self.cmd}: missing field {name!r}")
        return value

    def get_int(self, name: str, default: int | None = None) -> int:
        if default is not None and not self.has(name):
            return default
        value = self._get(name)
        if type(value) is not int or value < 0:
            raise BadRequest(f"{self.cmd}: {name} must be a non-negative integer, not {value!r}")
        return value

    def get_str(self, name: str, default: str | None = None) -> str:
        if default is not None and not self.has(name):
            return default
        value = self._get(name)
        if not isinstance(value, str):
            raise BadRequest(f"{self.cmd}: {name} must be a string, not {value!r}")
        return value

    def get_address(self, name: str) -> Address:
        text = self.get_str(name)
        try:
            return address(text)
        except ChannelError as exc:
            raise BadRequest(f"{self.cmd}: {name}: {exc}") from None


Handler = Callable[[Fields], Awaitable[Any]]


def _finality_of(channel: Channel, seen: Finality | None) -> str:
    if seen is not None:
        return seen.value
    if channel.phase is Phase.CLOSED:
        return Finality.CONCLUDED.value
    if channel.phase is Phase.DISPUTED:
        return Finality.REGISTERED.value
    if channel.phase is Phase.OPENING:
        return "pending"
    return Finality.OFF_CHAIN_FINAL.value


def position_json(position: Position, our_index: int) -> dict[str, Any]:
    return {
        "id": position.id,
        "kind": position.kind.name.lower(),
        "underlying": symbol_text(position.underlying),
        "strike": position.strike,
        "expiry": position.expiry,
        "quantity": position.quantity,
        "collateral": position.collateral,
        "writer": position.writer,
        "side": "written" if position.writer == our_index else "held",
    }


def state_json(state: State) -> dict[str, Any]:
    return {
        "version": state.version,
        "balances": list(state.balances),
        "locked": state.locked,
        "position_count": state.position_count,
        "is_final": state.is_final,
    }


class ControlServer:
    """Answers control requests for one node. ``await nursery.start(server.serve, path)``."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.finality: dict[ChannelId, Finality] = {}
        self.connected: set[Address] = set()
        self.commands: dict[str, tuple[frozenset[str], Handler]] = {}
        for name, fields, handler in (
            ("ping", (), self._ping),
            ("status", (), self._status),
            ("chain_view", ("channel",), self._chain_view),
            (
                "open",
                (
                    "peer_host",
                    "peer_port",
                    "peer_address",
                    "asset",
                    "deposit",
                    "peer_deposit",
                    "oracle",
                    "challenge_period",
                    "asset_decimals",
                ),
                self._open,
            ),
            ("pay", ("channel", "amount"), self._pay),
            ("write_option", _OPTION_FIELDS, self._write_option),
            ("buy_option", _OPTION_FIELDS, self._buy_option),
            ("unwind", ("channel", "position", "holder_share"), self._unwind),
            ("settle", ("channel", "position", "price", "signature"), self._settle),
            ("top_up", ("channel", "amount"), self._top_up),
            ("close", ("channel",), self._close),
            ("dispute", ("channel", "wait"), self._dispute),
            ("withdraw", ("channel", "amount", "asset", "recipient"), self._withdraw),
            ("export", ("channel",), self._export),
        ):
            self.commands[name] = (frozenset(fields), handler)

    # serving -----------------------------------------------------------------------------------
    async def serve(
        self,
        path: str | os.PathLike[str],
        *,
        task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``path`` until cancelled; removes the socket file on the way out."""
        sock_path = Path(path)
        check_socket_path(sock_path)
        await _clear_stale_socket(sock_path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(str(sock_path))
            os.chmod(sock_path, 0o600)
            inode = os.stat(sock_path).st_ino
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        listener = trio.SocketListener(sock)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._follow_events)
                nursery.start_soon(trio.serve_listeners, self._connection, [listener])
                log.info("control socket %s", sock_path)
                task_status.started(sock_path)
        finally:
            with suppress(OSError):
                if os.stat(sock_path).st_ino == inode:
                    os.unlink(sock_path)
            with trio.CancelScope(shield=True):
                await listener.aclose()

    async def _follow_events(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with self.node.events() as stream:
            task_status.started()
            async for event in stream:
                if isinstance(event, FinalityChanged) and event.channel_id is not None:
                    self.finality[event.channel_id] = event.finality
                elif isinstance(event, PeerConnected):
                    self.connected.add(event.peer)
                elif isinstance(event, PeerLost):
                    self.connected.discard(event.peer)

    async def _connection(self, stream: trio.SocketStream) -> None:
        async with stream:
            lines = LineStream(stream)
            while True:
                try:
                    line = await lines.receive_line()
                except ControlProtocolError as exc:
                    with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await lines.send(encode_error(exc))
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if line is None:
                    return
                if not line.strip():
                    continue
                response = await self.respond(line)
                try:
                    await lines.send(response)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return

    async def respond(self, line: bytes) -> bytes:
        """The response line for a request line (never raises for a bad request)."""
        try:
            cmd, raw = decode_request(line)
            return encode_result(await self.handle(cmd, raw))
        except (ChannelError, ChainError, OSError, trio.TooSlowError) as exc:
            log.info("control request failed: %s", error_text(exc))
            return encode_error(exc)
        except Exception as exc:
            log.exception("control request failed unexpectedly")
            return encode_error(exc)

    async def handle(self, cmd: str, raw: Mapping[str, Any]) -> Any:
        """Run one command and return its JSON-ready result."""
        entry = self.commands.get(cmd)
        if entry is None:
            raise BadRequest(f"unknown command {cmd!r} (known: {', '.join(sorted(self.commands))})")
        allowed, handler = entry
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise BadRequest(f"{cmd}: unknown field(s) {', '.join(unknown)}")
        return to_json(await handler(Fields(cmd, raw)))

    # helpers -----------------------------------------------------------------------------------
    def resolve(self, text: str) -> Channel:
        """A channel by its full id or a unique prefix of it (with or without 0x)."""
        want = (text[2:] if text[:2] in ("0x", "0X") else text).lower()
        if not want or any(c not in "0123456789abcdef" for c in want):
            raise BadRequest(f"channel must be a hex id or id prefix, not {text!r}")
        found = [c for c in self.node.channels if c.id.hex().startswith(want)]
        if not found:
            raise UnknownChannel(f"no channel 0x{want}")
        if len(found) > 1:
            raise BadRequest(f"channel prefix 0x{want} matches {len(found)} channels")
        return found[0]

    def channel_row(self, channel: Channel) -> dict[str, Any]:
        positions = channel.positions
        expiries = [p.expiry for p in positions]
        return {
            "id": channel.id,
            "peer": to_checksum(channel.peer_address),
            "peer_connected": channel.peer_address in self.connected,
            "our_index": channel.our_index,
            "phase": channel.phase.value,
            "version": channel.version,
            "our_balance": channel.our_balance,
            "their_balance": channel.their_balance,
            "locked": channel.state.locked,
            "positions": [position_json(p, channel.our_index) for p in positions],
            "finality": _finality_of(channel, self.finality.get(channel.id)),
            "asset": to_checksum(channel.params.asset),
            "asset_decimals": channel.params.asset_decimals,
            "oracle": to_checksum(channel.params.oracle),
            "challenge_period": channel.params.challenge_period,
            "next_expiry": min(expiries) if expiries else None,
            "dispute_deadline": None,
        }

    async def _dispute_deadline(self, channel: Channel) -> int | None:
        try:
            view = await self.node.chain.channel(channel.id)
        except (ChannelError, ChainError) as exc:
            log.info("no dispute deadline for 0x%s: %s", channel.id.hex()[:12], exc)
            return None
        return view.deadline or None

    # commands ----------------------------------------------------------------------------------
    async def _ping(self, f: Fields) -> Any:
        node = self.node
        return {
            "protocol": PROTOCOL,
            "address": to_checksum(node.address),
            "chain_id": node.chain_id,
            "adjudicator": to_checksum(node.chain.address),
            "listen_port": node.listen_port,
            "now": node.now(),
            "channels": len(node.channels),
        }

    async def _status(self, f: Fields) -> Any:
        channels = self.node.channels
        rows = [self.channel_row(channel) for channel in channels]
        await self._merge_node_status(rows)
        for channel, row in zip(channels, rows, strict=True):
            if row["finality"] == Finality.REGISTERED.value and not row["dispute_deadline"]:
                row["dispute_deadline"] = await self._dispute_deadline(channel)
        return rows

    async def _merge_node_status(self, rows: list[dict[str, Any]]) -> None:
        """Take what the node's own ``status()`` knows better (finality, deadlines) when it has
        one; keep our rows' keys for everything the CLI's table relies on."""
        status = getattr(self.node, "status", None)
        if status is None:
            return
        extra = status()
        if inspect.isawaitable(extra):
            extra = await extra
        by_id = {to_json(row["id"]): row for row in rows}
        for item in extra or ():
            if not isinstance(item, Mapping):
                continue
            item_json = to_json(item)
            key = item_json.get("channel_id", item_json.get("id"))
            row = by_id.get(key) if isinstance(key, str) else None
            if row is None:
                continue
            for name, value in item_json.items():
                if name == "deadline" and isinstance(value, int) and value > 0:
                    row["dispute_deadline"] = value
                elif name in ("finality", "dispute_deadline") and value is not None:
                    row[name] = value
                elif name not in row:
                    row[name] = value

    async def _chain_view(self, f: Fields) -> Any:
        channel = self.resolve(f.get_str("channel"))
        view = await self.node.chain.channel(channel.id)
        return {
            "status": view.status.name.lower(),
            "version": view.version,
            "deadline": view.deadline,
            "deposits": list(view.deposits),
            "withdrawn": list(view.withdrawn),
            "now": self.node.now(),
            "phase": channel.phase.value,
            "finality": _finality_of(channel, self.finality.get(channel.id)),
        }

    async def _open(self, f: Fields) -> Any:
        port = f.get_int("peer_port")
        if not 0 < port < 65536:
            raise BadRequest(f"open: peer_port {port} is not a TCP port")
        channel = await self.node.open_channel(
            peer=(f.get_str("peer_host"), port),
            peer_address=f.get_address("peer_address"),
            asset=f.get_address("asset"),
            deposit=f.get_int("deposit"),
            peer_deposit=f.get_int("peer_deposit", 0),
            oracle=f.get_address("oracle"),
            challenge_period=f.get_int("challenge_period", 3600),
            asset_decimals=f.get_int("asset_decimals") if f.has("asset_decimals") else None,
        )
        return self.channel_row(channel)

    async def _pay(self, f: Fields) -> Any:
        amount = f.get_int("amount")
        channel = self.resolve(f.get_str("channel"))
        return state_json(await channel.pay(amount))

    async def _option(self, f: Fields, write: bool) -> Any:
        kind = f.get_str("kind").lower()
        if kind not in ("call", "put"):
            raise BadRequest(f"{f.cmd}: kind must be 'call' or 'put', not {kind!r}")
        if f.has("expiry") == f.has("expiry_in"):
            raise BadRequest(f"{f.cmd}: give exactly one of expiry and expiry_in")
        expiry = (
            f.get_int("expiry") if f.has("expiry") else self.node.now() + f.get_int("expiry_in")
        )
        underlying, strike = f.get_str("underlying"), f.get_int("strike")
        quantity, premium = f.get_int("quantity"), f.get_int("premium")
        collateral = f.get_int("collateral")
        channel = self.resolve(f.get_str("channel"))
        trade = channel.write_option if write else channel.buy_option
        position = await trade(
            kind=kind,
            underlying=underlying,
            strike=strike,
            expiry=expiry,
            quantity=quantity,
            premium=premium,
            collateral=collateral,
        )
        return {
            "position": position_json(position, channel.our_index),
            "version": channel.version,
            "balances": [channel.our_balance, channel.their_balance],
        }

    async def _write_option(self, f: Fields) -> Any:
        return await self._option(f, write=True)

    async def _buy_option(self, f: Fields) -> Any:
        return await self._option(f, write=False)

    async def _unwind(self, f: Fields) -> Any:
        position, share = f.get_int("position"), f.get_int("holder_share")
        channel = self.resolve(f.get_str("channel"))
        return state_json(await channel.unwind(position, share))

    async def _settle(self, f: Fields) -> Any:
        """Settle an expired position off chain with the oracle's signed price at its expiry;
        the node also keeps the attestation to settle on chain should the channel get there."""
        position_id, price = f.get_int("position"), f.get_int("price")
        signature = hex_bytes(f.get_str("signature"), "signature")
        channel = self.resolve(f.get_str("channel"))
        matching = [p for p in channel.positions if p.id == position_id]
        if not matching:
            raise BadRequest(f"settle: no open position {position_id}")
        position = matching[0]
        attestation = Attestation(position.underlying, position.expiry, Price(price))
        self.node.add_attestation(attestation, signature)
        return state_json(await channel.settle(position_id, attestation, signature))

    async def _top_up(self, f: Fields) -> Any:
        amount = f.get_int("amount")
        channel = self.resolve(f.get_str("channel"))
        return state_json(await channel.top_up(amount))

    async def _close(self, f: Fields) -> Any:
        channel = self.resolve(f.get_str("channel"))
        await channel.close()
        self.finality.setdefault(channel.id, Finality.CONCLUDED)
        return self.channel_row(channel)

    async def _dispute(self, f: Fields) -> Any:
        channel = self.resolve(f.get_str("channel"))
        dispute = getattr(self.node, "dispute", None)
        if dispute is None:
            raise Unsupported("this node cannot force a close yet (Node.dispute is missing)")
        await dispute(channel.id)
        if f.has("wait") and f.raw["wait"] is False:
            return self.channel_row(channel)
        # The node registers and returns; its watcher refutes anything older and concludes once
        # the challenge period is over. The client shows the countdown meanwhile (chain_view).
        await channel.wait_phase(Phase.CLOSED)
        return self.channel_row(channel)

    async def _withdraw(self, f: Fields) -> Any:
        recipient = f.get_address("recipient") if f.has("recipient") else self.node.address
        if f.has("channel"):
            if f.has("asset"):
                raise BadRequest("withdraw: give a channel and an amount, or an asset, not both")
            amount = f.get_int("amount")
            channel = self.resolve(f.get_str("channel"))
            return state_json(await channel.withdraw(amount, recipient))
        if f.has("amount"):
            raise BadRequest("withdraw: an amount needs a channel")
        asset = f.get_address("asset")
        credit = await self.node.chain.credits(asset, self.node.address)
        if credit == 0:
            return {"asset": asset, "withdrawn": 0, "recipient": recipient}
        receipt = await self.node.chain.withdraw(asset, recipient)
        return {
            "asset": asset,
            "withdrawn": credit,
            "recipient": recipient,
            "tx": receipt.transaction_hash,
        }

    async def _export(self, f: Fields) -> Any:
        node = self.node
        if f.has("channel"):
            channels = [self.resolve(f.get_str("channel"))]
        else:
            channels = node.channels
        exported: dict[str, Any] = {}
        for channel in channels:
            exported["0x" + channel.id.hex()] = {
                "params": {
                    "chain_id": channel.params.chain_id,
                    "adjudicator": to_checksum(channel.params.adjudicator),
                    "asset": to_checksum(channel.params.asset),
                    "asset_decimals": channel.params.asset_decimals,
                    "participants": [to_checksum(p) for p in channel.params.participants],
                    "challenge_period": channel.params.challenge_period,
                    "oracle": to_checksum(channel.params.oracle),
                    "nonce": channel.params.nonce,
                },
                "our_index": channel.our_index,
                "states": await node.store.export_audit(channel.id),
            }
        return {
            "format": EXPORT_FORMAT,
            "node": to_checksum(node.address),
            "chain_id": node.chain_id,
            "adjudicator": to_checksum(node.chain.address),
            "exported_at": node.now(),
            "channels": exported,
        }


_OPTION_FIELDS = (
    "channel",
    "kind",
    "underlying",
    "strike",
    "expiry",
    "expiry_in",
    "quantity",
    "premium",
    "collateral",
)


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ControlProtocolError(
            f"control socket path {path} is longer than {MAX_SOCKET_PATH} bytes (a Unix socket "
            "limit); set a shorter [node] control path"
        )


async def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a node that died; refuse if a node still answers on it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketInUse(f"{path} exists and is not a socket; refusing to replace it")
    try:
        stream = await trio.open_unix_socket(str(path))
    except OSError:
        os.unlink(path)  # nobody listens: a leftover of a node that did not shut down cleanly
        return
    await stream.aclose()
    raise ControlSocketInUse(f"another node is already serving {path}")


async def serve_control(
    node: Node,
    path: str | os.PathLike[str],
    *,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``node``'s control socket at ``path`` until cancelled.

    ``await nursery.start(serve_control, node, path)`` returns once the socket accepts requests.
    """
    await ControlServer(node).serve(path, task_status=task_status)


__all__ = [
    "EXPORT_FORMAT",
    "MAX_LINE",
    "PROTOCOL",
    "BadRequest",
    "ControlClient",
    "ControlError",
    "ControlProtocolError",
    "ControlServer",
    "ControlSocketInUse",
    "NodeNotRunning",
    "Unsupported",
    "call",
    "connect_control",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_result",
    "error_text",
    "serve_control",
    "to_json",
]
