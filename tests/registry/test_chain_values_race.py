"""Two writers recording the same chain value at once both succeed.

Two request threads (or two API processes) that meet a height no one has asked about both
record its validator set under one name. On PostgreSQL, a read-then-insert lets both read
"absent" and both insert, and the second insert fails on the primary key. Here a barrier
holds each writer just before its first write to ``chain_values`` until the other has
reached it too, so that both have read before either writes: the race happens on every run.
SQLite admits one writing transaction at a time (``BEGIN IMMEDIATE``), so there the barrier
would only deadlock and is left out; the writers still run concurrently."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event, select

from registry.chain_gateway import VALIDATORS_FROM_PREFIX, ChainGateway
from registry.db import Database
from registry.models import ChainValue
from registry.settings import RegistrySettings

BARRIER_TIMEOUT_S = 20.0
"""Longest one writer waits at the barrier for the other (a deadline, not a pause)."""
WRITERS = 2


@pytest.fixture
def db(settings: RegistrySettings) -> Iterator[Database]:
    database = Database.open(settings)
    try:
        yield database
    finally:
        database.close()


def hold_first_writes_together(db: Database) -> Callable[[], None]:
    """Make each thread's first write to ``chain_values`` wait until every writer reached
    its own; returns the function that removes the barrier."""
    barrier = threading.Barrier(WRITERS, timeout=BARRIER_TIMEOUT_S)
    passed = threading.local()

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        is_insert = statement.lstrip().upper().startswith("INSERT INTO CHAIN_VALUES")
        if is_insert and not getattr(passed, "done", False):
            passed.done = True
            barrier.wait()

    if db.is_sqlite:
        return lambda: None
    event.listen(db.engine, "before_cursor_execute", before_execute)
    return lambda: event.remove(db.engine, "before_cursor_execute", before_execute)


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` on threads of their own at the same time; their results, in order
    (an exception of any of them is raised here)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def test_two_gateways_record_the_same_ruling_set_at_once(
    settings: RegistrySettings, db: Database
) -> None:
    gateways = [ChainGateway(settings, db) for _ in range(WRITERS)]
    height = gateways[0].reader.block_number()
    release = hold_first_writes_together(db)
    try:
        sets = run_together([lambda g=g: g.validator_set_at(height) for g in gateways])
    finally:
        release()
        for gateway in gateways:
            gateway.close()
    assert sets[0] == sets[1]
    recorded = [
        json.loads(value)
        for name, value in recorded_values(db).items()
        if name.startswith(VALIDATORS_FROM_PREFIX)
    ]
    assert [span["through"] for span in recorded] == [height]


def test_two_gateways_record_the_same_value_at_once(
    settings: RegistrySettings, db: Database
) -> None:
    gateways = [ChainGateway(settings, db) for _ in range(WRITERS)]
    release = hold_first_writes_together(db)
    try:
        run_together(
            [lambda g=g, n=n: g.record("note", f"writer {n}") for n, g in enumerate(gateways)]
        )
    finally:
        release()
        for gateway in gateways:
            gateway.close()
    assert recorded_values(db)["note"] in {"writer 0", "writer 1"}


def test_a_ruling_set_is_never_recorded_through_an_older_height(
    settings: RegistrySettings, db: Database
) -> None:
    newer, older = ChainGateway(settings, db), ChainGateway(settings, db)
    try:
        height = newer.reader.block_number()
        newer.validator_set_at(height)
        older.validator_set_at(1)
    finally:
        newer.close()
        older.close()
    spans = [
        json.loads(value)
        for name, value in recorded_values(db).items()
        if name.startswith(VALIDATORS_FROM_PREFIX)
    ]
    assert [span["through"] for span in spans] == [height]


def recorded_values(db: Database) -> dict[str, str]:
    with db.read_session() as session:
        return {row.name: row.value for row in session.scalars(select(ChainValue))}
