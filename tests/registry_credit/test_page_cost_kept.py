"""A kept public page is served from the server's event loop, under the credit version read
there without waiting (registry.credit.credit_version.WaitlessVersionReader): no hop to the thread
pool and back. A page not kept, or a version that cannot be read at once, goes through the
pool as before; and a credit event is seen by the next page served (SQLite: on PostgreSQL
no page is kept and every page goes through the pool; tests/registry_credit_reports/
test_credit_page_cache.py makes events through another process)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from credit_harness import CreditApp, penalties, penalty_file
from fastapi.testclient import TestClient

import registry.credit.credit_version as credit_version_module
import registry.routers.credit_pages as credit_pages
from registry.app import create_app
from registry.credit.credit_version import WaitlessVersionReader, credit_version
from registry.db import Database
from registry.settings import RegistrySettings

ENTERPRISE = "91350100M000100Y43"
SEARCH = {"q": "福州某某"}
SUBJECT = f"/credit/subjects/{ENTERPRISE}"


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the page routes hand to the thread pool."""
    seen: list[str] = []
    run_blocking = credit_pages.run_blocking

    async def counted(function: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(function.__name__)
        return await run_blocking(function, *args, **kwargs)

    monkeypatch.setattr(credit_pages, "run_blocking", counted)
    return seen


def _pages(app: CreditApp) -> tuple[str, str]:
    search = app.http.get("/credit/", params=SEARCH)
    subject = app.http.get(SUBJECT)
    assert search.status_code == 200 and subject.status_code == 200
    return search.text, subject.text


@pytest.fixture
def other(app: CreditApp) -> Iterator[Database]:
    """The registry's database as another API process opens it."""
    settings: RegistrySettings = app.http.app.state.registry.settings  # type: ignore[attr-defined]
    db = Database.open(settings, run_migrations=False)
    yield db
    db.close()


def test_a_kept_page_is_served_without_the_thread_pool(app: CreditApp, hops: list[str]) -> None:
    app.sdk.import_file(penalty_file(penalties(2)))
    first = _pages(app)
    assert hops == ["_kept", "_kept"]
    again = _pages(app)
    assert again == first
    if app.db.is_sqlite:
        assert hops == ["_kept", "_kept"], "a kept page went through the pool"
    else:
        assert hops == ["_kept"] * 4


def test_a_version_not_read_at_once_sends_the_page_through_the_pool(
    app: CreditApp, hops: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app.sdk.import_file(penalty_file(penalties(2)))
    first = _pages(app)
    monkeypatch.setattr(WaitlessVersionReader, "read", lambda _self: None)
    assert _pages(app) == first
    assert hops == ["_kept"] * 4


def test_a_credit_event_is_seen_by_the_next_page(app: CreditApp, other: Database) -> None:
    app.sdk.import_file(penalty_file(penalties(2)))
    _pages(app)
    search, subject = _pages(app)
    assert "公示中 2 条" in search and "榕市监罚〔2023〕0号" in subject
    records = app.sdk.public_profile(ENTERPRISE)["records"]
    stopped = next(r for r in records if r["decision_number"] == "榕市监罚〔2023〕0号")
    before = credit_version(other)
    app.sdk.withdraw(stopped["id"], reason="依法撤销")
    assert credit_version(other) > before  # as every process reads it
    search, subject = _pages(app)
    assert "公示中 1 条" in search and "榕市监罚〔2023〕0号" not in subject
    assert "榕市监罚〔2023〕1号" in subject


def test_the_waitless_reader_answers_none_when_it_cannot_read(
    app: CreditApp, tmp_path: Path
) -> None:
    reader = WaitlessVersionReader(app.db)
    if not app.db.is_sqlite:
        assert reader.read() is None
        return
    assert reader.read() == credit_version(app.db) == 0
    app.sdk.import_file(penalty_file(penalties(1)))
    assert reader.read() == credit_version(app.db) > 0
    # A file that is not a database: None, and the connection is opened again next time.
    path = reader._path
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    reader.close()
    reader._path = str(junk)
    assert reader.read() is None
    reader._path = path
    assert reader.read() == credit_version(app.db)


class _RecordedSqlite:
    """The sqlite3 module as the version reader sees it, keeping every connection it opens
    (held here, so only an explicit close closes one, not its thread's end)."""

    def __init__(self) -> None:
        self.opened: list[sqlite3.Connection] = []

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = sqlite3.connect(*args, **kwargs)
        self.opened.append(connection)
        return connection

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)


def _closed(connection: sqlite3.Connection) -> bool:
    """Whether ``connection`` is closed (asked from any thread: ``total_changes`` checks
    that alone)."""
    try:
        connection.total_changes  # noqa: B018
    except sqlite3.ProgrammingError:
        return True
    return False


def test_the_app_closes_the_version_reads_at_its_shutdown(
    app: CreditApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not app.db.is_sqlite:
        pytest.skip("the version is read without waiting on SQLite only")
    app.sdk.import_file(penalty_file(penalties(1)))
    recorded = _RecordedSqlite()
    monkeypatch.setattr(credit_version_module, "sqlite3", recorded)
    settings = app.http.app.state.registry.settings  # type: ignore[attr-defined]
    # Another application on the same database, started and shut down here: its event
    # loop's thread reads for the pages, this thread reads directly.
    with TestClient(create_app(settings)) as other:
        for _ in range(2):
            assert other.get("/credit/", params=SEARCH).status_code == 200
        reader = other.app.state.credit_version_reader  # type: ignore[attr-defined]
        assert reader.read() == credit_version(app.db) > 0
        assert len(recorded.opened) == 2
        assert not any(_closed(connection) for connection in recorded.opened)
    assert all(_closed(connection) for connection in recorded.opened)
