"""The public credit pages served by the registry (fixed credit clock): a record is on the
search and subject pages inside its window and gone exactly at its end; natural persons are
neither searchable nor shown in clear; the pages load nothing from outside."""

from __future__ import annotations

import datetime

from credit_harness import RESIDENT_ID, CreditApp, penalties, penalty_file, person_penalty
from report_harness import ENTERPRISE_NAME, ENTERPRISE_USCC


def _display_end(app: CreditApp) -> datetime.datetime:
    profile = app.sdk.public_profile(ENTERPRISE_USCC)
    (record,) = profile["records"]
    return datetime.datetime.fromisoformat(record["display_end"])


def test_record_leaves_the_pages_exactly_at_its_window_end(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    end = _display_end(app)

    app.clock.set(end - datetime.timedelta(seconds=1))
    search = app.http.get("/credit/", params={"q": "福州某某"})
    assert search.status_code == 200
    assert ENTERPRISE_NAME in search.text and "公示中 1 条" in search.text
    assert "script-src 'self'" in search.headers["content-security-policy"]
    subject = app.http.get(f"/credit/subjects/{ENTERPRISE_USCC}")
    assert subject.status_code == 200 and "榕市监罚〔2023〕0号" in subject.text
    by_code = app.http.get("/credit/", params={"q": ENTERPRISE_USCC.lower()})
    assert ENTERPRISE_NAME in by_code.text

    app.clock.set(end)
    search = app.http.get("/credit/", params={"q": "福州某某"})
    assert ENTERPRISE_NAME not in search.text and "未找到" in search.text
    subject = app.http.get(f"/credit/subjects/{ENTERPRISE_USCC}")
    assert subject.status_code == 404
    assert "榕市监罚〔2023〕0号" not in subject.text


def test_natural_persons_are_not_searchable_and_never_shown_in_clear(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file([person_penalty()]))
    search = app.http.get("/credit/", params={"q": "张三"})
    assert "未找到" in search.text
    page = app.http.get(f"/credit/subjects/{RESIDENT_ID}")
    assert page.status_code == 404
    assert RESIDENT_ID not in page.text and "张三" not in page.text


def test_pages_are_self_contained(app: CreditApp) -> None:
    page = app.http.get("/credit/")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assert app.http.get("/credit", follow_redirects=False).status_code == 308
    script = app.http.get("/credit/assets/report-check.js")
    assert script.status_code == 200 and "fetch(" in script.text
