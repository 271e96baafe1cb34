"""A JSON-RPC fault proxy on 127.0.0.1 in front of anvil (docs/THREATS.md section 7, RPC errors).

A tiny HTTP/1.1 server (keep-alive, Content-Length bodies: what httpx sends) that forwards each
JSON-RPC request to the upstream node, except when a :class:`Rule` fires for it. Rules fire on a
schedule (every ``every``-th matching request, at most ``limit`` times), so a run is repeatable.

Faults:

``http500``        answer HTTP 500 without forwarding
``http500_after``  forward (the node acts on it), then answer HTTP 500 (a lost response)
``timeout``        hold the request ``delay`` seconds (longer than the client's timeout), then
                   close the connection without an answer
``nonce_too_low``  answer the JSON-RPC error "nonce too low" without forwarding
``already_known``  forward, then answer the JSON-RPC error "already known"
``stale_block``    forward, then report a head ``lag`` blocks older (a lagging backend)
``old_timestamp``  forward, then rewrite a block's ``timestamp`` to wall time minus ``lag``
                   (a node fed an old chain: time dilation / eclipse)

Hostile replies (a poisoned or intercepted endpoint), none forwarded:

``deep``           a 200 KB line of nested brackets (``size`` bytes if set)
``huge``           a syntactically valid reply whose ``result`` string is ``size`` bytes
``truncated``      the first half of the real reply
``wrong_type``     the real reply with its ``result`` replaced by an object of lists
``not_json``       bytes that are not JSON (and not UTF-8)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio


@dataclass
class Rule:
    method: str | None
    fault: str
    every: int = 1
    limit: int | None = None
    delay: float = 0.0
    lag: int = 0
    size: int = 0
    seen: int = 0
    fired: int = 0

    def fires(self, method: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        self.seen += 1
        if self.limit is not None and self.fired >= self.limit:
            return False
        if self.seen % self.every:
            return False
        self.fired += 1
        return True


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    port: int = 0
    enabled: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with httpx.AsyncClient(timeout=30.0) as client:
            self._client = client
            task_status.started(self.port)
            await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                answer = await self._answer(body)
                if answer is None:
                    return  # close without a response
                status, payload = answer
                reason = b"OK" if status == 200 else b"Internal Server Error"
                await stream.send_all(
                    b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (status, reason, len(payload), payload)
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def _forward(self, body: bytes) -> dict[str, Any]:
        resp = await self._client.post(
            self.upstream, content=body, headers={"content-type": "application/json"}
        )
        result: dict[str, Any] = resp.json()
        return result

    async def _answer(self, body: bytes) -> tuple[int, bytes] | None:
        req = json.loads(body)
        method = str(req.get("method"))
        self.requests[method] += 1
        rule = None
        if self.enabled:
            rule = next((r for r in self.rules if r.fires(method)), None)
        if rule is None:
            return 200, json.dumps(await self._forward(body)).encode()
        self.injected[rule.fault] += 1
        fault = rule.fault
        if fault == "http500":
            return 500, b"upstream failure"
        if fault == "timeout":
            await trio.sleep(rule.delay)
            return None
        hostile = await self._hostile(rule, req, body)
        if hostile is not None:
            return 200, hostile
        if fault == "nonce_too_low":
            error = {"code": -32000, "message": "nonce too low"}
            return 200, json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "error": error}).encode()
        answer = await self._forward(body)
        if fault == "http500_after":
            return 500, b"lost response"
        if fault == "already_known":
            error = {"code": -32000, "message": "already known"}
            answer = {"jsonrpc": "2.0", "id": req.get("id"), "error": error}
        elif fault == "stale_block" and isinstance(answer.get("result"), str):
            answer["result"] = hex(max(0, int(answer["result"], 16) - rule.lag))
        elif fault == "old_timestamp" and isinstance(answer.get("result"), dict):
            answer["result"]["timestamp"] = hex(int(time.time()) - rule.lag)
        return 200, json.dumps(answer).encode()

    async def _hostile(self, rule: Rule, req: dict[str, Any], body: bytes) -> bytes | None:
        fault = rule.fault
        if fault == "deep":
            half = (rule.size or 200_000) // 2
            return b"[" * half + b"]" * half
        if fault == "huge":
            head = b'{"jsonrpc":"2.0","id":%d,"result":"0x' % int(req.get("id") or 0)
            return head + b"0" * (rule.size or 40 << 20) + b'"}'
        if fault == "not_json":
            return b"\xff\xfe<html>gateway error</html>"
        if fault not in ("truncated", "wrong_type"):
            return None
        answer = json.dumps(await self._forward(body)).encode()
        if fault == "truncated":
            return answer[: len(answer) // 2]
        wrong = {"jsonrpc": "2.0", "id": req.get("id"), "result": {"a": [[1], {"b": None}]}}
        return json.dumps(wrong).encode()
