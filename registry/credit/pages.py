"""The public credit pages, server-rendered from package templates (``credit_*.html``,
``credit_pages.css`` inlined): the public search (信用公示), a subject's public profile, and a
credit report's genuine-check page (where the report's QR code leads). Chinese, nothing
loaded from outside; the only script is the report page's upload helper, served by the
package too. Every function takes what it shows, already looked up, and the language
(:mod:`registry.credit.page_text`: Chinese by default, English on request) with the link
to the page in the other language."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import jinja2

from registry.credit.page_text import (
    Language,
    anchoring_name,
    field_label,
    kind_name,
    list_name,
    page_text,
)
from registry.credit.public_reads import PublicProfile, PublicRecord, SearchHit
from registry.credit.reports import CHINA_TIME, GenuineCheck, ReportState

__all__ = [
    "TEMPLATES_DIR",
    "render_report_page",
    "render_search_page",
    "render_subject_page",
    "search_page_to_keep",
    "show_at",
    "shown_time",
    "subject_page_to_keep",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

_SUMMARY_FIELDS = {
    "penalty": (
        ("处罚类别", "categories"),
        ("违法行为类型", "violation_type"),
        ("处罚内容", "content"),
        ("罚款金额（万元）", "fine_wan"),
        ("处罚机关", "authority"),
        ("决定日期", "decision_date"),
    ),
    "licensing": (
        ("许可类别", "category"),
        ("许可内容", "content"),
        ("许可机关", "authority"),
        ("决定日期", "decision_date"),
        ("有效期至", "valid_to"),
    ),
    "list_entry": (
        ("名单名称", "list_name"),
        ("列入原因", "reason"),
        ("认定机关", "authority"),
        ("列入日期", "entry_date"),
    ),
    "commitment": (
        ("承诺事项", "matter"),
        ("状态", "status"),
        ("受理机关", "authority"),
        ("签署日期", "signed_on"),
    ),
}


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_TIME_SLOT = "time-" + secrets.token_hex(16)
"""Where a page kept to be served again shows the time it is served at
(:func:`show_at`). Drawn afresh by each process and never sent, so no text a page echoes (a
search, a name as imported) can hold it; hex, so escaping leaves it as it is."""


def shown_time(moment: datetime.datetime, lang: Language) -> str:
    """``moment`` as the pages show it (China time, to the minute)."""
    return _time(moment, lang)


def show_at(kept: str, moment: datetime.datetime, lang: Language) -> str:
    """A page rendered to be kept (:func:`search_page_to_keep`,
    :func:`subject_page_to_keep`) as served at ``moment``: the page rendered at ``moment``.
    A kept page thus lives past the minute it was rendered in, where every kept page used to
    be rendered again at once."""
    return kept.replace(_TIME_SLOT, shown_time(moment, lang))


def _time(moment: datetime.datetime | None, lang: Language) -> str:
    if moment is None:
        return page_text(lang)["long_term"]
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def _day(moment: datetime.datetime | None, lang: Language) -> str:
    if moment is None:
        return page_text(lang)["long_term"]
    return moment.astimezone(CHINA_TIME).date().isoformat()


def _record_rows(kind: str, fields: dict[str, str | None], lang: Language) -> list[tuple[str, str]]:
    rows = []
    for label, name in _SUMMARY_FIELDS.get(kind, ()):
        value = fields.get(name)
        if value:
            rows.append((field_label(label, lang), value))
    return rows


def _record_view(
    kind: str,
    decision_number: str,
    fields: dict[str, str | None],
    display_end: datetime.datetime | None,
    severity: str | None,
    lang: Language,
) -> dict[str, object]:
    return {
        "kind": kind_name(kind, lang),
        "decision_number": decision_number,
        "rows": _record_rows(kind, fields, lang),
        "until": _day(display_end, lang),
        "serious": severity == "serious",
    }


def _list_view(
    list_type: str, name: str, entry_date: datetime.date, lang: Language
) -> dict[str, object]:
    return {
        "name": list_name(list_type, lang),
        "list_name": name,
        "entry_date": entry_date.isoformat(),
        "serious": list_type == "black",
    }


def _language(lang: Language, switch_url: str) -> dict[str, object]:
    return {"t": page_text(lang), "lang": lang, "switch_url": switch_url}


def render_search_page(
    text: str,
    hits: Sequence[SearchHit] | None,
    at: datetime.datetime,
    *,
    lang: Language = "zh",
    switch_url: str = "?lang=en",
) -> str:
    """The search page: the form, and the hits for ``text`` (None: nothing searched yet)."""
    return show_at(search_page_to_keep(text, hits, lang=lang, switch_url=switch_url), at, lang)


def search_page_to_keep(
    text: str,
    hits: Sequence[SearchHit] | None,
    *,
    lang: Language = "zh",
    switch_url: str = "?lang=en",
) -> str:
    """The search page as :func:`render_search_page` renders it, its time left for
    :func:`show_at` to fill in."""
    return (
        _environment()
        .get_template("credit_search.html")
        .render(text=text, hits=hits, at=_TIME_SLOT, **_language(lang, switch_url))
    )


def render_subject_page(
    profile: PublicProfile, code: str, *, lang: Language = "zh", switch_url: str = "?lang=en"
) -> str:
    """A subject's public profile at ``profile.at``: only what is on display, masked."""
    kept = subject_page_to_keep(profile, code, lang=lang, switch_url=switch_url)
    return show_at(kept, profile.at, lang)


def subject_page_to_keep(
    profile: PublicProfile, code: str, *, lang: Language = "zh", switch_url: str = "?lang=en"
) -> str:
    """A subject's page as :func:`render_subject_page` renders it, its time left for
    :func:`show_at` to fill in: what it shows holds for as long as ``profile.records`` do."""
    records: Sequence[PublicRecord] = profile.records
    return (
        _environment()
        .get_template("credit_subject.html")
        .render(
            code=profile.subject_code or code,
            name=profile.subject_name,
            records=[
                _record_view(
                    record.kind,
                    record.decision_number,
                    record.fields,
                    record.display_end,
                    record.severity,
                    lang,
                )
                for record in records
            ],
            lists=[
                _list_view(entry.list_type, entry.list_name, entry.entry_date, lang)
                for entry in profile.lists
            ],
            at=_TIME_SLOT,
            **_language(lang, switch_url),
        )
    )


def render_report_page(
    state: ReportState,
    check: GenuineCheck | None,
    checked_at: datetime.datetime,
    *,
    lang: Language = "zh",
    switch_url: str = "?lang=en",
) -> str:
    """A report's genuine-check page: what the report stated as of its date, where its
    anchoring is, and — after a check — whether the checked file is this report unchanged."""
    report = state.report
    verdict = None
    if check is not None:
        verdict = "genuine" if check.genuine else "modified"
    records = [
        _record_view(
            record.kind,
            record.decision_number,
            dict(record.fields),
            record.display_end,
            record.severity,
            lang,
        )
        for record in report.records
    ]
    return (
        _environment()
        .get_template("credit_report.html")
        .render(
            report=report,
            as_of=_time(report.as_of, lang),
            issued_at=_time(report.issued_at, lang),
            records=records,
            lists=[
                _list_view(entry.list_type, entry.list_name, entry.entry_date, lang)
                for entry in report.lists
            ],
            pdf_sm3=state.pdf_sm3,
            anchoring=anchoring_name(state.anchoring, lang),
            anchored=state.anchoring == "anchored",
            block_number=state.block_number,
            verdict=verdict,
            checked_sm3=None if check is None else check.pdf_sm3,
            checked_at=_time(checked_at, lang),
            **_language(lang, switch_url),
        )
    )
