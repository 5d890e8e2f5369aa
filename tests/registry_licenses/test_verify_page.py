"""The citizen's verify page: every status in both languages, escaping, weight, links, and
the department signature's verdict (who signed, or that the signature fails)."""

from __future__ import annotations

import dataclasses
import datetime
from html.parser import HTMLParser

import pytest

from contracts.trust import LicenseStatus, Reason
from registry.licenses.errors import InvalidPageView, UnsupportedLanguage
from registry.licenses.page import (
    PageSigner,
    PageStatus,
    VerifyPageView,
    choose_language,
    page_status,
    render_verify_page,
)
from registry.licenses.reasons import LANGUAGES, REASON_TEXT, reason_text

pytestmark = pytest.mark.no_database

IDENTIFIER = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
CHECKED = datetime.datetime(2025, 6, 1, 1, 30, 5, tzinfo=datetime.UTC)
ANCHORED = datetime.datetime(2024, 3, 15, 2, 0, 0, tzinfo=datetime.UTC)
MAX_PAGE_BYTES = 50 * 1024

STATUS_WORDS = {
    PageStatus.VALID: ("有效", "Valid"),
    PageStatus.SUSPENDED: ("暂停", "Suspended"),
    PageStatus.REVOKED: ("已撤销", "Revoked"),
    PageStatus.EXPIRED: ("已过期", "Expired"),
    PageStatus.CHANGED: ("已变更", "Changed"),
    PageStatus.NOT_FOUND: ("未找到", "Not found"),
    PageStatus.UNAVAILABLE: ("暂时无法核验", "Cannot verify now"),
    PageStatus.CODE_EXPIRED: ("二维码已过期", "Code expired"),
    PageStatus.SIGNATURE_INVALID: ("签名无效", "Signature invalid"),
}
UNNAMED = (
    PageStatus.NOT_FOUND,
    PageStatus.UNAVAILABLE,
    PageStatus.CODE_EXPIRED,
    PageStatus.SIGNATURE_INVALID,
)
"""Statuses whose page names no license."""
REASONS = {
    PageStatus.SUSPENDED: Reason.UNDER_INVESTIGATION,
    PageStatus.REVOKED: Reason.ENTITY_DEREGISTERED,
    PageStatus.EXPIRED: Reason.TERM_ENDED,
    PageStatus.CHANGED: Reason.DATA_CHANGED,
}


def _view(status: PageStatus, **overrides: object) -> VerifyPageView:
    if status is PageStatus.CODE_EXPIRED:
        fields: dict[str, object] = {}
    elif status is PageStatus.SIGNATURE_INVALID:
        fields = {"identifier": IDENTIFIER, "license_name": "营业执照"}
    elif status in UNNAMED:
        fields = {"identifier": IDENTIFIER}
    else:
        fields = {
            "license_name": "营业执照",
            "identifier": IDENTIFIER,
            "issuer_name": "示例市市场监督管理局",
            "issuer_code": "11220000013544541J",
            "issue_date": datetime.date(2024, 3, 15),
            "valid_from": datetime.date(2024, 3, 15),
            "valid_until": datetime.date(2029, 3, 14),
            "anchored_block": 4321,
            "anchored_at": ANCHORED,
        }
    if status in REASONS:
        fields["reason"] = int(REASONS[status])
        fields["status_changed_at"] = CHECKED - datetime.timedelta(days=3)
    if status is PageStatus.CHANGED:
        fields["successor_url"] = "/licenses/verify/1.2.156.3005.2.X.002.Y"
    fields.update(overrides)
    return VerifyPageView(status, CHECKED, **fields)  # type: ignore[arg-type]


class _Collector(HTMLParser):
    """Collects start tags and the text between tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("status", list(PageStatus))
def test_every_status_in_both_languages(status: PageStatus, lang: str) -> None:
    view = _view(status)
    page = render_verify_page(view, lang)
    zh_word, en_word = STATUS_WORDS[status]
    word, other = (zh_word, en_word) if lang == "zh" else (en_word, zh_word)
    assert f"<span>{word}</span>" in page
    assert f"<span>{other}</span>" not in page
    assert f'class="status {status.value.replace("_", "-")}"' in page
    assert ('lang="zh-CN"' if lang == "zh" else '<html lang="en"') in page
    assert (IDENTIFIER in page) is (status is not PageStatus.CODE_EXPIRED)
    if status in REASONS:
        assert reason_text(REASONS[status], lang) in page
    if status not in UNNAMED:
        assert "营业执照" in page
        assert "示例市市场监督管理局" in page
        assert "#4321" in page
        assert "2024-03-15 10:00:00 (UTC+8)" in page  # anchored at 02:00 UTC
        assert ("2024年3月15日" if lang == "zh" else "2024-03-15") in page
    if status is PageStatus.CHANGED:
        assert 'href="/licenses/verify/1.2.156.3005.2.X.002.Y"' in page
    assert "2025-06-01 09:30:05 (UTC+8)" in page  # checked at
    assert len(page.encode("utf-8")) < MAX_PAGE_BYTES


def test_unavailable_never_reads_as_invalid() -> None:
    for lang in LANGUAGES:
        page = render_verify_page(_view(PageStatus.UNAVAILABLE), lang)
        for status in (PageStatus.REVOKED, PageStatus.EXPIRED, PageStatus.NOT_FOUND):
            assert STATUS_WORDS[status][LANGUAGES.index(lang)] not in page
    assert "这并不表示证照无效" in render_verify_page(_view(PageStatus.UNAVAILABLE), "zh")


def test_language_switch_links_to_the_other_language() -> None:
    zh_links = [
        a for tag, a in _parse(render_verify_page(_view(PageStatus.VALID))).tags if tag == "a"
    ]
    assert {"class": "lang", "href": "?lang=en", "hreflang": "en", "lang": "en"} in zh_links
    en_page = render_verify_page(_view(PageStatus.VALID), "en")
    assert 'href="?lang=zh"' in en_page


def test_open_ended_validity() -> None:
    view = _view(PageStatus.VALID, valid_until=None)
    assert "2024年3月15日 至 长期" in render_verify_page(view, "zh")
    assert "2024-03-15 to no end date" in render_verify_page(view, "en")


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'


@pytest.mark.parametrize("field", ["license_name", "issuer_name", "issuer_code", "identifier"])
def test_hostile_text_is_escaped(field: str) -> None:
    page = render_verify_page(_view(PageStatus.REVOKED, **{field: HOSTILE}), "zh")
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&amp;amp;" in page
    assert HOSTILE in "".join(_parse(page).text)
    assert [tag for tag, _ in _parse(page).tags if tag in {"script", "img", "iframe"}] == []


def test_no_script_and_nothing_external() -> None:
    for status in PageStatus:
        for lang in LANGUAGES:
            collector = _parse(render_verify_page(_view(status), lang))
            tags = {tag for tag, _ in collector.tags}
            assert not tags & {"script", "img", "link", "iframe", "object"}
            for _, attrs in collector.tags:
                assert "src" not in attrs
                assert not any(name.startswith("on") for name in attrs)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "/\\evil.example",
        "http://insecure.example/x",
        "/ok path",
        "/ok\npath",
        ' /x" onclick="alert(1)',
    ],
)
def test_unsafe_successor_links_are_refused(url: str) -> None:
    with pytest.raises(InvalidPageView):
        _view(PageStatus.CHANGED, successor_url=url)


def test_safe_successor_link_with_quotes_is_escaped() -> None:
    page = render_verify_page(
        _view(PageStatus.CHANGED, successor_url='https://a.example/v?x="1"&y=<2>'), "en"
    )
    assert 'href="https://a.example/v?x=&#34;1&#34;&amp;y=&lt;2&gt;"' in page


def test_page_weight_with_the_longest_fields() -> None:
    long = "证" * 200
    view = _view(PageStatus.REVOKED, license_name=long, issuer_name=long, issuer_code=long)
    for lang in LANGUAGES:
        assert len(render_verify_page(view, lang).encode("utf-8")) < MAX_PAGE_BYTES / 5


@pytest.mark.parametrize(
    "overrides",
    [
        {"license_name": None},
        {"issuer_name": ""},
        {"checked_at": datetime.datetime(2025, 6, 1)},
        {"anchored_at": datetime.datetime(2025, 6, 1)},
        {"anchored_block": -1},
    ],
)
def test_incomplete_views_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidPageView):
        dataclasses.replace(_view(PageStatus.VALID), **overrides)  # type: ignore[arg-type]


def test_status_from_text_and_unknown_status() -> None:
    view = _view(PageStatus.VALID)
    assert dataclasses.replace(view, status="valid").status is PageStatus.VALID  # type: ignore[arg-type]
    with pytest.raises(InvalidPageView):
        dataclasses.replace(view, status="fine")  # type: ignore[arg-type]


def test_languages() -> None:
    assert choose_language(None) == "zh"
    assert choose_language("en") == "en"
    assert choose_language(" EN ") == "en"
    assert choose_language("fr") == "zh"
    assert choose_language("<script>") == "zh"
    with pytest.raises(UnsupportedLanguage):
        render_verify_page(_view(PageStatus.VALID), "fr")


@pytest.mark.parametrize("status", list(LicenseStatus))
def test_every_ledger_status_has_a_page_status(status: LicenseStatus) -> None:
    expected = {
        LicenseStatus.NONE: PageStatus.NOT_FOUND,
        LicenseStatus.ISSUED: PageStatus.VALID,
        LicenseStatus.CHANGED: PageStatus.CHANGED,
        LicenseStatus.SUSPENDED: PageStatus.SUSPENDED,
        LicenseStatus.REVOKED: PageStatus.REVOKED,
        LicenseStatus.EXPIRED: PageStatus.EXPIRED,
    }
    assert page_status(status) is expected[status]


def test_every_reason_has_text_in_every_language() -> None:
    assert set(REASON_TEXT) == set(Reason)
    for reason in Reason:
        texts = [reason_text(reason, lang) for lang in LANGUAGES]
        assert all(texts)
        assert len(set(texts)) == len(LANGUAGES)
    all_zh = [reason_text(reason, "zh") for reason in Reason]
    assert len(set(all_zh)) == len(all_zh)


def test_unknown_reason_code_is_shown_as_its_number() -> None:
    assert reason_text(4242, "zh") == "原因代码 4242"
    assert reason_text(4242, "en") == "Reason code 4242"
    page = render_verify_page(_view(PageStatus.REVOKED, reason=4242), "en")
    assert "Reason code 4242" in page
    with pytest.raises(UnsupportedLanguage):
        reason_text(1, "fr")


SIGNER = PageSigner(name="示例市市场监督管理局", uscc="11220000013544541J")


def test_a_verified_signature_names_the_department_that_signed() -> None:
    view = _view(PageStatus.VALID, signed_by=SIGNER)
    assert "由 示例市市场监督管理局 (11220000013544541J) 签发，签名有效" in render_verify_page(view)
    english = render_verify_page(view, "en")
    assert "Issued by 示例市市场监督管理局 (11220000013544541J); signature valid" in english


def test_a_license_issued_before_departments_signed_says_so() -> None:
    page = render_verify_page(_view(PageStatus.VALID))
    assert "签发时发证部门尚未签名" in page and "签名有效" not in page


def test_a_failed_signature_names_no_issuer_and_never_says_valid() -> None:
    for lang in LANGUAGES:
        page = render_verify_page(_view(PageStatus.SIGNATURE_INVALID), lang)
        assert "有效" not in page and "Valid" not in page.replace("Signature invalid", "")
        assert "示例市市场监督管理局" not in page
    assert "无法确认由谁签发" in render_verify_page(_view(PageStatus.SIGNATURE_INVALID))
    with pytest.raises(InvalidPageView):
        _view(PageStatus.SIGNATURE_INVALID, signed_by=SIGNER)
    with pytest.raises(InvalidPageView):
        _view(PageStatus.SIGNATURE_INVALID, issuer_name="北京市市场监督管理局")


def test_the_page_names_who_made_the_status_change_or_that_its_signature_fails() -> None:
    revoked = _view(PageStatus.REVOKED, signed_by=SIGNER, status_changed_by=SIGNER)
    assert "由 示例市市场监督管理局 (11220000013544541J) 撤销，签名有效" in render_verify_page(
        revoked
    )
    assert "Revoked by 示例市市场监督管理局" in render_verify_page(revoked, "en")
    suspended = _view(PageStatus.SUSPENDED, status_changed_by=SIGNER)
    assert "暂停，签名有效" in render_verify_page(suspended)
    failed = render_verify_page(_view(PageStatus.REVOKED, status_signature_failed=True))
    assert "<span>已撤销</span>" in failed and "该状态变更的部门签名未通过核验" in failed
