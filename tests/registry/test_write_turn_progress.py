"""A writer that commits rarely (as the batcher and the anchorer do) is not starved by one
that commits back to back (as the access writer does under load): with the writers queued
in turn, each of its transactions waits for at most a few of the busy writer's, where in
SQLite's busy handler (sleeps of 1, 2, 5 ... 100 ms between looks) it rarely found the
database free. Counted in transactions, not timed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.db import Database, create_registry_engine
from registry.settings import RegistrySettings

pytestmark = pytest.mark.no_database

SEALS = 20
"""Transactions of the rare writer."""
BUSY_LIMIT = 2_000
"""Most transactions the busy writer commits before it stops waiting for the rare one."""
GROUP_S = 0.005
"""How long the busy writer holds each transaction (a group being decided and signed)."""
BUSY_PER_SEAL = 5
"""Most of the busy writer's transactions allowed per transaction of the rare one (with
turns about 1; in the busy handler, hundreds)."""


def test_a_rare_writer_progresses_beside_a_back_to_back_writer(tmp_path: Path) -> None:
    db = Database(create_registry_engine(RegistrySettings(data_dir=tmp_path)))
    with db.session() as session:
        session.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, who TEXT)"))
    sealed = 0
    busy = 0
    started = threading.Event()
    done = threading.Event()

    def busy_writer() -> None:
        nonlocal busy
        while not done.is_set() and busy < BUSY_LIMIT:
            with db.session() as session:
                session.execute(text("INSERT INTO log (who) VALUES ('busy')"))
                time.sleep(GROUP_S)
            busy += 1
            started.set()

    def rare_writer() -> None:
        nonlocal sealed
        started.wait(30)
        for _ in range(SEALS):
            with db.session() as session:
                session.execute(text("INSERT INTO log (who) VALUES ('seal')"))
            sealed += 1
        done.set()

    threads = [threading.Thread(target=busy_writer), threading.Thread(target=rare_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    db.close()
    print(f"{busy} back-to-back transactions, {sealed} rare ones")
    assert sealed == SEALS
    assert busy <= SEALS * BUSY_PER_SEAL, f"{busy} back-to-back commits for {SEALS} of the other"
