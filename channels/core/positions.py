"""The open positions of a channel and their Merkle commitment (docs/PROTOCOL.md section 5).

Positions sit in numbered slots; a new position takes the lowest free slot, so both peers, applying
the same updates, place every position in the same slot. The tree is kept node by node, and lazily:
adding or removing a position only marks its leaf, and the root (or a proof) re-hashes the paths of
the marked leaves once, sharing their common ancestors. An update of 100 trades in neighbouring
slots costs about 2 x 100 pair hashes instead of 100 x ``log2(capacity)``, and an update at 1,000
open positions costs about what it costs at none.

Changes can be journaled and rolled back, which lets the state machine apply a proposed update,
compare the result with what the peer signed, and undo it if anything is wrong. A committed change
set also says which slots it changed (:class:`BookChanges`): the store writes exactly those, so it
never re-derives the book from the trades the machine has already applied and checked.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from channels.core.errors import DuplicatePosition, InvalidField, UnknownPosition
from channels.core.hashing import keccak256
from channels.core.model import ZERO_HASH, Position, PositionId

MAX_LEVELS = 32
#: Slots a book may span; bounds what a peer's snapshot can make us allocate.
MAX_SLOTS = 1 << 20


def check_high_water(value: object) -> int:
    """A book's slot count: an int in [0, MAX_SLOTS] (the one place this rule is written)."""
    if type(value) is not int or not 0 <= value <= MAX_SLOTS:
        raise InvalidField(f"high_water must be an int in [0, {MAX_SLOTS}], not {value!r}")
    return value


def check_slot(value: object, high_water: int = MAX_SLOTS) -> int:
    """A slot index: an int below the book's high water (and so below MAX_SLOTS)."""
    if type(value) is not int or not 0 <= value < high_water:
        raise InvalidField(f"slot {value!r} is not an int in [0, {high_water})")
    return value


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative pair hash: keccak256 of the smaller word then the larger."""
    return keccak256(a + b) if a < b else keccak256(b + a)


def _zero_subtrees() -> list[bytes]:
    zeros = [ZERO_HASH]
    for _ in range(MAX_LEVELS):
        zeros.append(hash_pair(zeros[-1], zeros[-1]))
    return zeros


ZERO_SUBTREE = _zero_subtrees()


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """What the contract checks: folding the siblings into the leaf gives the root."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root


def _level_for(high_water: int) -> int:
    """Tree height for slots ``0 .. high_water-1``: the smallest L with 2**L >= high_water."""
    return max(0, (high_water - 1).bit_length())


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Everything needed to rebuild a book exactly (sent on reestablish, stored on disk)."""

    high_water: int
    slots: tuple[tuple[int, Position], ...]


@dataclass(frozen=True, slots=True)
class BookChanges:
    """What one committed change set did to the book: each slot it changed with the position
    now in it (None: the slot is free now), and the book's slot count after it. Applied to the
    book before the change set, it gives the book after it."""

    high_water: int
    slots: tuple[tuple[int, Position | None], ...]


class _ChangeSet:
    """The undo record of one change set in flight: plain data, not a closure per change (the
    journal is on the hot path of every update: closures made it a fifth of the leader's CPU).

    For each book entry it touched, the first old value only (what rolling it back restores);
    the free list as the slots it took (``>= 0``) and gave back (``~slot``), undone in reverse.
    """

    __slots__ = (
        "changed",
        "free_log",
        "high_water",
        "ids",
        "leaves",
        "locked",
        "nodes",
        "rehashed",
        "start",
    )

    def __init__(self, high_water: int, locked: int) -> None:
        #: Slot count and locked collateral when the change set began (what a rollback restores).
        self.start = high_water
        self.locked = locked
        #: Level -> node index -> the node's value before the change set (None: it had none).
        self.leaves: dict[int, bytes | None] = {}
        self.nodes: dict[int, dict[int, bytes | None]] = {0: self.leaves}
        #: Position id -> (position, slot) before the change set (None: it was not open).
        self.ids: dict[PositionId, tuple[Position, int] | None] = {}
        self.free_log: list[int] = []
        #: Leaves whose paths a root read hashed during the change set: rolling it back restores
        #: the inner nodes above them, so they must be hashed again.
        self.rehashed: list[set[int]] = []
        #: What :class:`BookChanges` reports: the slots changed and the slot count after it.
        self.changed: dict[int, Position | None] = {}
        self.high_water = high_water


class PositionBook:
    """Open positions by id and by slot, with an incrementally maintained Merkle root."""

    __slots__ = (
        "_by_id",
        "_dirty",
        "_free",
        "_high_water",
        "_journal",
        "_locked",
        "_nodes",
        "_slot_of",
    )

    def __init__(self, snapshot: BookSnapshot | None = None) -> None:
        """An empty book, or the book ``snapshot`` describes (checked: slots in range, used once,
        ids unique)."""
        self._by_id: dict[PositionId, Position] = {}
        self._slot_of: dict[PositionId, int] = {}
        #: Tree nodes by level, then index (a level's absent node is that level's zero subtree).
        self._nodes: list[dict[int, bytes]] = [{} for _ in range(MAX_LEVELS + 1)]
        #: Leaves changed since the inner nodes above them were last hashed.
        self._dirty: set[int] = set()
        self._free: list[int] = []
        self._high_water = 0
        self._locked = 0
        # The change sets in flight, oldest first (they run one after another, so each starts
        # from the book the one before it left).
        self._journal: list[_ChangeSet] = []
        if snapshot is not None:
            self._restore(snapshot)

    # reading ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, position_id: object) -> bool:
        return position_id in self._by_id

    def __iter__(self) -> Iterator[Position]:
        return iter(self._by_id.values())

    def get(self, position_id: PositionId) -> Position:
        try:
            return self._by_id[position_id]
        except KeyError:
            raise UnknownPosition(f"no open position with id {position_id}") from None

    @property
    def locked(self) -> int:
        """Sum of the collateral of all open positions."""
        return self._locked

    @property
    def root(self) -> bytes:
        if not self._by_id:
            return ZERO_HASH
        self._rehash()
        return self._node(_level_for(self._high_water), 0)

    def proof(self, position_id: PositionId) -> list[bytes]:
        """Siblings from the position's leaf up to the root."""
        slot = self._slot_of.get(position_id)
        if slot is None:
            raise UnknownPosition(f"no open position with id {position_id}")
        self._rehash()
        proof = []
        index = slot
        for level in range(_level_for(self._high_water)):
            proof.append(self._node(level, index ^ 1))
            index >>= 1
        return proof

    def snapshot(self) -> BookSnapshot:
        return BookSnapshot(
            self._high_water,
            tuple(sorted((self._slot_of[pid], pos) for pid, pos in self._by_id.items())),
        )

    @classmethod
    def from_snapshot(cls, snap: BookSnapshot) -> PositionBook:
        return cls(snap)

    def _restore(self, snap: BookSnapshot) -> None:
        check_high_water(snap.high_water)
        # The height must be known before the leaves are placed: each leaf's path is hashed up to
        # the root of the full-height tree (a snapshot may have free slots above its last position).
        self._high_water = snap.high_water
        used = set()
        for slot, position in snap.slots:
            if check_slot(slot, snap.high_water) in used:
                raise InvalidField(f"slot {slot!r} is used twice")
            if position.id in self._by_id:
                raise DuplicatePosition(f"position id {position.id} appears twice")
            used.add(slot)
            self._place(slot, position)
        self._free = [s for s in range(snap.high_water) if s not in used]
        heapq.heapify(self._free)

    # changing ---------------------------------------------------------------------------------
    def add(self, position: Position) -> int:
        """Open ``position`` in the lowest free slot; returns the slot."""
        if position.id in self._by_id:
            raise DuplicatePosition(f"position id {position.id} is already open")
        journal = self._journal
        if self._free:
            slot = heapq.heappop(self._free)
            if journal:
                journal[-1].free_log.append(slot)
        else:
            slot = self._high_water
            if slot >= MAX_SLOTS:
                raise InvalidField("no free position slot left")
            self._high_water = slot + 1
            if journal:
                journal[-1].high_water = slot + 1
        self._place(slot, position)
        return slot

    def remove(self, position_id: PositionId) -> Position:
        """Close a position; its slot becomes free."""
        position = self.get(position_id)
        slot = self._slot_of[position_id]
        leaves = self._nodes[0]
        journal = self._journal
        if journal:
            change = journal[-1]
            if position_id not in change.ids:
                change.ids[position_id] = (position, slot)
            change.changed[slot] = None
            change.free_log.append(~slot)
            if slot not in change.leaves:
                change.leaves[slot] = leaves.get(slot)
        del self._by_id[position_id]
        del self._slot_of[position_id]
        self._locked -= position.collateral
        # Only the leaf now (here and in _place); the nodes above it are hashed by _rehash when
        # the root is read.
        leaves[slot] = ZERO_HASH
        self._dirty.add(slot)
        heapq.heappush(self._free, slot)
        return position

    def begin(self) -> None:
        """Start a change set; until it is committed it can be rolled back.

        Change sets nest in time: several may be in flight (pipelined updates), the oldest is
        committed first and the newest is rolled back first.
        """
        self._journal.append(_ChangeSet(self._high_water, self._locked))

    @property
    def pending_change_sets(self) -> int:
        return len(self._journal)

    def commit_oldest(self) -> BookChanges | None:
        """Make the oldest change set final; return the slots it changed (None if no change set
        was in flight)."""
        if not self._journal:
            return None
        change = self._journal.pop(0)
        return BookChanges(change.high_water, tuple(change.changed.items()))

    def rollback_newest(self) -> None:
        if not self._journal:
            return
        change = self._journal.pop()
        by_id, slot_of = self._by_id, self._slot_of
        # Newest first touch first, each entry taken out and put back at the end: the book's
        # order afterwards is the one undoing every change one by one in reverse would give.
        for pid, old in reversed(change.ids.items()):
            by_id.pop(pid, None)
            slot_of.pop(pid, None)
            if old is not None:
                by_id[pid], slot_of[pid] = old
        self._locked = change.locked
        self._high_water = change.start
        free = self._free
        for entry in reversed(change.free_log):
            if entry >= 0:  # taken by add: free again
                heapq.heappush(free, entry)
            else:  # given back by remove: taken again
                free.remove(~entry)
                heapq.heapify(free)
        for level, saved in change.nodes.items():
            nodes = self._nodes[level]
            for index, value in saved.items():
                if value is None:
                    nodes.pop(index, None)
                else:
                    nodes[index] = value
        for indices in change.rehashed:
            self._dirty.update(indices)

    # internals --------------------------------------------------------------------------------
    def _place(self, slot: int, position: Position) -> None:
        pid = position.id
        leaves = self._nodes[0]
        journal = self._journal
        if journal:
            change = journal[-1]
            if pid not in change.ids:
                change.ids[pid] = None
            change.changed[slot] = position
            if slot not in change.leaves:
                change.leaves[slot] = leaves.get(slot)
        self._by_id[pid] = position
        self._slot_of[pid] = slot
        self._locked += position.collateral
        leaves[slot] = position.leaf()
        self._dirty.add(slot)

    def _node(self, level: int, index: int) -> bytes:
        return self._nodes[level].get(index, ZERO_SUBTREE[level])

    def _rehash(self) -> None:
        """Hash the paths of the changed leaves up to the root of the current height, once."""
        if not self._dirty:
            return
        indices = self._dirty
        self._dirty = set()
        change = self._journal[-1] if self._journal else None
        if change is not None:
            # The set is not changed below (each level builds a new one): kept as it is.
            change.rehashed.append(indices)
        for level in range(_level_for(self._high_water)):
            zero = ZERO_SUBTREE[level]
            children = self._nodes[level]
            parents_nodes = self._nodes[level + 1]
            saved = None if change is None else change.nodes.setdefault(level + 1, {})
            parents = {i >> 1 for i in indices}
            for parent in parents:
                left = children.get(parent << 1, zero)
                right = children.get((parent << 1) | 1, zero)
                if saved is not None and parent not in saved:
                    saved[parent] = parents_nodes.get(parent)
                parents_nodes[parent] = (
                    keccak256(left + right) if left < right else keccak256(right + left)
                )
            indices = parents
