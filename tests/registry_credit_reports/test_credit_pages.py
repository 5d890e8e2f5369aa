"""The public credit pages served by the registry (fixed credit clock): a record is on the
search and subject pages inside its window and gone exactly at its end; natural persons are
neither searchable nor shown in clear; the pages load nothing from outside; they are in
Chinese by default and in English with ``?lang=en``, each with a link to the other."""

from __future__ import annotations

import datetime
import re

from credit_harness import RESIDENT_ID, CreditApp, penalties, penalty_file, person_penalty
from report_harness import ENTERPRISE_NAME, ENTERPRISE_USCC

from chain.crypto import sm3


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


def _switch(html: str) -> str:
    """The href of a page's language link."""
    match = re.search(r'<a href="([^"]*)"[^>]*id="lang-switch"', html)
    assert match is not None, "no language link"
    return match.group(1).replace("&amp;", "&")


def test_pages_are_chinese_by_default_and_english_on_request_with_a_link_each_way(
    app: CreditApp,
) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    chinese = app.http.get("/credit/", params={"q": "福州某某"})
    assert '<html lang="zh-CN">' in chinese.text and "公示中 1 条" in chinese.text
    assert _switch(chinese.text) == "?q=%E7%A6%8F%E5%B7%9E%E6%9F%90%E6%9F%90&lang=en"

    english = app.http.get("/credit/" + _switch(chinese.text))
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert "Public credit information" in english.text and "1 on display" in english.text
    assert "公示中" not in english.text and "查询时间" not in english.text
    assert ENTERPRISE_NAME in english.text  # contents stay as published
    assert f'href="subjects/{ENTERPRISE_USCC}?lang=en"' in english.text
    assert '<input type="hidden" name="lang" value="en">' in english.text
    assert _switch(english.text) == "?q=%E7%A6%8F%E5%B7%9E%E6%9F%90%E6%9F%90"

    subject = app.http.get(f"/credit/subjects/{ENTERPRISE_USCC}", params={"lang": "en"})
    assert subject.status_code == 200
    assert "Administrative penalty" in subject.text and "Displayed until" in subject.text
    assert "Penalty category" in subject.text and "榕市监罚〔2023〕0号" in subject.text
    assert "行政处罚" not in subject.text and 'href="../?lang=en"' in subject.text
    assert _switch(subject.text) == "?"
    chinese_subject = app.http.get(f"/credit/subjects/{ENTERPRISE_USCC}")
    assert "行政处罚" in chinese_subject.text and _switch(chinese_subject.text) == "?lang=en"

    missing = app.http.get("/credit/subjects/91350100M000100Y43X", params={"lang": "en"})
    assert missing.status_code == 404 and "No information on display" in missing.text


def test_an_unknown_language_is_a_typed_error(app: CreditApp) -> None:
    answer = app.http.get("/credit/", params={"lang": "fr"})
    assert answer.status_code == 422 and answer.json()["error"]["code"]


def test_the_report_page_in_english_keeps_the_check_and_the_report_as_stated(
    app: CreditApp,
) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    issued = app.sdk.report(ENTERPRISE_USCC)
    page = f"/credit/reports/{issued.report_id}"
    english = app.http.get(page, params={"lang": "en"})
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert "Credit report check" in english.text
    assert "Waiting for the issuing department&#39;s signature" in english.text
    assert 'data-lang="en"' in english.text and issued.content["conclusion"] in english.text
    assert "报告编号" not in english.text and _switch(english.text) == "?"

    changed = sm3(issued.pdf + b"\n").hex()
    checked = app.http.get(page, params={"sm3": changed, "lang": "en"})
    assert "The file does not match this report" in checked.text
    assert _switch(checked.text) == f"?sm3={changed}"
    genuine = app.http.get(page, params={"sm3": issued.pdf_sm3})
    assert "报告真实，未被修改" in genuine.text
    assert _switch(genuine.text) == f"?sm3={issued.pdf_sm3}&lang=en"
