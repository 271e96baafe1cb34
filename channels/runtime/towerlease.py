"""The node's side of the lease backup: every version lease the store makes durable is sent to
the desk's watchtowers, and at every start the node takes back the highest figure they hold.

Why (docs/PROTOCOL.md section 7): "never sign two different states of one version" rests on the
node resuming above every version it signed. The store's lease says so for the store it is in;
a store restored from an old backup carries the backup's lease, while the node may since have
signed (and sent) versions above it. The towers are off the desk's disk: what they acked
survives the restore.

Three parts:

* **Backup.** :meth:`LeaseBackup.on_lease` (called by the store once a lease is durable) queues
  it; the pusher sends ``{"t": "lease"}`` to every tower (channels/defence/towerlease.py) and
  retries one that did not answer every ``RETRY_EVERY`` seconds.
* **Take-back.** :meth:`LeaseBackup.take_from_towers` runs at every start (a restored store
  looks like any other), before anything new is signed (whatever ``max_tower_lag``): each tower
  is asked for its figures and each channel's highest signed version is raised to the highest
  answer. A tower that does not answer in time is named in an alarm: signing resumes above what
  the others and the local store know only; its figures are read before a lease is pushed to it.
* **Cut-back.** :meth:`LeaseBackup.cut_back` runs at a clean shutdown, after the last
  signature: the store cuts each lease back to the last version signed in this run, and once
  that is durable each tower is told that exact figure (``"exact": true``), within
  ``CUT_BACK_TIMEOUT`` seconds in all. So a clean restart burns no versions with towers either.
  Every message names this run (``run``, random): a tower lowers a figure only for the run that
  last sent or read it, so a late exact message of an earlier run never undoes a later run's
  leases. A tower not reached keeps the higher figure; the next start burns versions as after a
  crash (the safe side).
* **Gate.** With towers and ``max_tower_lag`` set, a version is signed only once a tower acked a
  lease covering it (:meth:`LeaseBackup.hold`, checked again under the channel's lock with
  :meth:`LeaseBackup.covers`), so the towers' figure is never behind a signature that left. The
  store renews its lease at half the span and the renewal is backed up at once, so a healthy
  desk does not wait.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final

import trio

from channels.core.errors import ChannelError
from channels.core.model import Address, ChannelId
from channels.defence.towerlease import MAX_ASKED, MAX_LEASE, RUN_ID_BYTES
from channels.defence.towerproto import TowerReplyError
from channels.runtime.errors import TowerBehind
from channels.store.lease import LEASE_SPAN

#: What a tower that is down, slow or answering nonsense raises at us: each is retried or said
#: in an alarm, never allowed to end the node (a reply missing a key is a KeyError).
TOWER_FAILURES = (ChannelError, OSError, trio.TooSlowError, KeyError, ValueError)


def lease_figure(value: object) -> int:
    """A lease figure in a tower's reply: a whole number from -1 (none held) to the tower's own
    bound, else :class:`TowerReplyError` (a tower's nonsense is its failure, never our crash)."""
    if type(value) is not int or not -1 <= value <= MAX_LEASE:
        raise TowerReplyError(f"a lease figure must be a whole number from -1 to {MAX_LEASE}")
    return value


log = logging.getLogger("channels.towers")

#: The tower client (channels/runtime/towerclient.py), which owns this; typed loosely because
#: it imports this module.
Client = Any
#: Seconds a clean shutdown waits, in all, for the towers to take the cut-back leases.
CUT_BACK_TIMEOUT: Final = 3.0


class LeaseBackup:
    """Per channel: the highest lease the store made durable, and what each tower acked."""

    def __init__(self, client: Client, retry_every: float) -> None:
        self._client = client
        self._retry_every = retry_every
        #: Names this run in every lease message (a tower lowers a figure only for its run).
        self.run = os.urandom(RUN_ID_BYTES)
        self._wanted: dict[ChannelId, int] = {}
        self._acked: dict[ChannelId, dict[Address, int]] = {}
        self._dirty: set[ChannelId] = set()
        self._wakeup = trio.Event()
        self._acks = trio.Event()
        #: Set once the start's take-back is done (every tower answered or failed).
        self.ready = trio.Event()
        #: The towers that did not give their leases at the start (each said in an alarm).
        self.not_taken_from: list[Any] = []

    def acked(self, cid: ChannelId) -> int:
        """The highest lease a tower acked for the channel (-1: none)."""
        return max(self._acked.get(cid, {}).values(), default=-1)

    def covers(self, cid: ChannelId, version: int) -> bool:
        """Whether ``version`` may be signed now as far as the towers go: never before the
        start's take-back is done; then, with ``max_tower_lag`` set, inside a lease a tower
        acked."""
        client = self._client
        if not client.towers:
            return True
        if not self.ready.is_set():
            return False
        return client.node.settings.max_tower_lag is None or self.acked(cid) >= version

    def on_lease(self, cid: ChannelId, up_to: int) -> None:
        """The store made a lease up to ``up_to`` durable: back it up."""
        if up_to > self._wanted.get(cid, -1):
            self._wanted[cid] = up_to
            self._dirty.add(cid)
            self._wakeup.set()

    def _ack(self, cid: ChannelId, tower: Address, up_to: int) -> None:
        per = self._acked.setdefault(cid, {})
        per[tower] = max(per.get(tower, -1), up_to)
        self._acks.set()
        self._acks = trio.Event()

    async def hold(self, cid: ChannelId, version: int) -> None:
        """Return once a tower acked a lease covering ``version``; raise :class:`TowerBehind`
        (and an alarm) after ``update_timeout``."""
        if self.covers(cid, version):
            return
        node = self._client.node
        with trio.move_on_after(node.settings.update_timeout):
            await self.ready.wait()  # bounded: each tower is asked with a timeout
            if self.covers(cid, version):
                return
            if self.acked(cid) < version:
                store = node.store
                if store.lease(cid) < version:  # ahead of the signature it will cover
                    await store.extend_lease(cid, version + LEASE_SPAN)
                self.on_lease(cid, store.lease(cid))
            while not self.covers(cid, version):
                await self._acks.wait()
            return
        detail = (
            f"no tower acked a version lease covering v{version} (acked: up to "
            f"v{self.acked(cid)}): a version is signed only within a lease a tower holds, so "
            "that a restored store resumes above it (bring a tower back)"
        )
        node.alarm("TowerBehind", detail, cid)
        raise TowerBehind(detail)

    # start ---------------------------------------------------------------------------------
    async def take_from_towers(self) -> None:
        """Raise every channel's highest signed version to the highest lease a tower holds for
        it; then let signing go on. Every start does it: a restored store looks like any other."""
        client = self._client
        try:
            for tower in client.towers:
                try:
                    await self._take(tower)
                except TOWER_FAILURES as exc:
                    self.not_taken_from.append(tower)
                    client.node.alarm(
                        "TowerLeaseUnknown",
                        f"tower {tower.host}:{tower.port} did not give its version leases "
                        f"({exc}): signing resumes above the local lease and the other towers' "
                        "only (if this store is an old copy, a version signed since it was "
                        "taken may be signed again); nothing is signed within a lease this "
                        "tower has not acked, and its figures are read before that",
                    )
            store = client.node.store
            for cid in list(client.runtimes):  # the local leases are backed up too
                self.on_lease(cid, store.lease(cid))
        finally:
            self.ready.set()

    async def _take(self, tower: Any) -> None:
        """Read ``tower``'s figure for every channel and resume above it (raises if the tower
        does not answer)."""
        runtimes = self._client.runtimes
        cids = list(runtimes)
        held = await self._read(tower, cids)
        for cid, up_to in zip(cids, held, strict=True):
            if up_to < 0:
                continue
            self._ack(cid, tower.address, up_to)
            runtime = runtimes.get(cid)
            if runtime is not None and up_to > runtime.machine.highest_signed:
                log.info(
                    "0x%s: a tower's lease v%d is above our highest signed v%d: resuming "
                    "above it", cid.hex()[:12], up_to, runtime.machine.highest_signed,
                )  # fmt: skip
                await runtime.raise_highest_signed(up_to)

    async def _read(self, tower: Any, cids: list[ChannelId]) -> list[int]:
        held: list[int] = []
        for start in range(0, len(cids), MAX_ASKED):
            asked = [bytes(c) for c in cids[start : start + MAX_ASKED]]
            request = {"t": "leases", "channels": asked, "run": self.run}
            reply = await self._client.call(tower, request)
            figures = reply.get("leases")
            if not isinstance(figures, list) or len(figures) != len(asked):
                raise ValueError("the tower's lease answer does not match the channels asked")
            held.extend(lease_figure(f) for f in figures)
        return held

    # clean shutdown ------------------------------------------------------------------------
    async def cut_back(self) -> None:
        """At a clean shutdown, after the last signature: cut the store's leases back to the
        last versions signed and, once durable, tell every tower those exact figures (bounded
        by ``CUT_BACK_TIMEOUT``; a tower not reached keeps its higher figure)."""
        client = self._client
        figures = await client.node.store.cut_leases_to_signed()
        if not figures or not client.towers:
            return
        with trio.move_on_after(CUT_BACK_TIMEOUT):  # shutdown must not hang
            async with trio.open_nursery() as nursery:
                for tower in client.towers:
                    nursery.start_soon(self._tell_exact, tower, figures)

    async def _tell_exact(self, tower: Any, figures: dict[ChannelId, int]) -> None:
        for cid, version in figures.items():
            request = {
                "t": "lease", "channel": bytes(cid), "up_to": version, "run": self.run,
                "exact": True,
            }  # fmt: skip
            try:
                held = lease_figure((await self._client.call(tower, request))["up_to"])
            except TOWER_FAILURES as exc:
                log.info(
                    "tower %s:%d keeps a lease above v%d of 0x%s (%s): the next start burns "
                    "the versions between", tower.host, tower.port, version, cid.hex()[:12], exc,
                )  # fmt: skip
                continue
            if held != version:
                log.info("tower %s:%d keeps v%d for 0x%s", tower.host, tower.port, held,
                         cid.hex()[:12])  # fmt: skip

    # backup --------------------------------------------------------------------------------
    async def push(self, cid: ChannelId) -> bool:
        """Send the channel's lease to every tower that has not acked it; True if all did."""
        client = self._client
        wanted = self._wanted.get(cid, -1)
        ok = True
        for tower in client.towers:
            if tower in self.not_taken_from:
                # Its figures first: pushing a higher one would hide them.
                try:
                    await self._take(tower)
                except TOWER_FAILURES as exc:
                    client.silent(tower, f"reading its version leases failed: {exc}")
                    ok = False
                    continue
                self.not_taken_from.remove(tower)
            if self._acked.get(cid, {}).get(tower.address, -1) >= wanted:
                continue
            request = {"t": "lease", "channel": bytes(cid), "up_to": wanted, "run": self.run}
            try:
                reply = await client.call(tower, request)
                held = lease_figure(reply["up_to"])
            except TOWER_FAILURES as exc:
                ok = False
                client.silent(tower, f"backing up the lease of 0x{cid.hex()[:12]} failed: {exc}")
                continue
            client.answered(tower)
            self._ack(cid, tower.address, held)
        return ok

    async def pusher(self) -> None:
        while True:
            if not self._dirty:
                self._wakeup = trio.Event()
                with trio.move_on_after(self._retry_every):
                    await self._wakeup.wait()
            dirty, self._dirty = self._dirty, set()
            failed = {cid for cid in dirty if not await self.push(cid)}
            if failed:
                self._dirty |= failed
                await trio.sleep(self._retry_every)
