"""The audit trail's export format and its independent verifier (docs/PROTOCOL.md, "Audit
export").

An export is JSON Lines (one JSON object per line, each at most :data:`MAX_RECORD` bytes), so it
streams at any length:

1. ``{"format": "option-channels-audit/2", "node": addr, "chain_id": n, "adjudicator": addr,
   "exported_at": t}``
2. per channel: ``{"channel": id, "params": {...}, "our_index": i}``, then the signed firm quotes
   of the channel, ``{"channel": id, "quote": {...}}`` (:func:`quote_record`), then its states in
   version order, ``{"channel": id, "state": {...}}``, then its chain transactions,
   ``{"channel": id, "tx": {"kind": k, "tx_hash": h, "status": s}}``;
3. ``{"end": true, "channels": c, "quotes": q, "states": s, "txs": t}``.

:func:`verify_export` checks it without trusting the node that wrote it: each channel id is the
hash of its parameters; each state's hash is recomputed from its fields (EIP-712 struct hash);
both signatures recover to the two participants under the channel's EIP-712 domain; versions
increase; each link is ``keccak256(prev_link ‖ state_hash ‖ uint64 version)`` starting from 32
zero bytes, and each state names its predecessor's link; each quote is signed by its quoter, a
participant, for this channel; each trade that cites a quote is a fill of it (its option, side,
collateral and premium are the quote's for the quantity, and the fills stay within its maximum);
each transaction hash is 32 bytes; the end record's counts match. Pure: no I/O (whether each
transaction is on chain with its outcome is checked by ``adjudicator/audit_chain.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from channels.core import boundedjson, eip712
from channels.core.audit_fields import hex_field, uint_field
from channels.core.audit_quotes import CheckedQuote, check_fill, parse_quote
from channels.core.errors import ChannelError, RemoteError
from channels.core.hashing import keccak256
from channels.core.model import (
    Address,
    Amount,
    ChannelId,
    Params,
    State,
    Version,
    address,
    to_checksum,
)
from channels.core.signing import verify

FORMAT = "option-channels-audit/3"
MAX_RECORD = 1 << 20
ZERO_LINK = b"\0" * 32


class AuditInvalid(RemoteError):
    """An export does not check out; the message names the line and what is wrong."""

    rule = "AuditInvalid"


@dataclass(frozen=True, slots=True)
class AuditTx:
    """One chain transaction an export cites (its line, to check it on chain)."""

    line: int
    channel_id: bytes
    kind: str
    tx_hash: bytes
    status: str


@dataclass(frozen=True)
class AuditReport:
    """What a verified export contains."""

    channels: int
    states: int
    txs: int
    latest: dict[str, int]
    """The newest verified version of each channel (by 0x channel id)."""
    quotes: int = 0
    fills: int = 0
    """Trades that fill a quote, each checked against the quote's terms."""
    chain_txs: tuple[AuditTx, ...] = ()
    chain_id: int = 0
    adjudicator: bytes = b""


def link_of(prev_link: bytes, state_hash: bytes, version: int) -> bytes:
    """``keccak256(prev_link ‖ state_hash ‖ uint64 version)``: each state's link in the chain."""
    return keccak256(prev_link + state_hash + version.to_bytes(8, "big"))


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def params_record(params: Params) -> dict[str, Any]:
    return {
        "chain_id": params.chain_id,
        "adjudicator": to_checksum(params.adjudicator),
        "asset": to_checksum(params.asset),
        "asset_decimals": params.asset_decimals,
        "participants": [to_checksum(p) for p in params.participants],
        "challenge_period": params.challenge_period,
        "oracle": to_checksum(params.oracle),
        "nonce": params.nonce,
    }


def header_record(node: bytes, chain_id: int, adjudicator: bytes, now: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "node": to_checksum(node),
        "chain_id": chain_id,
        "adjudicator": to_checksum(adjudicator),
        "exported_at": now,
    }


# verifying -------------------------------------------------------------------------------------


def _pair(value: object, what: str) -> tuple[Amount, Amount]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{what} must be a pair")
    return Amount(uint_field(value[0], what)), Amount(uint_field(value[1], what))


def _params(raw: Mapping[str, Any]) -> Params:
    participants = raw["participants"]
    if not isinstance(participants, list) or len(participants) != 2:
        raise ValueError("participants must be a pair")
    return Params(
        chain_id=uint_field(raw["chain_id"], "chain_id"),
        adjudicator=address(raw["adjudicator"]),
        asset=address(raw["asset"]),
        asset_decimals=uint_field(raw["asset_decimals"], "asset_decimals"),
        participants=(address(participants[0]), address(participants[1])),
        challenge_period=uint_field(raw["challenge_period"], "challenge_period"),
        oracle=address(raw["oracle"]),
        nonce=uint_field(raw["nonce"], "nonce"),
    )


def _state(cid: ChannelId, raw: Mapping[str, Any]) -> State:
    final = raw["is_final"]
    if not isinstance(final, bool):
        raise ValueError("is_final must be a boolean")
    return State(
        channel_id=cid,
        version=Version(uint_field(raw["version"], "version")),
        balances=_pair(raw["balances"], "balances"),
        deposited=_pair(raw["deposited"], "deposited"),
        withdrawn=_pair(raw["withdrawn"], "withdrawn"),
        locked=Amount(uint_field(raw["locked"], "locked")),
        positions_root=hex_field(raw["positions_root"], 32, "positions_root"),
        position_count=uint_field(raw["position_count"], "position_count"),
        is_final=final,
    )


@dataclass
class _Channel:
    params: Params
    domain: eip712.Domain
    link: bytes = ZERO_LINK
    version: int = -1
    states: int = 0
    quotes: dict[bytes, CheckedQuote] = field(default_factory=dict)


class _Verifier:
    def __init__(self) -> None:
        self.header: dict[str, Any] | None = None
        self.channels: dict[str, _Channel] = {}
        self.states = 0
        self.txs = 0
        self.quotes = 0
        self.fills = 0
        self.line = 0
        self.chain_txs: list[AuditTx] = []
        self.ended = False

    def record(self, rec: Mapping[str, Any]) -> None:
        if self.ended:
            raise ValueError("a record after the end record")
        if self.header is None:
            if rec.get("format") != FORMAT:
                raise ValueError(f"the first record must name the format {FORMAT!r}")
            self.header = dict(rec)
            uint_field(rec["chain_id"], "chain_id")
            address(rec["adjudicator"])
            return
        if rec.get("end") is True:
            counts = tuple(rec.get(k) for k in ("channels", "quotes", "states", "txs"))
            held = (len(self.channels), self.quotes, self.states, self.txs)
            if counts != held:
                raise ValueError(f"the end record counts {counts}, the export holds {held}")
            self.ended = True
            return
        cid_text = rec.get("channel")
        if not isinstance(cid_text, str):
            raise ValueError("a record needs a channel id")
        if "params" in rec:
            self._channel(cid_text, rec)
        elif "quote" in rec:
            self._quote(cid_text, rec["quote"])
        elif "state" in rec:
            self._state_record(cid_text, rec["state"])
        elif "tx" in rec:
            self._tx(cid_text, rec["tx"])
        else:
            raise ValueError("unknown record")

    def _channel(self, cid_text: str, rec: Mapping[str, Any]) -> None:
        if cid_text in self.channels:
            raise ValueError("the channel appears twice")
        params = _params(rec["params"])
        assert self.header is not None
        if params.chain_id != self.header["chain_id"] or params.adjudicator != address(
            self.header["adjudicator"]
        ):
            raise ValueError("the channel is on another chain or adjudicator than the export")
        if hex_field(cid_text, 32, "channel") != params.channel_id:
            raise ValueError("the channel id is not the hash of its parameters")
        domain = eip712.Domain(params.chain_id, Address(params.adjudicator))
        self.channels[cid_text] = _Channel(params, domain)

    def _state_record(self, cid_text: str, raw: object) -> None:
        ch = self.channels.get(cid_text)
        if ch is None:
            raise ValueError("a state of a channel not declared before it")
        if not isinstance(raw, dict):
            raise ValueError("a state must be an object")
        state = _state(ch.params.channel_id, raw)
        if state.version <= ch.version:
            raise ValueError(f"version {state.version} does not follow {ch.version}")
        state_hash = eip712.state_struct_hash(state)
        if hex_field(raw["state_hash"], 32, "state_hash") != state_hash:
            raise ValueError(f"v{state.version}: the state hash does not match its fields")
        if hex_field(raw["prev_link"], 32, "prev_link") != ch.link:
            raise ValueError(f"v{state.version}: prev_link is not the previous state's link")
        link = link_of(ch.link, state_hash, state.version)
        if hex_field(raw["link"], 32, "link") != link:
            raise ValueError(f"v{state.version}: the link does not match its formula")
        sigs = raw["signatures"]
        if not isinstance(sigs, list) or len(sigs) != 2:
            raise ValueError(f"v{state.version}: two signatures expected")
        digest = eip712.state_digest(ch.domain, state)
        for who, sig in zip(ch.params.participants, sigs, strict=True):
            if sig is None:
                raise ValueError(f"v{state.version}: a signature is missing")
            try:
                verify(digest, hex_field(sig, 65, "signature"), who)
            except ChannelError as exc:
                raise ValueError(f"v{state.version}: {exc}") from None
        trades = raw.get("trades")
        if not isinstance(trades, list) or not all(isinstance(t, dict) for t in trades):
            raise ValueError(f"v{state.version}: trades must be a list of objects")
        for trade in trades:
            try:
                self.fills += check_fill(trade, ch.quotes)
            except (ValueError, KeyError) as exc:
                raise ValueError(f"v{state.version}: {exc}") from None
        ch.link, ch.version = link, state.version
        ch.states += 1
        self.states += 1

    def _quote(self, cid_text: str, raw: object) -> None:
        ch = self.channels.get(cid_text)
        if ch is None:
            raise ValueError("a quote of a channel not declared before it")
        if ch.version >= 0:
            raise ValueError("a channel's quotes come before its states")
        checked = parse_quote(raw, ch.params, ch.domain)
        if checked.quote.quote_id in ch.quotes:
            raise ValueError("the quote appears twice")
        ch.quotes[checked.quote.quote_id] = checked
        self.quotes += 1

    def _tx(self, cid_text: str, raw: object) -> None:
        ch = self.channels.get(cid_text)
        if ch is None:
            raise ValueError("a transaction of a channel not declared before it")
        if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
            raise ValueError("a transaction needs a kind")
        status = raw.get("status")
        if not isinstance(status, str):
            raise ValueError("a transaction needs a status")
        tx_hash = hex_field(raw["tx_hash"], 32, "tx_hash")
        self.chain_txs.append(
            AuditTx(self.line, ch.params.channel_id, raw["kind"], tx_hash, status)
        )
        self.txs += 1


def verify_export(lines: Iterable[bytes | str]) -> AuditReport:
    """Check an export line by line; :class:`AuditInvalid` names the first line that fails."""
    verifier = _Verifier()
    number = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = boundedjson.loads(line, max_bytes=MAX_RECORD, max_depth=16)
            if not isinstance(rec, dict):
                raise ValueError("a record must be a JSON object")
            verifier.line = number
            verifier.record(rec)
        except (ValueError, KeyError, TypeError, ChannelError) as exc:
            raise AuditInvalid(f"line {number}: {exc}") from None
    if not verifier.ended:
        raise AuditInvalid(f"line {number}: the export ends without its end record (truncated)")
    assert verifier.header is not None
    return AuditReport(
        channels=len(verifier.channels),
        states=verifier.states,
        txs=verifier.txs,
        latest={cid: ch.version for cid, ch in verifier.channels.items()},
        quotes=verifier.quotes,
        fills=verifier.fills,
        chain_txs=tuple(verifier.chain_txs),
        chain_id=uint_field(verifier.header["chain_id"], "chain_id"),
        adjudicator=address(verifier.header["adjudicator"]),
    )
