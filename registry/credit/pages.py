"""The public credit pages, server-rendered from package templates (``credit_*.html``,
``credit_pages.css`` inlined): the public search (信用公示), a subject's public profile, and a
credit report's genuine-check page (where the report's QR code leads). Chinese, nothing
loaded from outside; the only script is the report page's upload helper, served by the
package too. Every function takes what it shows, already looked up."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import jinja2

from registry.credit.queries import PublicProfile, PublicRecord, SearchHit
from registry.credit.reports import CHINA_TIME, GenuineCheck, ReportState

__all__ = [
    "TEMPLATES_DIR",
    "render_report_page",
    "render_search_page",
    "render_subject_page",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

KIND_NAMES = {
    "penalty": "行政处罚",
    "licensing": "行政许可",
    "list_entry": "名单",
    "commitment": "信用承诺",
}
LIST_NAMES = {"black": "严重失信主体名单", "red": "红名单"}
ANCHORING_NAMES = {
    None: "待出具部门签名",
    "accepted": "已签名，等待上链",
    "sealed": "已封批，等待上链",
    "anchored": "已上链存证",
}

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


def _time(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "长期"
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def _day(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "长期"
    return moment.astimezone(CHINA_TIME).date().isoformat()


def _record_rows(kind: str, fields: dict[str, str | None]) -> list[tuple[str, str]]:
    rows = []
    for label, name in _SUMMARY_FIELDS.get(kind, ()):
        value = fields.get(name)
        if value:
            rows.append((label, value))
    return rows


def _record_view(record: PublicRecord) -> dict[str, object]:
    return {
        "kind": KIND_NAMES.get(record.kind, record.kind),
        "decision_number": record.decision_number,
        "rows": _record_rows(record.kind, record.fields),
        "until": _day(record.display_end),
        "serious": record.severity == "serious",
    }


def render_search_page(text: str, hits: Sequence[SearchHit] | None, at: datetime.datetime) -> str:
    """The search page: the form, and the hits for ``text`` (None: nothing searched yet)."""
    return (
        _environment().get_template("credit_search.html").render(text=text, hits=hits, at=_time(at))
    )


def render_subject_page(profile: PublicProfile, code: str) -> str:
    """A subject's public profile at ``profile.at``: only what is on display, masked."""
    return (
        _environment()
        .get_template("credit_subject.html")
        .render(
            code=profile.subject_code or code,
            name=profile.subject_name,
            records=[_record_view(record) for record in profile.records],
            lists=[
                {
                    "name": LIST_NAMES.get(entry.list_type, entry.list_type),
                    "list_name": entry.list_name,
                    "entry_date": entry.entry_date.isoformat(),
                }
                for entry in profile.lists
            ],
            at=_time(profile.at),
        )
    )


def render_report_page(
    state: ReportState, check: GenuineCheck | None, checked_at: datetime.datetime
) -> str:
    """A report's genuine-check page: what the report stated as of its date, where its
    anchoring is, and — after a check — whether the checked file is this report unchanged."""
    report = state.report
    verdict = None
    if check is not None:
        verdict = "genuine" if check.genuine else "modified"
    records = [
        {
            "kind": KIND_NAMES.get(record.kind, record.kind),
            "decision_number": record.decision_number,
            "rows": _record_rows(record.kind, dict(record.fields)),
            "until": _day(record.display_end),
            "serious": record.severity == "serious",
        }
        for record in report.records
    ]
    return (
        _environment()
        .get_template("credit_report.html")
        .render(
            report=report,
            as_of=_time(report.as_of),
            issued_at=_time(report.issued_at),
            records=records,
            lists=[
                {
                    "name": LIST_NAMES.get(entry.list_type, entry.list_type),
                    "list_name": entry.list_name,
                    "entry_date": entry.entry_date.isoformat(),
                }
                for entry in report.lists
            ],
            pdf_sm3=state.pdf_sm3,
            anchoring=ANCHORING_NAMES.get(state.anchoring, state.anchoring),
            anchored=state.anchoring == "anchored",
            block_number=state.block_number,
            verdict=verdict,
            checked_sm3=None if check is None else check.pdf_sm3,
            checked_at=_time(checked_at),
        )
    )
