"""The public pages kept per process (registry.credit.page_cache): a kept page is the page
rendered afresh; none is served after a credit event (made through this process or another
one on the same database), nor once a record's window has ended; a page is kept only for
the instants it holds for."""

from __future__ import annotations

import datetime

from credit_harness import CreditApp, penalties, penalty_file
from fastapi.testclient import TestClient
from registry_harness import CLIENT_KEY
from report_harness import ENTERPRISE_NAME, ENTERPRISE_USCC

from registry.app import create_app
from registry.credit.page_cache import PageCache, Rendered
from registry.credit.public_reads import profile_changes_after, search_changes_after
from sdk.credit_client import CreditClient

SEARCH = {"q": "福州某某"}
SUBJECT = f"/credit/subjects/{ENTERPRISE_USCC}"


def _pages(http: TestClient) -> tuple[str, str, int]:
    search = http.get("/credit/", params=SEARCH)
    subject = http.get(SUBJECT)
    assert search.status_code == 200
    return search.text, subject.text, subject.status_code


def _cache(app: CreditApp) -> PageCache:
    cache = app.http.app.state.credit_page_cache  # type: ignore[attr-defined]
    assert isinstance(cache, PageCache)
    return cache


def _records(app: CreditApp) -> list[dict[str, object]]:
    records: list[dict[str, object]] = app.sdk.public_profile(ENTERPRISE_USCC)["records"]
    return records


def test_a_kept_page_is_the_page_rendered_afresh(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(2)))
    first = _pages(app.http)
    if app.db.is_sqlite:  # pages are kept on SQLite only
        assert len(_cache(app)) == 2
    assert _pages(app.http) == first
    # Without the kept pages (a new cache), the same pages are rendered.
    app.http.app.state.credit_page_cache = PageCache()  # type: ignore[attr-defined]
    assert _pages(app.http) == first
    assert "公示中 2 条" in first[0] and "榕市监罚〔2023〕1号" in first[1]


def test_no_kept_page_is_served_after_a_credit_event(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(2)))
    _pages(app.http)
    search, subject, _ = _pages(app.http)
    assert "公示中 2 条" in search and "榕市监罚〔2023〕0号" in subject

    stopped = next(r for r in _records(app) if r["decision_number"] == "榕市监罚〔2023〕0号")
    app.sdk.stop_publishing(str(stopped["id"]), "决定撤回公示")
    search, subject, status = _pages(app.http)
    assert "公示中 1 条" in search
    assert "榕市监罚〔2023〕0号" not in subject and "榕市监罚〔2023〕1号" in subject

    remaining = _records(app)[0]
    app.sdk.withdraw(str(remaining["id"]), "行政复议撤销")
    search, subject, status = _pages(app.http)
    assert ENTERPRISE_NAME not in search and "未找到" in search
    assert status == 404


def test_an_event_made_by_another_process_ends_the_kept_pages(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    _pages(app.http)
    assert "榕市监罚〔2023〕0号" in _pages(app.http)[1]
    record = _records(app)[0]
    settings = app.http.app.state.registry.settings  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as other:
        other.app.state.credit_clock = app.clock.now  # type: ignore[attr-defined]
        other.app.state.credit_keys = app.http.app.state.credit_keys  # type: ignore[attr-defined]
        # The same department (its key), through the other process.
        department = CreditClient(
            "http://testserver", app.client_id, CLIENT_KEY, http_client=other, retries=0
        )
        department.stop_publishing(str(record["id"]), "决定撤回公示")
    search, subject, status = _pages(app.http)
    assert "未找到" in search and status == 404 and "榕市监罚〔2023〕0号" not in subject


def test_a_record_leaves_a_kept_page_exactly_at_its_window_end(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    end = datetime.datetime.fromisoformat(str(_records(app)[0]["display_end"]))
    assert profile_changes_after(app.db, ENTERPRISE_USCC, end - datetime.timedelta(days=1)) == end
    assert search_changes_after(app.db, "福州某某", end - datetime.timedelta(days=1)) == end
    assert profile_changes_after(app.db, ENTERPRISE_USCC, end) is None

    app.clock.set(end - datetime.timedelta(microseconds=1))
    _pages(app.http)
    search, subject, status = _pages(app.http)
    assert ENTERPRISE_NAME in search and status == 200

    app.clock.set(end)
    search, subject, status = _pages(app.http)
    assert ENTERPRISE_NAME not in search and status == 404
    assert "榕市监罚〔2023〕0号" not in subject

    # Back before the end (a fixed clock may go back): shown again, not the later page.
    app.clock.set(end - datetime.timedelta(seconds=30))
    assert _pages(app.http)[2] == 200


def test_a_page_is_kept_only_for_the_instants_it_holds_for() -> None:
    cache = PageCache(capacity=4)
    start = datetime.datetime(2024, 1, 1, 8, 0, 10, tzinfo=datetime.UTC)
    end = start + datetime.timedelta(seconds=20)
    reads: list[datetime.datetime] = []

    def read_at(at: datetime.datetime) -> Rendered:
        def read() -> tuple[Rendered, datetime.datetime | None]:
            reads.append(at)
            return Rendered(f"page at {at.isoformat()}", 200), end

        return cache.page("subject", 7, at, "08:00", read)

    assert read_at(start).html == f"page at {start.isoformat()}"
    inside = start + datetime.timedelta(seconds=19)
    assert read_at(inside).html == f"page at {start.isoformat()}"
    assert reads == [start]
    assert read_at(end).html == f"page at {end.isoformat()}"
    before = start - datetime.timedelta(seconds=1)
    assert read_at(before).html == f"page at {before.isoformat()}"
    assert cache.page("subject", 7, before, "07:59", lambda: (Rendered("x", 200), None)).html == "x"
    assert cache.page("subject", 8, before, "07:59", lambda: (Rendered("y", 200), None)).html == "y"
    assert reads == [start, end, before]
