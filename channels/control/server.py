"""The control server: answers requests on a node's Unix socket."""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from channels.control.codec import (
    EXPORT_FORMAT,
    MAX_SOCKET_PATH,
    PROTOCOL,
    LineStream,
    decode_request,
    encode_error,
    encode_result,
    hex_bytes,
    to_json,
)
from channels.control.errors import (
    BadRequest,
    ControlProtocolError,
    ControlSocketInUse,
    error_text,
)
from channels.control.export_stream import send_export, wants_stream
from channels.control.fields import OPTION_FIELDS, Fields, Handler
from channels.control.operator import register_operator_commands
from channels.control.quotes import QuoteCommands
from channels.control.views import (
    balances_json,
    finality_of,
    position_json,
    state_json,
    trade_json,
)
from channels.core.errors import ChainError, ChannelError, UnknownChannel
from channels.core.model import Attestation, ChannelId, Price, to_checksum
from channels.core.node_events import Finality, FinalityChanged
from channels.core.options import check_attestation
from channels.core.protocol import Phase

if TYPE_CHECKING:
    from channels.ops.health import HealthMonitor
    from channels.runtime.channel import Channel
    from channels.runtime.node import Node

log = logging.getLogger("channels.control")


# Server ----------------------------------------------------------------------------------------
class ControlServer:
    """Answers control requests for one node. ``await nursery.start(server.serve, path)``."""

    def __init__(
        self, node: Node, health: HealthMonitor | None = None, metrics_url: str | None = None
    ) -> None:
        self.node = node
        self.health = health
        self.metrics_url = metrics_url
        self.finality: dict[ChannelId, Finality] = {}
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
            ("write_option", OPTION_FIELDS, self._write_option),
            ("buy_option", OPTION_FIELDS, self._buy_option),
            ("unwind", ("channel", "position", "holder_share"), self._unwind),
            ("settle", ("channel", "position", "price", "signature"), self._settle),
            ("top_up", ("channel", "amount"), self._top_up),
            ("close", ("channel",), self._close),
            ("dispute", ("channel", "wait", "force"), self._dispute),
            ("checkpoint", ("channel",), self._checkpoint),
            ("withdraw", ("channel", "amount", "asset", "recipient"), self._withdraw),
            ("export", ("channel",), self._export),
            *QuoteCommands(self).table(),  # firm quotes (channels/control/quotes.py)
        ):
            self.commands[name] = (frozenset(fields), handler)
        register_operator_commands(self)  # asset_info, getinfo, peers (channels.control.operator)

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
                if wants_stream(line):  # [reliability] many lines (control/export_stream.py)
                    try:
                        await send_export(self, lines, line)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return
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
            "peer_connected": self.node.is_connected(channel.peer_address),
            "our_index": channel.our_index,
            "phase": channel.phase.value,
            "version": channel.version,
            **balances_json(channel.state, channel.our_index),
            "locked": channel.state.locked,
            "positions": [position_json(p, channel.our_index) for p in positions],
            "finality": finality_of(channel, self.finality.get(channel.id)),
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
            # consent: the transaction account against the gas reserve that defends the channels
            "gas_reserve": (
                node.gatekeeper.reserve_status() if hasattr(node, "gatekeeper") else None
            ),
            "connections": (
                node.gatekeeper.connection_status() if hasattr(node, "gatekeeper") else None
            ),
            # [reliability] "now" is extrapolated; these say whether the chain is actually seen.
            **chain_health(node),
        }

    async def _status(self, f: Fields) -> Any:
        rows = []
        for info in self.node.status():
            channel = self.node.channel(info.channel_id)
            row = self.channel_row(channel)
            backed_up = self.node.towers.backed_up(channel.id) if self.node.towers.towers else -1
            row.update(
                peer_connected=info.connected,
                in_sync=info.in_sync,
                known_current=info.known_current,
                backed_up=backed_up if backed_up >= 0 else None,  # the newest version a tower acked
                in_flight=list(info.in_flight),
                dispute_deadline=info.deadline or None,
            )
            if row["finality"] == Finality.REGISTERED.value and not row["dispute_deadline"]:
                row["dispute_deadline"] = await self._dispute_deadline(channel)
            rows.append(row)
        return rows

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
            "finality": finality_of(channel, self.finality.get(channel.id)),
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
        return state_json(await channel.pay(amount), channel.our_index)

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
        return trade_json(channel, position)

    async def _write_option(self, f: Fields) -> Any:
        return await self._option(f, write=True)

    async def _buy_option(self, f: Fields) -> Any:
        return await self._option(f, write=False)

    async def _unwind(self, f: Fields) -> Any:
        position, share = f.get_int("position"), f.get_int("holder_share")
        channel = self.resolve(f.get_str("channel"))
        return state_json(await channel.unwind(position, share), channel.our_index)

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
        # Checked before the watcher keeps it: a wrong file must not replace a good attestation.
        check_attestation(channel.domain, channel.params.oracle, attestation, signature)
        self.node.add_attestation(attestation, signature)
        state = await channel.settle(position_id, attestation, signature)
        return state_json(state, channel.our_index)

    async def _top_up(self, f: Fields) -> Any:
        amount = f.get_int("amount")
        channel = self.resolve(f.get_str("channel"))
        return state_json(await channel.top_up(amount), channel.our_index)

    async def _close(self, f: Fields) -> Any:
        channel = self.resolve(f.get_str("channel"))
        await channel.close()
        self.finality.setdefault(channel.id, Finality.CONCLUDED)
        return self.channel_row(channel)

    async def _dispute(self, f: Fields) -> Any:
        channel = self.resolve(f.get_str("channel"))
        await self.node.dispute(channel.id, force=f.has("force") and f.raw["force"] is True)
        if f.has("wait") and f.raw["wait"] is False:
            return self.channel_row(channel)
        # The node registers and returns; its watcher refutes anything older and concludes once
        # the challenge period is over. The client shows the countdown meanwhile (chain_view).
        await channel.wait_phase(Phase.CLOSED)
        return self.channel_row(channel)

    async def _checkpoint(self, f: Fields) -> Any:
        channel = self.resolve(f.get_str("channel"))
        await self.node.checkpoint(channel.id)
        return self.channel_row(channel)

    async def _withdraw(self, f: Fields) -> Any:
        recipient = f.get_address("recipient") if f.has("recipient") else self.node.address
        if f.has("channel"):
            if f.has("asset"):
                raise BadRequest("withdraw: give a channel and an amount, or an asset, not both")
            amount = f.get_int("amount")
            channel = self.resolve(f.get_str("channel"))
            return state_json(await channel.withdraw(amount, recipient), channel.our_index)
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


def chain_health(node: Node) -> dict[str, Any]:
    watcher = getattr(node, "watcher", None)
    if watcher is None:
        return {}
    return {
        "chain_stale": watcher.head_stale,
        "chain_blind_for": round(watcher.health.blind_for, 1),
    }


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
    health: HealthMonitor | None = None,
    metrics_url: str | None = None,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``node``'s control socket at ``path`` until cancelled (``metrics_url``: where the
    node's /metrics and /healthz are served, for ``getinfo``).

    ``await nursery.start(serve_control, node, path)`` returns once the socket accepts requests.
    """
    await ControlServer(node, health, metrics_url).serve(path, task_status=task_status)
