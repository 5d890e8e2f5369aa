"""A public credit page kept by the registry lives past the minute it was rendered in: it is
read from the database once while its records hold, and each time it is served it shows the
minute it is served at, as a page rendered then would. (Every kept page used to be read and
rendered again at each new minute, all at once.) At the minute its record leaves display it
is read again: a kept page is never served stale.

The reads counted are the page routes' reads of the records: a search page's hits with the
instant they hold until (one statement, search_public_until), a subject's profile."""

from __future__ import annotations

import datetime

import pytest
from credit_harness import CreditApp, penalties, penalty_file
from report_harness import ENTERPRISE_NAME, ENTERPRISE_USCC

import registry.routers.credit_pages as credit_pages
from registry.credit.page_cache import PageCache
from registry.credit.pages import shown_time

SEARCH = {"q": "福州某某"}
SUBJECT = f"/credit/subjects/{ENTERPRISE_USCC}"


def _pages(app: CreditApp, lang: str) -> tuple[str, str]:
    search = app.http.get("/credit/", params={**SEARCH, "lang": lang})
    subject = app.http.get(SUBJECT, params={"lang": lang})
    assert search.status_code == 200 and subject.status_code == 200
    return search.text, subject.text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_kept_page_is_read_once_across_minutes_and_shows_the_minute_served(
    app: CreditApp, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    reads: list[str] = []

    def counted(name: str) -> None:
        read = getattr(credit_pages, name)

        def reading(*args: object, **kwargs: object) -> object:
            reads.append(name)
            return read(*args, **kwargs)

        monkeypatch.setattr(credit_pages, name, reading)

    counted("search_public_until")
    counted("public_profile")
    # Pages are kept on SQLite only (on PostgreSQL every page is read as it is served): there
    # the minute each page shows is checked, not how often it was read.
    kept = app.db.is_sqlite
    start = app.clock.now()
    first_search, first_subject = _pages(app, lang)
    assert reads == ["search_public_until", "public_profile"]
    assert shown_time(start, lang) in first_search and shown_time(start, lang) in first_subject

    later = start + datetime.timedelta(minutes=3, seconds=7)
    app.clock.set(later)
    search, subject = _pages(app, lang)
    if kept:
        assert reads == ["search_public_until", "public_profile"], "read again at a new minute"
    for page in (search, subject):
        assert shown_time(later, lang) in page and shown_time(start, lang) not in page
    assert ENTERPRISE_NAME in search and "榕市监罚〔2023〕0号" in subject
    # The pages a fresh process renders at that instant, byte for byte.
    app.http.app.state.credit_page_cache = PageCache()  # type: ignore[attr-defined]
    assert _pages(app, lang) == (search, subject)
    assert len(reads) == (4 if kept else 6)

    # The minute the record's window ends: both pages read again, the record gone.
    end = datetime.datetime.fromisoformat(
        str(app.sdk.public_profile(ENTERPRISE_USCC)["records"][0]["display_end"])
    )
    app.clock.set(end + datetime.timedelta(seconds=1))
    search = app.http.get("/credit/", params={**SEARCH, "lang": lang})
    subject = app.http.get(SUBJECT, params={"lang": lang})
    assert reads[-2:] == ["search_public_until", "public_profile"]
    assert ENTERPRISE_NAME not in search.text and subject.status_code == 404
    assert "榕市监罚〔2023〕0号" not in subject.text
