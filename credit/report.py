"""Credit reports (信用报告): what a report states about a subject at a point in time, built
from the subject's public profile — records inside their publication window, masked as the
public sees them. The first kind is the 专项信用报告 that stands in for the paper "no
violation" certificates (无违法违规记录证明): it states, as of its date, which penalties,
list entries, credit commitments and licensing decisions of the subject were on public
display, and says in one sentence whether any penalty or black-list entry was.

Pure: the caller gives the records, the report's id, its instants and the issuer; nothing
here reads a clock or a database. :func:`report_payload` is the report as JSON (one canonical
form, :func:`report_content_hash`), :func:`report_from_payload` reads it back.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.crypto import sm3
from chain.primitives import Hash32
from credit.errors import CreditError
from sdk.canonical import canonical_json

__all__ = [
    "REPORT_SCHEMA",
    "CreditReport",
    "ReportError",
    "ReportKind",
    "ReportedList",
    "ReportedRecord",
    "build_report",
    "conclusion",
    "report_content_hash",
    "report_from_payload",
    "report_payload",
]

REPORT_SCHEMA = "lianxin.credit.report/v1"
"""The ``schema`` member of a report's JSON."""

CONTENT_HASH_PREFIX = b"lianxin.credit.report.content/v1\x00"
"""Domain separation of a report's content hash."""

MAX_REPORTED_RECORDS = 2_000
"""Most records one report lists (a subject with more gets a report per period)."""

PENALTY = "penalty"
LICENSING = "licensing"
LIST_ENTRY = "list_entry"
COMMITMENT = "commitment"
BLACK_LIST = "black"
RED_LIST = "red"


class ReportError(CreditError):
    """A report could not be built or read back."""


class ReportKind(enum.StrEnum):
    """What a report is for."""

    SPECIAL = "special"
    """专项信用报告 (无违法违规记录版): stands in for a "no violation" certificate."""


REPORT_TITLES = {ReportKind.SPECIAL: "专项信用报告（无违法违规记录版）"}
"""Titles shown on the report."""


@dataclass(frozen=True)
class ReportedRecord:
    """A record as the report states it: the public (masked) view at the report's date."""

    record_id: str
    """The record's identity (hex)."""
    kind: str
    """penalty, licensing, list_entry or commitment."""
    version: int
    """The version on display."""
    authority_uscc: str
    decision_number: str
    fields: Mapping[str, str | None]
    """Every public field, masked as displayed."""
    window_start: datetime.datetime
    display_end: datetime.datetime | None
    """End of its publication (exclusive); None: without end."""
    severity: str | None
    fields_root: str
    """Root of its per-field commitments: what its anchored events prove."""


@dataclass(frozen=True)
class ReportedList:
    """A red- or black-list entry of the subject on display at the report's date."""

    record_id: str
    list_type: str
    """black or red."""
    list_name: str
    entry_date: datetime.date
    planned_exit_date: datetime.date | None


@dataclass(frozen=True)
class CreditReport:
    """A credit report's content."""

    report_id: str
    kind: ReportKind
    subject_code: str
    """The subject's code as shown (a natural person's masked)."""
    subject_name: str
    """The subject's name as shown (a natural person's masked)."""
    as_of: datetime.datetime
    """The instant the report speaks of (timezone-aware)."""
    issued_at: datetime.datetime
    """When it was issued (timezone-aware)."""
    issuer_name: str
    issuer_uscc: str
    purpose: str
    """What the subject asked it for (e.g. 招投标), as given; may be empty."""
    records: tuple[ReportedRecord, ...]
    """Records on display at ``as_of``, as the public profile orders them."""
    lists: tuple[ReportedList, ...]
    conclusion: str
    """The report's finding in one sentence."""

    @property
    def title(self) -> str:
        """The title shown on the report."""
        return REPORT_TITLES[self.kind]

    def records_of(self, kind: str) -> tuple[ReportedRecord, ...]:
        """The reported records of one kind."""
        return tuple(record for record in self.records if record.kind == kind)


def _aware(moment: datetime.datetime, what: str) -> datetime.datetime:
    if moment.tzinfo is None:
        raise ReportError(f"{what} must be timezone-aware")
    return moment


def _day(moment: datetime.datetime) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"


def conclusion(
    as_of: datetime.datetime, records: Sequence[ReportedRecord], lists: Sequence[ReportedList]
) -> str:
    """The report's finding: whether any penalty or black-list entry of the subject was on
    public display at ``as_of`` (the date as the report's own time zone writes it)."""
    penalties = sum(1 for record in records if record.kind == PENALTY)
    black = sum(1 for entry in lists if entry.list_type == BLACK_LIST)
    date = _day(as_of)
    if not penalties and not black:
        return (
            f"截至{date}，经查询公共信用信息，未发现该主体处于公示期内的行政处罚记录，"
            "该主体未被列入严重失信主体名单。"
        )
    found = []
    if penalties:
        found.append(f"行政处罚记录{penalties}条")
    if black:
        found.append(f"严重失信主体名单记录{black}条")
    return f"截至{date}，经查询公共信用信息，发现该主体处于公示期内的{'、'.join(found)}，详见下文。"


def build_report(
    *,
    report_id: str,
    kind: ReportKind,
    subject_code: str,
    subject_name: str,
    as_of: datetime.datetime,
    issued_at: datetime.datetime,
    issuer_name: str,
    issuer_uscc: str,
    purpose: str,
    records: Sequence[ReportedRecord],
    lists: Sequence[ReportedList],
) -> CreditReport:
    """The report of ``subject`` at ``as_of`` from its public profile at that instant
    (``records`` and ``lists`` as :mod:`registry.credit.public_reads` gives them: only what is on
    display, masked). Raises :class:`ReportError` for naive instants, a report issued
    before the instant it speaks of, or more than :data:`MAX_REPORTED_RECORDS` records."""
    _aware(as_of, "as_of")
    _aware(issued_at, "issued_at")
    if issued_at < as_of:
        raise ReportError("a report cannot speak of an instant after it was issued")
    if len(records) > MAX_REPORTED_RECORDS:
        raise ReportError(f"more than {MAX_REPORTED_RECORDS} records for one report")
    for record in records:
        end = record.display_end
        if record.window_start > as_of or (end is not None and end <= as_of):
            raise ReportError(f"record {record.record_id} is not on display at {as_of}")
    return CreditReport(
        report_id=report_id,
        kind=kind,
        subject_code=subject_code,
        subject_name=subject_name,
        as_of=as_of,
        issued_at=issued_at,
        issuer_name=issuer_name,
        issuer_uscc=issuer_uscc,
        purpose=purpose,
        records=tuple(records),
        lists=tuple(lists),
        conclusion=conclusion(as_of, records, lists),
    )


def _time(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _date(day: datetime.date | None) -> str | None:
    return None if day is None else day.isoformat()


def report_payload(report: CreditReport) -> dict[str, Any]:
    """The report as JSON (strings, numbers, lists and objects only)."""
    return {
        "schema": REPORT_SCHEMA,
        "report_id": report.report_id,
        "kind": report.kind.value,
        "title": report.title,
        "subject": {"code": report.subject_code, "name": report.subject_name},
        "as_of": report.as_of.isoformat(),
        "issued_at": report.issued_at.isoformat(),
        "issuer": {"name": report.issuer_name, "uscc": report.issuer_uscc},
        "purpose": report.purpose,
        "conclusion": report.conclusion,
        "records": [
            {
                "record_id": record.record_id,
                "kind": record.kind,
                "version": record.version,
                "authority_uscc": record.authority_uscc,
                "decision_number": record.decision_number,
                "fields": dict(record.fields),
                "window_start": record.window_start.isoformat(),
                "display_end": _time(record.display_end),
                "severity": record.severity,
                "fields_root": record.fields_root,
            }
            for record in report.records
        ],
        "lists": [
            {
                "record_id": entry.record_id,
                "list_type": entry.list_type,
                "list_name": entry.list_name,
                "entry_date": entry.entry_date.isoformat(),
                "planned_exit_date": _date(entry.planned_exit_date),
            }
            for entry in report.lists
        ],
    }


def report_content_hash(report: CreditReport) -> Hash32:
    """SM3 of the report's canonical JSON (RFC 8785): equal for equal content."""
    return Hash32(sm3(CONTENT_HASH_PREFIX + canonical_json(report_payload(report))))


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ReportError(f"{what} must be text")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _instant(value: Any, what: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(_text(value, what))
    except ValueError:
        raise ReportError(f"{what} is not an ISO 8601 instant") from None
    return _aware(moment, what)


def _optional_instant(value: Any, what: str) -> datetime.datetime | None:
    return None if value is None else _instant(value, what)


def _day_of(value: Any, what: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(_text(value, what))
    except ValueError:
        raise ReportError(f"{what} is not an ISO 8601 date") from None


def _fields(value: Any) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise ReportError("a record's fields must be an object")
    return {_text(k, "a field name"): _optional_text(v, f"field {k}") for k, v in value.items()}


def report_from_payload(payload: Mapping[str, Any]) -> CreditReport:
    """Read back a report written by :func:`report_payload` (parsed, bounded JSON);
    raises :class:`ReportError` for anything else. The conclusion is recomputed and must
    match the one written."""
    try:
        if payload.get("schema") != REPORT_SCHEMA:
            raise ReportError(f"not a {REPORT_SCHEMA} report")
        records = payload["records"]
        lists = payload["lists"]
        if not isinstance(records, list) or not isinstance(lists, list):
            raise ReportError("records and lists must be arrays")
        report = build_report(
            report_id=_text(payload["report_id"], "report_id"),
            kind=ReportKind(payload["kind"]),
            subject_code=_text(payload["subject"]["code"], "subject code"),
            subject_name=_text(payload["subject"]["name"], "subject name"),
            as_of=_instant(payload["as_of"], "as_of"),
            issued_at=_instant(payload["issued_at"], "issued_at"),
            issuer_name=_text(payload["issuer"]["name"], "issuer name"),
            issuer_uscc=_text(payload["issuer"]["uscc"], "issuer uscc"),
            purpose=_text(payload["purpose"], "purpose"),
            records=[
                ReportedRecord(
                    record_id=_text(item["record_id"], "record_id"),
                    kind=_text(item["kind"], "kind"),
                    version=int(item["version"]),
                    authority_uscc=_text(item["authority_uscc"], "authority_uscc"),
                    decision_number=_text(item["decision_number"], "decision_number"),
                    fields=_fields(item["fields"]),
                    window_start=_instant(item["window_start"], "window_start"),
                    display_end=_optional_instant(item["display_end"], "display_end"),
                    severity=_optional_text(item["severity"], "severity"),
                    fields_root=_text(item["fields_root"], "fields_root"),
                )
                for item in records
            ],
            lists=[
                ReportedList(
                    record_id=_text(item["record_id"], "record_id"),
                    list_type=_text(item["list_type"], "list_type"),
                    list_name=_text(item["list_name"], "list_name"),
                    entry_date=_day_of(item["entry_date"], "entry_date"),
                    planned_exit_date=(
                        None
                        if item["planned_exit_date"] is None
                        else _day_of(item["planned_exit_date"], "planned_exit_date")
                    ),
                )
                for item in lists
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"malformed report: {exc!r}") from None
    if report.conclusion != payload.get("conclusion"):
        raise ReportError("the report's conclusion does not follow from its records")
    return report
