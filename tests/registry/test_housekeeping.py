"""The scheduled purge of request nonces (registry.housekeeping): expired nonces go, unexpired
ones stay and still refuse a replay, a failing purge does not end the loop, and the loop
stops when cancelled. Runs on SQLite, or on PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from registry_harness import TrustChain, new_client, registry_settings
from sqlalchemy import select

from registry import housekeeping
from registry.app import create_app
from registry.db import Database
from registry.errors import AuthenticationFailed
from registry.housekeeping import run_nonce_purge
from registry.intake import NonceClaim, _Entry, commit_entries
from registry.models import Nonce
from registry.settings import RegistrySettings

PURGE_INTERVAL_S = 0.01
"""Seconds between purges in these tests."""
WAIT_S = 10.0
"""Longest wait for the loop to have done something (a bound, not a timing assertion)."""


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = Database.open(RegistrySettings(data_dir=tmp_path, database_url=database_url))
    yield database
    database.close()


def stored_nonces(db: Database) -> set[str]:
    with db.read_session() as session:
        return set(session.scalars(select(Nonce.nonce)).all())


async def until(condition: object, what: str) -> None:
    """Wait (without a timing assertion) until ``condition()`` holds."""
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await asyncio.to_thread(condition):
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(PURGE_INTERVAL_S)


def test_the_loop_purges_expired_nonces_and_a_replay_is_still_refused(db: Database) -> None:
    client, _ = new_client(db)
    now = datetime.now(UTC)
    expired = NonceClaim(client.id, "expired-nonce-0001", now - timedelta(seconds=1))
    live = NonceClaim(client.id, "unexpired-nonce-01", now + timedelta(minutes=5))

    assert commit_entries(db, [_Entry(expired), _Entry(live)]) == [None, None]
    assert stored_nonces(db) == {expired.nonce, live.nonce}

    async def scenario() -> None:
        purge = asyncio.create_task(run_nonce_purge(db, PURGE_INTERVAL_S))
        await until(lambda: expired.nonce not in stored_nonces(db), "expired nonce purged")
        # Several rounds more: the unexpired nonce survives every one of them.
        await asyncio.sleep(PURGE_INTERVAL_S * 5)
        assert not purge.done()
        purge.cancel()
        with pytest.raises(asyncio.CancelledError):
            await purge

    asyncio.run(scenario())
    assert stored_nonces(db) == {live.nonce}
    # The request of the unexpired nonce, sent again, is refused as a replay.
    (replay,) = commit_entries(db, [_Entry(live)])
    assert isinstance(replay, AuthenticationFailed) and replay.code == "replayed_nonce"


def test_a_failing_purge_is_logged_and_the_loop_goes_on(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime | None] = []

    def flaky(database: Database, now: datetime | None = None) -> int:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return 3

    monkeypatch.setattr(housekeeping, "purge_expired_nonces", flaky)

    async def scenario() -> None:
        purge = asyncio.create_task(run_nonce_purge(db, PURGE_INTERVAL_S))
        await until(lambda: len(calls) >= 3, "purges after a failure")
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge
        assert purge.cancelled()

    with caplog.at_level("INFO", logger=housekeeping.__name__):
        asyncio.run(scenario())
    messages = [record.getMessage() for record in caplog.records]
    assert "purging expired nonces failed; trying again later" in messages
    assert "purged 3 expired request nonces" in messages


def test_the_running_application_purges_expired_nonces(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> None:
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, nonce_purge_interval=PURGE_INTERVAL_S
    )
    with TestClient(create_app(settings)) as http:
        state = http.app.state.registry  # type: ignore[attr-defined]
        # The purge runs with the batcher and anchorer, under the workers lease.
        assert "registry-lease" in {task.get_name() for task in state.workers}
        client, _ = new_client(state.db)
        now = datetime.now(UTC)
        expired = NonceClaim(client.id, "expired-nonce-0002", now - timedelta(seconds=1))
        live = NonceClaim(client.id, "unexpired-nonce-02", now + timedelta(minutes=5))
        commit_entries(state.db, [_Entry(expired), _Entry(live)])
        deadline = time.monotonic() + WAIT_S
        while expired.nonce in stored_nonces(state.db):
            assert time.monotonic() < deadline, "the application never purged the nonce"
            time.sleep(PURGE_INTERVAL_S)
        assert stored_nonces(state.db) == {live.nonce}


def test_scheduled_checkpoints_empty_the_sqlite_wal(tmp_path: Path) -> None:
    db = Database.open(RegistrySettings(data_dir=tmp_path))
    try:
        raw = db.engine.raw_connection()
        try:
            (pages,) = raw.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()
        finally:
            raw.close()
        assert pages == 20_000, "commits leave checkpoints to the schedule"
        client, _ = new_client(db)
        now = datetime.now(UTC) + timedelta(minutes=5)
        commit_entries(db, [_Entry(NonceClaim(client.id, f"n{i:020d}", now)) for i in range(500)])
        main = Path(str(db.engine.url.database))
        wal = Path(f"{main}-wal")
        assert wal.stat().st_size > 0
        before = main.stat().st_size

        async def a_few_rounds() -> None:
            task = asyncio.create_task(housekeeping.run_checkpoints(db, 0.05))
            await asyncio.sleep(0.3)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(a_few_rounds())
        assert main.stat().st_size > before, "the loop copied the new pages into the file"
        raw = db.engine.raw_connection()
        try:
            busy, logged, copied = raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        assert busy == 0 and logged == copied, "everything in the WAL is in the database file"

    finally:
        db.close()
