"""The version lease: one durable record "we may have signed any version up to L" per many
signatures, instead of one durable "we signed version n = hash H" before each signature leaves.

Why it is enough (docs/PROTOCOL.md section 7): the rule it serves is "never sign two different
states of one version". Within one run the machine never signs a version at or below its
``highest_signed``; after a restart that figure is restored from the store, and the store's
figure includes the lease. So once a lease up to L is durable, any version up to L may be signed
without a record of its own: after a crash the machine resumes above L, whatever was signed
before. The versions between the last stored state and L are burned, as a refused proposal's
are (the peer accepts a skip of up to ``MAX_VERSION_SKIP``). A store restored from an old
backup carries the backup's lease, so the node also backs each new lease up to its watchtowers
and resumes above their figure at every start (``AsyncStore.on_lease``,
channels/runtime/towerlease.py).

Why here: the lease changes how the store keeps the promise a ``PersistSignature`` asks for,
not the promise. :class:`AsyncStore` rewrites each batch through :class:`VersionLeases`
before it queues it: a signature inside the durable lease needs no commit at all (so the
leader's proposal leaves without waiting for the disk: one durable commit fewer in series per
update); one above it waits for a new lease (``LeaseVersions``) to commit; a renewal is queued
without anyone waiting for it once the signatures are past half the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from channels.core.model import ChannelId
from channels.core.protocol import MAX_VERSION_SKIP, PersistSignature

#: Versions granted per lease record. Each restart without a stored state in between burns up to
#: this many versions, and the peer refuses a skip above MAX_VERSION_SKIP: a sixteenth of it
#: leaves room for 15 crashes in a row without progress.
LEASE_SPAN: Final = MAX_VERSION_SKIP // 16
#: A renewal is queued (nobody waits for it) once a signature is within this of the lease's end.
RENEW_WITHIN: Final = LEASE_SPAN // 2


@dataclass(frozen=True, slots=True)
class LeaseVersions:
    """Durably record that we may sign any version of the channel up to ``up_to`` (the store
    keeps the highest such figure; ``highest_signed`` includes it)."""

    channel_id: ChannelId
    up_to: int
    #: Set the lease to exactly ``up_to`` even if it is lower (a clean shutdown that knows every
    #: version signed: nothing above ``up_to`` was, so a restart need not burn any).
    exact: bool = False


@dataclass(frozen=True, slots=True)
class Rewritten:
    """A batch after the lease: ``ops`` to commit; ``origin``, one entry per operation given,
    says where in ``ops`` its result is (None: a signature the lease covers, whose result is
    None); ``renewal``, leases to commit without anyone waiting for them."""

    ops: tuple[object, ...]
    origin: tuple[int | None, ...]
    renewal: tuple[LeaseVersions, ...]


class VersionLeases:
    """Per channel, the durable lease and the highest lease asked for (queued, maybe not yet
    committed). Used by :class:`AsyncStore` in the trio thread only."""

    def __init__(self, durable: dict[ChannelId, int]) -> None:
        self._durable = dict(durable)
        self._asked = dict(durable)
        #: The leases from before this run: a version inside one may have been signed already.
        #: (A lease made in this run ahead of its signatures, ``AsyncStore.extend_lease``, covers
        #: versions nothing signed before.)
        self._before = dict(durable)
        #: The last signature recorded in this run, per channel: (version, state hash).
        self._last: dict[ChannelId, tuple[int, bytes]] = {}

    def durable(self, channel_id: ChannelId) -> int:
        return self._durable.get(channel_id, -1)

    def covers(self, op: PersistSignature) -> bool:
        """Whether :meth:`rewrite` would find ``op`` covered by the durable lease (no commit
        needed for it). Changes nothing."""
        cid, version = op.channel_id, int(op.version)
        last = self._last.get(cid)
        fresh = last is None or version > last[0] or (version, op.state_hash) == last
        if not fresh or (last is None and version <= self._before.get(cid, -1)):
            return False
        return version <= self._durable.get(cid, -1)

    def rewrite(self, ops: Sequence[object]) -> Rewritten:
        kept: list[object] = []
        origin: list[int | None] = []
        renew: dict[ChannelId, int] = {}
        for op in ops:
            if not isinstance(op, PersistSignature):
                origin.append(len(kept))
                kept.append(op)
                continue
            cid, version = op.channel_id, int(op.version)
            last = self._last.get(cid)
            fresh = last is None or version > last[0] or (version, op.state_hash) == last
            if not fresh or (last is None and version <= self._before.get(cid, -1)):
                # Not above what this run signed, or inside a lease from before a restart: the
                # store's per-version guard decides (it refuses a version the lease may cover).
                origin.append(len(kept))
                kept.append(op)
                continue
            self._last[cid] = (version, op.state_hash)
            if version <= self._durable.get(cid, -1):
                origin.append(None)  # covered: no commit needed for it
                if version > self._durable[cid] - RENEW_WITHIN and self._asked[cid] < (
                    version + LEASE_SPAN
                ):
                    renew[cid] = version + LEASE_SPAN
                continue
            # Above the durable lease: this batch waits for a lease that covers it. (If one is
            # queued already, asking again is harmless: the store keeps the maximum.)
            up_to = max(version + LEASE_SPAN, self._asked.get(cid, -1))
            self._asked[cid] = up_to
            kept.append(LeaseVersions(cid, up_to))
            origin.append(None)
        renewal = []
        for cid, up_to in renew.items():
            self._asked[cid] = up_to
            if kept:  # the batch commits anyway: the renewal rides along
                kept.append(LeaseVersions(cid, up_to))
            else:
                renewal.append(LeaseVersions(cid, up_to))
        return Rewritten(tuple(kept), tuple(origin), tuple(renewal))

    def shrink_to_signed(self) -> tuple[LeaseVersions, ...]:
        """At a clean shutdown, once every write is done: leases cut back to the highest
        version signed in this run (every signature of this run went through :meth:`rewrite`,
        and the first was above the lease from before, so none above it exists)."""
        return tuple(
            LeaseVersions(cid, version, exact=True)
            for cid, (version, _hash) in self._last.items()
            if version < self._durable.get(cid, -1)
        )

    def cut_back_to(self) -> dict[ChannelId, int]:
        """Per channel signed in this run whose durable lease is exactly its last signature (as
        after :meth:`shrink_to_signed` committed): that version. At a clean shutdown the towers
        are told these figures (channels/runtime/towerlease.py)."""
        return {
            cid: version
            for cid, (version, _hash) in self._last.items()
            if self._durable.get(cid) == version
        }

    def committed(self, ops: Sequence[object]) -> None:
        """``ops`` are durable: raise the durable leases they name."""
        for op in ops:
            if isinstance(op, LeaseVersions) and op.exact:
                self._durable[op.channel_id] = self._asked[op.channel_id] = op.up_to
            elif isinstance(op, LeaseVersions):
                if op.up_to > self._durable.get(op.channel_id, -1):
                    self._durable[op.channel_id] = op.up_to
                if op.up_to > self._asked.get(op.channel_id, -1):
                    self._asked[op.channel_id] = op.up_to
