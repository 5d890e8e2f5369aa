"""What the public reads of credit: a subject's public profile and the public search, and
when either next shows otherwise (what a kept public page holds for). Every function takes
the database and the instant ``at`` (timezone-aware): nothing here reads a clock.

- :func:`public_profile`: a subject's records on public display at ``at`` (inside their
  window, not stopped, not withdrawn), masked (信用公示);
- :func:`search_public`: subjects with records on display, by name or code;
- :func:`profile_changes_after`, :func:`search_changes_after`: the next instant at which
  either shows otherwise, as long as no credit event changes the records
  (:func:`search_public_until`: a search's hits and that instant, in one statement).

Subjects are named by the code shown for them (an organisation's USCC), or — given the
registry's :class:`registry.credit.keys.CreditKeys` — by any identifier, a natural person's
identity number included (matched through its keyed hash, never stored).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from credit.subjects import SubjectCategory
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditListMembership, CreditRecordRow
from registry.credit.store import as_aware
from registry.db import Database

__all__ = [
    "MAX_SEARCH_RESULTS",
    "ListMembershipView",
    "PublicProfile",
    "PublicRecord",
    "SearchHit",
    "displayed_at",
    "list_memberships",
    "profile_changes_after",
    "public_profile",
    "public_record",
    "search_changes_after",
    "search_public",
    "search_public_until",
    "subject_filter",
]

MAX_SEARCH_RESULTS = 50
"""Most subjects :func:`search_public` returns."""

MIN_SEARCH_TEXT = 2
"""Shortest search text (one character would list half the registry)."""


@dataclass(frozen=True)
class PublicRecord:
    """A record as the public sees it."""

    id: str
    """The record's identity (hex)."""
    kind: str
    """penalty, licensing, list_entry or commitment."""
    version: int
    """Its current version."""
    authority_uscc: str
    """The deciding authority's USCC."""
    decision_number: str
    """The decision number."""
    fields: dict[str, str | None]
    """Every field, natural persons' names and identity numbers masked."""
    window_start: datetime.datetime
    """Shown from."""
    display_end: datetime.datetime | None
    """Shown until (exclusive); None: without end."""
    severity: str | None
    """ordinary or serious, for a penalty."""
    rule_set_hash: str | None
    """The rule set its window was computed under."""
    fields_root: str
    """Root of its per-field commitments."""


@dataclass(frozen=True)
class ListMembershipView:
    """A list entry of the subject."""

    record_id: str
    list_type: str
    list_name: str
    entry_date: datetime.date
    planned_exit_date: datetime.date | None
    exit_date: datetime.date | None
    exit_reason: str | None


@dataclass(frozen=True)
class PublicProfile:
    """A subject's public credit profile at ``at``."""

    subject_code: str | None
    """The subject's code as shown (masked for a natural person)."""
    subject_name: str | None
    """Its name as shown (masked for a natural person); None when nothing is on display."""
    at: datetime.datetime
    """The instant of the view."""
    records: tuple[PublicRecord, ...]
    """Records on display at ``at``, newest window first."""
    lists: tuple[ListMembershipView, ...]
    """List entries on display at ``at``."""


@dataclass(frozen=True)
class SearchHit:
    """A subject found by :func:`search_public`."""

    subject_code: str | None
    subject_name: str
    records_on_display: int


def subject_filter(subject: str, keys: CreditKeys | None) -> ColumnElement[bool]:
    """Rows of the subject named ``subject`` (see the module's text)."""
    if keys is not None:
        return CreditRecordRow.subject_key == keys.subject_key(subject)
    return CreditRecordRow.subject_code == subject.strip().upper()


def _utc(at: datetime.datetime) -> datetime.datetime:
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    return at.astimezone(datetime.UTC)


def displayed_at(at: datetime.datetime) -> ColumnElement[bool]:
    """Records on public display at ``at``: started, not ended, not stopped."""
    return _displayed(_utc(at))


def _displayed(moment: Any) -> ColumnElement[bool]:
    """Records on public display at ``moment`` (an instant, or a parameter standing for one)."""
    return and_(
        CreditRecordRow.window_start <= moment,
        or_(CreditRecordRow.display_end.is_(None), CreditRecordRow.display_end > moment),
    )


_MOMENT = bindparam("moment", type_=CreditRecordRow.window_start.type)
"""The instant of a public read, as a stored time is compared (see :func:`_moment`)."""

_SHOWN = _displayed(_MOMENT)
""":func:`displayed_at` at the parameter ``moment``."""

_PUBLIC_COLUMNS = (
    CreditRecordRow.id,
    CreditRecordRow.kind,
    CreditRecordRow.version,
    CreditRecordRow.authority_uscc,
    CreditRecordRow.decision_number,
    CreditRecordRow.public_json,
    CreditRecordRow.window_start,
    CreditRecordRow.display_end,
    CreditRecordRow.severity,
    CreditRecordRow.rule_set_hash,
    CreditRecordRow.fields_root,
    CreditRecordRow.subject_code,
    CreditRecordRow.subject_name,
)
"""What :class:`PublicRecord` shows of a record, and its subject's code and name (a whole
row also holds the authority's fields and the field hashes, kilobytes of JSON each, which
the public profile never shows)."""


def _profile_statement(subject: ColumnElement[bool]) -> Any:
    return (
        select(*_PUBLIC_COLUMNS)
        .where(subject, _SHOWN)
        .order_by(CreditRecordRow.window_start.desc(), CreditRecordRow.id)
    )


# Statements built once (a public page's read runs them; constructing one costs more CPU
# than running it), through a connection rather than an ORM session with its objects.
_PROFILE_BY_CODE = _profile_statement(CreditRecordRow.subject_code == bindparam("subject"))
_PROFILE_BY_KEY = _profile_statement(CreditRecordRow.subject_key == bindparam("subject"))
_LIST_ENTRIES = (
    select(
        CreditListMembership.record_id,
        CreditListMembership.list_type,
        CreditListMembership.list_name,
        CreditListMembership.entry_date,
        CreditListMembership.planned_exit_date,
        CreditListMembership.exit_date,
        CreditListMembership.exit_reason,
    )
    .where(CreditListMembership.record_id.in_(bindparam("record_ids", expanding=True)))
    .order_by(CreditListMembership.entry_date)
)


def list_memberships(
    reading: Session | Connection, record_ids: list[str]
) -> tuple[ListMembershipView, ...]:
    """The list memberships of the entries ``record_ids``, by entry date."""
    if not record_ids:
        return ()
    rows = reading.execute(_LIST_ENTRIES, {"record_ids": record_ids})
    return tuple(ListMembershipView(*row) for row in rows)


def _moment(at: datetime.datetime) -> dict[str, datetime.datetime]:
    return {"moment": _utc(at)}


def public_record(row: Any) -> PublicRecord:
    """A record as the public sees it, from its row (ORM or of ``_PUBLIC_COLUMNS``)."""
    end = row.display_end
    return PublicRecord(
        id=row.id,
        kind=row.kind,
        version=row.version,
        authority_uscc=row.authority_uscc,
        decision_number=row.decision_number,
        fields=dict(row.public_json),
        window_start=as_aware(row.window_start),
        display_end=None if end is None else as_aware(end),
        severity=row.severity,
        rule_set_hash=row.rule_set_hash,
        fields_root=row.fields_root,
    )


def public_profile(
    db: Database, subject: str, at: datetime.datetime, *, keys: CreditKeys | None = None
) -> PublicProfile:
    """The public profile of ``subject`` at ``at``: only records inside their window and
    not stopped (repair, withdrawal, list exit), every field masked as the rules require.
    Read in one read transaction, on a connection."""
    if keys is not None:
        statement, name = _PROFILE_BY_KEY, keys.subject_key(subject)
    else:
        statement, name = _PROFILE_BY_CODE, subject.strip().upper()
    with db.read_connection() as connection:
        rows = connection.execute(statement, {"subject": name, **_moment(at)}).all()
        lists = list_memberships(connection, [row.id for row in rows if row.kind == "list_entry"])
    first = rows[0] if rows else None
    return PublicProfile(
        subject_code=None if first is None else first.subject_code,
        subject_name=None if first is None else first.subject_name,
        at=at,
        records=tuple(public_record(row) for row in rows),
        lists=lists,
    )


_NAMES = aliased(CreditRecordRow, name="names")
"""The record table once more, for the names a search matches. Built once: an alias copies
every column of the table (about 250 objects in reference cycles), which cost 2 ms of CPU
per search query when built per query, and as much again when the garbage collector freed
them."""
_NAME_COLUMN = _NAMES.subject_name


_SEARCHED = and_(
    or_(
        CreditRecordRow.subject_name.in_(
            select(_NAME_COLUMN).where(_NAME_COLUMN.like(bindparam("pattern"), escape="\\"))
        ),
        CreditRecordRow.subject_code == bindparam("code"),
    ),
    CreditRecordRow.subject_category != SubjectCategory.NATURAL_PERSON.value,
)
"""Records :func:`search_public` finds (displayed or not), given the parameters of
:func:`_search_parameters`. The names that match are read from the name index alone: a row
holds its fields as JSON (kilobytes), so a scan of the table itself reads every row's pages,
where the index holds the names only; the matching rows are then found through the same
index."""


def _search_parameters(needle: str) -> dict[str, str]:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"pattern": f"%{escaped}%", "code": needle.upper()}


_NEXT_START = func.min(case((CreditRecordRow.window_start > _MOMENT, CreditRecordRow.window_start)))
"""The first instant after ``moment`` at which a record starts its public display."""
_NEXT_END = func.min(case((CreditRecordRow.display_end > _MOMENT, CreditRecordRow.display_end)))
"""The first instant after ``moment`` at which a record ends its public display."""

_PROFILE_CHANGES = select(_NEXT_START, _NEXT_END).where(
    CreditRecordRow.subject_code == bindparam("subject")
)
_SHOWN_COUNT = func.count(case((_SHOWN, CreditRecordRow.id)))
_SEARCH = (
    select(
        CreditRecordRow.subject_code,
        CreditRecordRow.subject_name,
        _SHOWN_COUNT,
        func.min(_NEXT_START).over(),
        func.min(_NEXT_END).over(),
    )
    .where(_SEARCHED)
    .group_by(CreditRecordRow.subject_code, CreditRecordRow.subject_name)
    .order_by(_SHOWN_COUNT.desc(), CreditRecordRow.subject_name)
    .limit(bindparam("limit", type_=Integer))
)
"""A search's subjects (code and name) with their records on display at ``moment``, most
first, and on each row the next instants at which any record the search finds — of every
subject, not only those within the limit — starts and ends its display (window functions
over every group, computed before the limit). A subject with none on display is sorted
last and not a hit. One statement reads the matching names from the name index once where
the hits and their next change were two statements reading it twice (the most CPU of a
search page read: the index holds every record's name)."""


def _first(*instants: datetime.datetime | None) -> datetime.datetime | None:
    """The earliest of ``instants`` (as stored) that are not None, timezone-aware."""
    found = [as_aware(value) for value in instants if value is not None]
    return min(found, default=None)


def profile_changes_after(
    db: Database, subject: str, at: datetime.datetime
) -> datetime.datetime | None:
    """When :func:`public_profile` of ``subject`` (its code) next shows other records than
    at ``at``, as long as no credit event changes them
    (:func:`registry.credit.credit_version.credit_version`); None: never."""
    parameters = {"subject": subject.strip().upper(), **_moment(at)}
    with db.read_connection() as connection:
        starts, ends = connection.execute(_PROFILE_CHANGES, parameters).one()
    return _first(starts, ends)


def search_public_until(
    db: Database, text: str, at: datetime.datetime, *, limit: int = MAX_SEARCH_RESULTS
) -> tuple[list[SearchHit], datetime.datetime | None]:
    """:func:`search_public` of ``text`` at ``at`` and :func:`search_changes_after`, read
    by one statement (one snapshot): the hits, and until when they hold."""
    needle = text.strip()
    if len(needle) < MIN_SEARCH_TEXT:
        return [], None
    parameters = {
        **_search_parameters(needle),
        **_moment(at),
        "limit": max(1, min(limit, MAX_SEARCH_RESULTS)),
    }
    with db.read_connection() as connection:
        rows = connection.execute(_SEARCH, parameters).all()
    hits = [
        SearchHit(subject_code=code, subject_name=name, records_on_display=int(number))
        for code, name, number, _starts, _ends in rows
        if number
    ]
    return hits, (_first(rows[0][3], rows[0][4]) if rows else None)


def search_changes_after(
    db: Database, text: str, at: datetime.datetime
) -> datetime.datetime | None:
    """When :func:`search_public` of ``text`` next finds otherwise than at ``at``, as long
    as no credit event changes the records
    (:func:`registry.credit.credit_version.credit_version`); None: never."""
    return search_public_until(db, text, at)[1]


def search_public(
    db: Database, text: str, at: datetime.datetime, *, limit: int = MAX_SEARCH_RESULTS
) -> list[SearchHit]:
    """Subjects with records on display at ``at`` whose name contains ``text`` or whose
    code is ``text`` (case and surrounding spaces ignored), most records first, at most
    ``limit``. Natural persons are found by neither (their names and numbers are shown
    masked, never searched). Text shorter than two characters finds nothing."""
    return search_public_until(db, text, at, limit=limit)[0]
