"""The hash-chained history: links, reading and verifying a channel's states, the audit export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from channels.core import eip712, wire
from channels.core.errors import BadSignature, UnknownChannel
from channels.core.hashing import keccak256
from channels.core.messages import RESYNC_HISTORY
from channels.core.model import ChannelId, Params, SignedUpdate, symbol_text, to_checksum
from channels.core.options import (
    CreditDeposit,
    DebitWithdrawal,
    Finalize,
    OpenOption,
    Pay,
    Settle,
    Trade,
    Unwind,
)
from channels.core.signing import verify
from channels.store.base import StoreBase
from channels.store.errors import CorruptStore
from channels.store.rows import decoded, hex_text
from channels.store.schema import ZERO_LINK

_PAGE = 256  # rows read per query when walking a history


def chain_link(prev_link: bytes, state_hash: bytes, version: int) -> bytes:
    """The history link of a state: ``keccak(prev_link ‖ state_hash ‖ uint64 version)``."""
    return keccak256(prev_link + state_hash + version.to_bytes(8, "big"))


def trade_summary(trade: Trade) -> dict[str, Any]:
    """A JSON-friendly description of a trade (amounts as decimal strings)."""
    if isinstance(trade, Pay):
        return {"type": "Pay", "payer": trade.payer, "amount": str(trade.amount)}
    if isinstance(trade, OpenOption):
        p = trade.position
        return {
            "type": "OpenOption",
            "position_id": p.id,
            "underlying": symbol_text(p.underlying),
            "kind": p.kind.name.lower(),
            "strike": str(p.strike),
            "expiry": p.expiry,
            "quantity": str(p.quantity),
            "writer": p.writer,
            "collateral": str(p.collateral),
            "premium": str(trade.premium),
            # firm quotes: the quote this trade fills, if any
            "quote_id": None if trade.quote_id is None else hex_text(trade.quote_id),
        }
    if isinstance(trade, Unwind):
        return {
            "type": "Unwind",
            "position_id": trade.position_id,
            "holder_share": str(trade.holder_share),
        }
    if isinstance(trade, Settle):
        return {
            "type": "Settle",
            "position_id": trade.position_id,
            "price": str(trade.attestation.price),
            "expiry": trade.attestation.expiry,
        }
    if isinstance(trade, CreditDeposit):
        return {
            "type": "CreditDeposit",
            "participant": trade.participant,
            "amount": str(trade.amount),
        }
    if isinstance(trade, DebitWithdrawal):
        return {
            "type": "DebitWithdrawal",
            "participant": trade.participant,
            "amount": str(trade.amount),
            "recipient": to_checksum(trade.recipient),
        }
    if isinstance(trade, Finalize):
        return {"type": "Finalize"}
    return {"type": type(trade).__name__}  # pragma: no cover - every trade type is listed


class HistoryReads(StoreBase):
    """The :class:`Store` methods that read and check a channel's history."""

    def history(self, channel_id: ChannelId, start: int = 0) -> Iterator[SignedUpdate]:
        """The stored fully signed states of a channel, oldest first, from version ``start``."""
        for row in self._history_rows(channel_id, start):
            yield decoded("a stored update", wire.decode_update, row[2])

    def verify_history(self, channel_id: ChannelId, *, signatures: bool = True) -> int:
        """Check the whole history of a channel; return the number of states.

        Raises :class:`CorruptStore` naming the first version that does not verify: a broken or
        re-ordered chain, a missing tail, an altered state or update blob, a bad signature, or a
        stored state that disagrees with our own signature record.
        """
        self._check_open()
        row = self._conn.execute(
            "SELECT params, head_version, head_link FROM channels WHERE channel_id = ?",
            (channel_id,),
        ).fetchone()
        if row is None:
            raise UnknownChannel(f"no stored channel 0x{channel_id.hex()}")
        params = decoded("channel parameters", wire.decode_params, row[0])
        head_version, head_link = row[1], bytes(row[2])
        domain = eip712.Domain(params.chain_id, params.adjudicator)
        prev = ZERO_LINK
        count = 0
        last: int | None = None
        where = f"channel 0x{channel_id.hex()[:16]}"
        for version, state_hash, blob, blob_hash, prev_link, link in self._history_rows(
            channel_id, 0
        ):
            if bytes(prev_link) != prev:
                raise CorruptStore(f"{where} v{version}: the history chain is broken before it")
            if chain_link(prev, bytes(state_hash), version) != bytes(link):
                raise CorruptStore(f"{where} v{version}: its link does not match")
            if keccak256(bytes(blob)) != bytes(blob_hash):
                raise CorruptStore(f"{where} v{version}: the stored update bytes were altered")
            update = decoded(f"{where} v{version}", wire.decode_update, blob)
            self._check_update(update, channel_id, version, bytes(state_hash), where)
            if signatures:
                digest = eip712.state_digest(domain, update.signed.state)
                for who, sig in enumerate(update.signed.signatures):
                    if sig is None:
                        raise CorruptStore(f"{where} v{version}: signature {who} is missing")
                    try:
                        verify(digest, sig, params.participants[who])
                    except BadSignature as exc:
                        raise CorruptStore(f"{where} v{version}: signature {who}: {exc}") from exc
            prev = bytes(link)
            last = version
            count += 1
        if last != head_version or prev != (head_link if last is not None else ZERO_LINK):
            raise CorruptStore(
                f"{where}: the history ends at v{last}, but the channel's head is v{head_version}"
                " (states were removed or added behind the store's back)"
            )
        mismatch = self._conn.execute(
            "SELECT s.version FROM states s LEFT JOIN signed_versions g "
            "ON g.channel_id = s.channel_id AND g.version = s.version "
            "WHERE s.channel_id = ? AND (g.state_hash IS NULL OR g.state_hash != s.state_hash) "
            "LIMIT 1",
            (channel_id,),
        ).fetchone()
        if mismatch is not None:
            raise CorruptStore(
                f"{where} v{mismatch[0]}: the stored state is not the one our signature record "
                "names"
            )
        return count

    def export_audit(self, channel_id: ChannelId) -> list[dict[str, Any]]:
        """The history as JSON-friendly dicts (amounts as decimal strings, bytes as 0x hex)."""
        out: list[dict[str, Any]] = []
        rows = self._history_rows(channel_id, 0, with_time=True)
        for version, state_hash, blob, _bh, prev_link, link, stored_at in rows:
            update = decoded(f"v{version}", wire.decode_update, blob)
            state = update.signed.state
            out.append(
                {
                    "version": version,
                    "state_hash": hex_text(state_hash),
                    "prev_link": hex_text(prev_link),
                    "link": hex_text(link),
                    "stored_at": stored_at,
                    "signatures": [
                        None if s is None else hex_text(s) for s in update.signed.signatures
                    ],
                    "balances": [str(b) for b in state.balances],
                    "deposited": [str(d) for d in state.deposited],
                    "withdrawn": [str(w) for w in state.withdrawn],
                    "locked": str(state.locked),
                    "positions_root": hex_text(state.positions_root),
                    "position_count": state.position_count,
                    "is_final": state.is_final,
                    "trades": [trade_summary(t) for t in update.trades],
                    "withdrawal": None
                    if update.withdrawal is None
                    else {
                        "participant": update.withdrawal.participant,
                        "amount": str(update.withdrawal.amount),
                        "recipient": to_checksum(update.withdrawal.recipient),
                    },
                }
            )
        return out

    def _updates_before(self, channel_id: ChannelId, version: int) -> list[SignedUpdate]:
        """The stored updates just before ``version``, oldest first (at most
        ``RESYNC_HISTORY - 1``), each checked against its stored hashes (their signatures were
        checked when stored; the peer checks them again)."""
        rows = self._conn.execute(
            "SELECT version, state_hash, update_blob, blob_hash FROM states "
            "WHERE channel_id = ? AND version < ? ORDER BY version DESC LIMIT ?",
            (channel_id, version, RESYNC_HISTORY - 1),
        ).fetchall()
        where = f"channel 0x{channel_id.hex()[:16]}"
        out: list[SignedUpdate] = []
        for row_version, state_hash, blob, blob_hash in reversed(rows):
            if keccak256(bytes(blob)) != bytes(blob_hash):
                raise CorruptStore(f"{where} v{row_version}: the stored update bytes were altered")
            update = decoded(f"{where} v{row_version}", wire.decode_update, blob)
            self._check_update(update, channel_id, row_version, bytes(state_hash), where)
            out.append(update)
        return out

    def _latest_update(
        self, channel_id: ChannelId, params: Params, version: int, head_link: bytes
    ) -> SignedUpdate:
        where = f"channel 0x{channel_id.hex()[:16]}"
        row = self._conn.execute(
            "SELECT state_hash, update_blob, blob_hash, link FROM states "
            "WHERE channel_id = ? AND version = ?",
            (channel_id, version),
        ).fetchone()
        if row is None:
            raise CorruptStore(f"{where}: its latest state v{version} is missing")
        newest = self._conn.execute(
            "SELECT MAX(version) FROM states WHERE channel_id = ?", (channel_id,)
        ).fetchone()[0]
        if newest != version:
            raise CorruptStore(f"{where}: a state v{newest} exists beyond the head v{version}")
        state_hash, blob, blob_hash, link = (bytes(x) for x in row)
        if link != head_link or keccak256(blob) != blob_hash:
            raise CorruptStore(f"{where}: the latest state v{version} was altered")
        update = decoded(f"{where} v{version}", wire.decode_update, blob)
        self._check_update(update, channel_id, version, state_hash, where)
        domain = eip712.Domain(params.chain_id, params.adjudicator)
        digest = eip712.state_digest(domain, update.signed.state)
        for who, sig in enumerate(update.signed.signatures):
            try:
                if sig is None:
                    raise BadSignature("missing")
                verify(digest, sig, params.participants[who])
            except BadSignature as exc:
                raise CorruptStore(f"{where} v{version}: signature {who}: {exc}") from exc
        return update

    @staticmethod
    def _check_update(
        update: SignedUpdate, channel_id: bytes, version: int, state_hash: bytes, where: str
    ) -> None:
        state = update.signed.state
        if state.channel_id != channel_id or state.version != version:
            raise CorruptStore(f"{where} v{version}: the stored update is for another state")
        if eip712.state_struct_hash(state) != state_hash:
            raise CorruptStore(f"{where} v{version}: the stored state does not match its hash")

    def _history_rows(
        self, channel_id: ChannelId, start: int, *, with_time: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``states`` in version order, read a page at a time (no open cursor held
        between pages, so writes may happen while a caller walks the history)."""
        self._check_open()
        columns = "version, state_hash, update_blob, blob_hash, prev_link, link"
        if with_time:
            columns += ", stored_at"
        after = start - 1
        while True:
            rows = self._conn.execute(
                f"SELECT {columns} FROM states WHERE channel_id = ? AND version > ? "
                "ORDER BY version LIMIT ?",
                (channel_id, after, _PAGE),
            ).fetchall()
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]
