"""PositionBook against a from-scratch Merkle reference (docs/PROTOCOL.md section 5)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from channels.core import model
from channels.core.errors import DuplicatePosition, InvalidField, UnknownPosition
from channels.core.hashing import keccak256
from channels.core.positions import (
    BookChanges,
    BookSnapshot,
    PositionBook,
    hash_pair,
    verify_proof,
)

ETH = model.symbol("ETH-USD")


def make_position(pid: int, collateral: int = 1_000, kind: int = 0) -> model.Position:
    return model.Position(
        id=pid,
        underlying=ETH,
        kind=model.OptionKind(kind),
        strike=3_000 * 10**8 + pid,
        expiry=1_900_000_000,
        quantity=10**18,
        writer=pid % 2,
        collateral=collateral,
    )


# Reference --------------------------------------------------------------------------------------


def ref_pair(a: bytes, b: bytes) -> bytes:
    lo, hi = sorted((a, b))
    return keccak256(lo + hi)


def ref_root(slots: dict[int, model.Position], high_water: int) -> bytes:
    """Merkle root straight from the spec: pad to a power of two with zero leaves, hash pairs."""
    if not slots:
        return bytes(32)
    capacity = 1
    while capacity < high_water:
        capacity *= 2
    level = [slots[i].leaf() if i in slots else bytes(32) for i in range(capacity)]
    while len(level) > 1:
        level = [ref_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class Reference:
    """Lowest-free-slot allocation and the root, recomputed from nothing each time."""

    def __init__(self) -> None:
        self.slots: dict[int, model.Position] = {}
        self.high_water = 0

    def add(self, pos: model.Position) -> int:
        slot = next(i for i in range(self.high_water + 1) if i not in self.slots)
        self.slots[slot] = pos
        self.high_water = max(self.high_water, slot + 1)
        return slot

    def remove(self, pid: int) -> None:
        slot = next(s for s, p in self.slots.items() if p.id == pid)
        del self.slots[slot]

    @property
    def root(self) -> bytes:
        return ref_root(self.slots, self.high_water)

    @property
    def locked(self) -> int:
        return sum(p.collateral for p in self.slots.values())


def assert_matches(book: PositionBook, ref: Reference) -> None:
    assert book.root == ref.root
    assert len(book) == len(ref.slots)
    assert book.locked == ref.locked
    assert {p.id for p in book} == {p.id for p in ref.slots.values()}
    for pos in book:
        assert verify_proof(pos.leaf(), book.proof(pos.id), book.root)


def fingerprint(book: PositionBook) -> tuple[object, ...]:
    return (book.root, len(book), book.locked, book.snapshot())


# Unit tests ---------------------------------------------------------------------------------------


def test_hash_pair_is_commutative_and_sorted() -> None:
    a, b = keccak256(b"a"), keccak256(b"b")
    assert hash_pair(a, b) == hash_pair(b, a) == ref_pair(a, b)
    assert hash_pair(a, a) == keccak256(a + a)


def test_empty_book_root_is_zero() -> None:
    book = PositionBook()
    assert book.root == bytes(32)
    assert len(book) == 0 and book.locked == 0
    book.add(make_position(1))
    book.remove(1)
    assert book.root == bytes(32)  # empty again, even with a used slot


def test_single_position_root_is_its_leaf() -> None:
    book = PositionBook()
    pos = make_position(7)
    assert book.add(pos) == 0
    assert book.root == pos.leaf()
    assert book.proof(7) == []
    assert verify_proof(pos.leaf(), [], book.root)


def test_lowest_free_slot_is_reused() -> None:
    book = PositionBook()
    for i in range(5):
        assert book.add(make_position(i)) == i
    book.remove(3)
    book.remove(1)
    assert book.add(make_position(10)) == 1
    assert book.add(make_position(11)) == 3
    assert book.add(make_position(12)) == 5


def test_duplicate_and_unknown_ids() -> None:
    book = PositionBook()
    book.add(make_position(1))
    with pytest.raises(DuplicatePosition):
        book.add(make_position(1, collateral=5))
    with pytest.raises(UnknownPosition):
        book.remove(2)
    with pytest.raises(UnknownPosition):
        book.get(2)
    with pytest.raises(UnknownPosition):
        book.proof(2)
    assert 1 in book and 2 not in book


def test_proof_fails_for_wrong_leaf_or_root() -> None:
    book = PositionBook()
    for i in range(5):
        book.add(make_position(i))
    proof = book.proof(2)
    assert verify_proof(make_position(2).leaf(), proof, book.root)
    assert not verify_proof(make_position(3).leaf(), proof, book.root)
    assert not verify_proof(make_position(2, collateral=1).leaf(), proof, book.root)
    assert not verify_proof(make_position(2).leaf(), proof[:-1], book.root)
    assert not verify_proof(make_position(2).leaf(), proof, keccak256(b"x"))


def test_snapshot_with_free_slots_above_last_position() -> None:
    """Regression: from_snapshot built a too-short tree when the top slots were free."""
    book = PositionBook()
    for i in range(8):
        book.add(make_position(i))
    for i in range(2, 8):
        book.remove(i)
    snap = book.snapshot()
    assert snap.high_water == 8
    again = PositionBook.from_snapshot(snap)
    assert again.root == book.root
    for pid in (0, 1):
        assert again.proof(pid) == book.proof(pid)
    assert again.add(make_position(99)) == 2


def test_from_snapshot_accepts_any_slot_order() -> None:
    book = PositionBook()
    for i in range(6):
        book.add(make_position(i))
    book.remove(0)
    snap = book.snapshot()
    shuffled = BookSnapshot(snap.high_water, tuple(reversed(snap.slots)))
    assert PositionBook.from_snapshot(shuffled).root == book.root


def test_from_snapshot_refuses_bad_input() -> None:
    p1, p2 = make_position(1), make_position(2)
    with pytest.raises(InvalidField):
        PositionBook.from_snapshot(BookSnapshot(2, ((0, p1), (0, p2))))  # slot used twice
    with pytest.raises(DuplicatePosition):
        PositionBook.from_snapshot(BookSnapshot(2, ((0, p1), (1, p1))))  # id used twice
    with pytest.raises(InvalidField):
        PositionBook.from_snapshot(BookSnapshot(2, ((2, p1),)))  # slot >= high_water
    with pytest.raises(InvalidField):
        PositionBook.from_snapshot(BookSnapshot(2, ((-1, p1),)))
    with pytest.raises(InvalidField):
        PositionBook.from_snapshot(BookSnapshot(2, ((True, p1),)))  # type: ignore[arg-type]
    with pytest.raises(InvalidField):
        PositionBook.from_snapshot(BookSnapshot(-1, ()))
    with pytest.raises(InvalidField):
        PositionBook.from_snapshot(BookSnapshot(2**32 + 1, ()))


def test_rollback_restores_exactly_and_commit_keeps() -> None:
    book = PositionBook()
    for i in range(3):
        book.add(make_position(i))
    before = fingerprint(book)
    book.begin()
    book.add(make_position(10))  # grows the tree from 4 to ... slot 3
    book.add(make_position(11))  # slot 4: capacity 8
    book.remove(0)
    assert book.pending_change_sets == 1
    book.rollback_newest()
    assert fingerprint(book) == before
    assert book.pending_change_sets == 0
    assert book.add(make_position(12)) == 3  # the free list was restored too
    book.begin()
    book.remove(12)
    book.commit_oldest()
    assert 12 not in book
    book.rollback_newest()  # nothing in flight: a no-op
    assert 12 not in book


def test_committed_change_sets_name_the_slots_they_changed() -> None:
    """What the store writes: per change set, the slots changed and the slot count after it,
    also with several change sets in flight (pipelined proposals) and one rolled back."""
    book = PositionBook()
    for i in range(4):
        book.add(make_position(i))
    old = book.snapshot()
    book.begin()
    book.remove(1)
    book.add(make_position(10))  # takes slot 1 again
    book.add(make_position(11))  # slot 4: the book grows to 5 slots
    book.remove(2)
    first = book.snapshot()
    book.begin()
    book.add(make_position(12))  # slot 2
    book.add(make_position(13))  # slot 5
    second = book.snapshot()
    book.begin()
    book.add(make_position(14))  # slot 6, rolled back: in no change set
    book.rollback_newest()
    one = book.commit_oldest()
    two = book.commit_oldest()
    assert book.commit_oldest() is None  # none in flight
    assert one == BookChanges(5, ((1, make_position(10)), (4, make_position(11)), (2, None)))
    assert two == BookChanges(6, ((2, make_position(12)), (5, make_position(13))))
    # Applied to the book before them, they give the book after them.
    for before, changes, after in ((old, one, first), (first, two, second)):
        assert changes is not None
        slots = dict(before.slots)
        for slot, position in changes.slots:
            if position is None:
                del slots[slot]
            else:
                slots[slot] = position
        assert BookSnapshot(changes.high_water, tuple(sorted(slots.items()))) == after


def test_nested_change_sets() -> None:
    book = PositionBook()
    book.add(make_position(0))
    s0 = fingerprint(book)
    book.begin()
    book.add(make_position(1))
    s1 = fingerprint(book)
    book.begin()
    book.add(make_position(2))
    book.remove(0)
    book.rollback_newest()
    assert fingerprint(book) == s1
    book.rollback_newest()
    assert fingerprint(book) == s0
    # Oldest committed, newest rolled back.
    book.begin()
    book.add(make_position(1))
    book.begin()
    book.add(make_position(2))
    book.commit_oldest()
    book.rollback_newest()
    ref = Reference()
    ref.add(make_position(0))
    ref.add(make_position(1))
    assert_matches(book, ref)


# Random operation sequences ----------------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 60), st.integers(1, 10**30)),
        st.tuples(st.just("remove"), st.integers(0, 60), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_random_ops_match_reference(seq: list[tuple[str, int, int]]) -> None:
    book, ref = PositionBook(), Reference()
    for op, pid, collateral in seq:
        if op == "add":
            pos = make_position(pid, collateral)
            if pid in book:
                with pytest.raises(DuplicatePosition):
                    book.add(pos)
                continue
            assert book.add(pos) == ref.add(pos)
        else:
            if pid not in book:
                with pytest.raises(UnknownPosition):
                    book.remove(pid)
                continue
            book.remove(pid)
            ref.remove(pid)
        assert book.root == ref.root
    assert_matches(book, ref)
    snap = book.snapshot()
    again = PositionBook.from_snapshot(snap)
    assert fingerprint(again) == fingerprint(book)
    assert_matches(again, ref)


@settings(max_examples=100, deadline=None)
@given(ops, ops)
def test_rollback_after_random_ops(
    first: list[tuple[str, int, int]], second: list[tuple[str, int, int]]
) -> None:
    book = PositionBook()

    def run(seq: list[tuple[str, int, int]]) -> None:
        for op, pid, collateral in seq:
            if op == "add" and pid not in book:
                book.add(make_position(pid, collateral))
            elif op == "remove" and pid in book:
                book.remove(pid)

    run(first)
    before = fingerprint(book)
    book.begin()
    run(second)
    book.rollback_newest()
    assert fingerprint(book) == before
    # And the book still behaves like a fresh one after the rollback.
    run(second)
    rebuilt = PositionBook()
    for slot, pos in book.snapshot().slots:
        assert rebuilt.add(pos) <= slot
    ref = Reference()
    ref.slots = dict(book.snapshot().slots)
    ref.high_water = book.snapshot().high_water
    assert_matches(book, ref)


class BookMachine(RuleBasedStateMachine):
    """Stateful: adds, removes, nested change sets, commits, rollbacks and snapshot reloads."""

    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.book = PositionBook()
        self.ref = Reference()
        self.saved: list[tuple[dict[int, model.Position], int]] = []
        self.next_id = 0

    @rule(target=ids, collateral=st.integers(1, 10**20))
    def add(self, collateral: int) -> int:
        pid = self.next_id
        self.next_id += 1
        pos = make_position(pid, collateral, kind=pid % 2)
        assert self.book.add(pos) == self.ref.add(pos)
        return pid

    @rule(pid=consumes(ids))
    def remove(self, pid: int) -> None:
        if pid in self.book:
            self.book.remove(pid)
            self.ref.remove(pid)

    @precondition(lambda self: len(self.saved) < 4)
    @rule()
    def begin(self) -> None:
        self.book.begin()
        self.saved.append((dict(self.ref.slots), self.ref.high_water))

    @precondition(lambda self: bool(self.saved))
    @rule()
    def rollback(self) -> None:
        self.book.rollback_newest()
        slots, high = self.saved.pop()
        self.ref.slots, self.ref.high_water = slots, high

    @precondition(lambda self: bool(self.saved))
    @rule()
    def commit(self) -> None:
        self.book.commit_oldest()
        self.saved.pop(0)

    @precondition(lambda self: not self.saved)
    @rule()
    def reload(self) -> None:
        self.book = PositionBook.from_snapshot(self.book.snapshot())

    @invariant()
    def matches(self) -> None:
        assert self.book.pending_change_sets == len(self.saved)
        assert_matches(self.book, self.ref)


BookMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestBookMachine = BookMachine.TestCase


def test_large_book_matches_reference() -> None:
    rng = random.Random(1234)
    book, ref = PositionBook(), Reference()
    live: list[int] = []
    for pid in range(300):
        pos = make_position(pid, rng.randint(1, 10**6))
        book.add(pos)
        ref.add(pos)
        live.append(pid)
        if rng.random() < 0.3:
            victim = live.pop(rng.randrange(len(live)))
            book.remove(victim)
            ref.remove(victim)
    assert_matches(book, ref)


# The root is hashed lazily (only when read): reading it at any point between nested change
# sets, then rolling some back, must give the root of the book rebuilt from scratch.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 40)),
        st.tuples(st.just("remove"), st.integers(0, 40)),
        st.tuples(st.just("root"), st.just(0)),
        st.tuples(st.just("begin"), st.just(0)),
        st.tuples(st.just("rollback"), st.just(0)),
        st.tuples(st.just("commit"), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_lazy_root_matches_a_rebuilt_book_through_change_sets(
    seq: list[tuple[str, int]],
) -> None:
    book = PositionBook()
    for op, pid in seq:
        if op == "add" and pid not in book:
            book.add(make_position(pid, pid + 1))
        elif op == "remove" and pid in book:
            book.remove(pid)
        elif op == "root":
            assert book.root == PositionBook.from_snapshot(book.snapshot()).root
        elif op == "begin":
            book.begin()
        elif op == "rollback":
            book.rollback_newest()
        elif op == "commit":
            book.commit_oldest()
    rebuilt = PositionBook.from_snapshot(book.snapshot())
    assert book.root == rebuilt.root
    for position in book:
        assert verify_proof(position.leaf(), book.proof(position.id), book.root)
