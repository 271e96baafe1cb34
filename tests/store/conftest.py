from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.store import Store
from tests.store._sim import ADJUDICATOR, ALICE, CHAIN_ID, DEPOSIT, Sim


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "alice.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store.open(db_path, ALICE.address, CHAIN_ID, ADJUDICATOR)
    yield s
    s.close()


@pytest.fixture
def sim() -> Sim:
    """An open channel with 40 random updates behind it (positions opened and closed)."""
    s = Sim()
    s.open()
    rng = random.Random(7)
    for _ in range(40):
        s.random_update(rng)
    return s


def store_all(store: Store, sim: Sim) -> None:
    store.add_channel(sim.params, 0, (DEPOSIT, DEPOSIT), sim.phase)
    for update in sim.updates:
        store.append_state(sim.channel_id, update)


def reopen(path: Path) -> Store:
    return Store.open(path, ALICE.address, CHAIN_ID, ADJUDICATOR)


def sql_on_file(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run ``sql`` on the store's file through a connection of our own (the store closed: it
    holds its file exclusively), as any other program on the machine could."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()
