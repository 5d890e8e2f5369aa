"""Read-only queries of public credit: what the public page, the credit reports and the
API show. Every function takes the database and, where display depends on time, the
instant ``at`` (timezone-aware): nothing here reads a clock.

- :func:`public_profile`: a subject's records on public display at ``at`` (inside their
  window, not stopped, not withdrawn), masked (信用公示);
- :func:`authority_profile`: everything on file about a subject, displayed or not, with
  every version, every lifecycle event and its way to the chain, repair applications and
  the log of checks (authorised readers, and the subject itself);
- :func:`search_public`: subjects with records on display, by name or code.

Subjects are named by the code shown for them (an organisation's USCC), or — given the
registry's :class:`registry.credit.keys.CreditKeys` — by any identifier, a natural person's
identity number included (matched through its keyed hash, never stored).
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from credit.subjects import SubjectCategory
from registry.credit.keys import CreditKeys
from registry.credit.models import (
    CreditCheckLog,
    CreditEventRow,
    CreditListMembership,
    CreditRecordRow,
    CreditRecordVersion,
    CreditRepairApplication,
)
from registry.credit.store import as_aware
from registry.db import Database
from registry.models import Record

__all__ = [
    "MAX_SEARCH_RESULTS",
    "AuthorityProfile",
    "AuthorityRecord",
    "CheckSeen",
    "EventView",
    "ListMembershipView",
    "PublicProfile",
    "PublicRecord",
    "RepairView",
    "SearchHit",
    "VersionView",
    "WaitlessVersionReader",
    "authority_profile",
    "credit_version",
    "displayed_at",
    "profile_changes_after",
    "public_profile",
    "search_changes_after",
    "search_public",
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
class VersionView:
    """One version of a record."""

    version: int
    content_hash: str
    fields: dict[str, str | None]
    """Fields for authorised readers (identity numbers masked: never stored in clear)."""
    field_hashes: dict[str, str]
    fields_root: str
    created_at: datetime.datetime


@dataclass(frozen=True)
class EventView:
    """One lifecycle event and where it is on its way to the chain."""

    id: str
    kind: str
    version: int | None
    at: datetime.datetime
    changed_fields: tuple[str, ...]
    reason: str
    state: str
    """awaiting_signature, or signed (handed to the anchoring pipeline)."""
    commitment: str
    """What the department signs."""
    notary_record_id: str | None
    """The notarized record carrying it, once signed."""
    anchoring: str | None
    """That record's status: accepted, sealed or anchored."""


@dataclass(frozen=True)
class RepairView:
    """A repair application, as the subject and the authority see it."""

    id: str
    record_id: str
    state: str
    applied_at: datetime.datetime
    deadline: datetime.datetime
    overdue: bool
    """Undecided past its deadline at the instant of the view."""
    obligations_fulfilled: bool
    evidence_hash: str
    decided_at: datetime.datetime | None
    decision_reason: str | None


@dataclass(frozen=True)
class CheckSeen:
    """One ``check`` of the subject: who, when, for what, and the answer."""

    checker_uscc: str
    checker_name: str
    activity: str
    on_date: datetime.date
    decision: str
    at: datetime.datetime


@dataclass(frozen=True)
class AuthorityRecord:
    """A record with everything on file."""

    current: PublicRecord
    """The current version, as it would be shown."""
    displayed: bool
    """Whether it is on public display at the instant of the view."""
    minimum_end: datetime.datetime | None
    maximum_end: datetime.datetime | None
    stopped_at: datetime.datetime | None
    withdrawn: bool
    commitment_status: str | None
    versions: tuple[VersionView, ...]
    """Every version, oldest first."""
    events: tuple[EventView, ...]
    """Every event, in order."""


@dataclass(frozen=True)
class AuthorityProfile:
    """Everything on file about a subject."""

    subject_code: str | None
    subject_name: str | None
    at: datetime.datetime
    records: tuple[AuthorityRecord, ...]
    lists: tuple[ListMembershipView, ...]
    repairs: tuple[RepairView, ...]
    checks: tuple[CheckSeen, ...]
    """Who checked the subject, newest first."""


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


def _lists(reading: Session | Connection, record_ids: list[str]) -> tuple[ListMembershipView, ...]:
    """The list memberships of the entries ``record_ids``, by entry date."""
    if not record_ids:
        return ()
    rows = reading.execute(_LIST_ENTRIES, {"record_ids": record_ids})
    return tuple(ListMembershipView(*row) for row in rows)


def _moment(at: datetime.datetime) -> dict[str, datetime.datetime]:
    return {"moment": _utc(at)}


def _public(row: Any) -> PublicRecord:
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
        lists = _lists(connection, [row.id for row in rows if row.kind == "list_entry"])
    first = rows[0] if rows else None
    return PublicProfile(
        subject_code=None if first is None else first.subject_code,
        subject_name=None if first is None else first.subject_name,
        at=at,
        records=tuple(_public(row) for row in rows),
        lists=lists,
    )


def _events(session: Session, record_ids: list[str]) -> dict[str, list[EventView]]:
    found: dict[str, list[EventView]] = {}
    if not record_ids:
        return found
    rows = session.execute(
        select(CreditEventRow, Record.status)
        .outerjoin(Record, Record.id == CreditEventRow.notary_record_id)
        .where(CreditEventRow.record_id.in_(record_ids))
        .order_by(CreditEventRow.seq)
    ).all()
    for event, status in rows:
        assert event.record_id is not None
        found.setdefault(event.record_id, []).append(
            EventView(
                id=event.id,
                kind=event.kind,
                version=event.version,
                at=as_aware(event.at),
                changed_fields=tuple(event.changed_fields),
                reason=event.reason,
                state=event.state,
                commitment=event.commitment,
                notary_record_id=event.notary_record_id,
                anchoring=status,
            )
        )
    return found


def _versions(
    session: Session, records: dict[str, CreditRecordRow]
) -> dict[str, list[VersionView]]:
    """Every version of ``records`` (by id); a current version's fields are its record's
    (stored once: a version's row keeps them from when it is superseded)."""
    found: dict[str, list[VersionView]] = {}
    if not records:
        return found
    for row in session.scalars(
        select(CreditRecordVersion)
        .where(CreditRecordVersion.record_id.in_(list(records)))
        .order_by(CreditRecordVersion.record_id, CreditRecordVersion.version)
    ):
        record = records[row.record_id]
        fields = row.authority_json if row.authority_json is not None else record.authority_json
        hashes = row.field_hashes if row.field_hashes is not None else record.field_hashes
        found.setdefault(row.record_id, []).append(
            VersionView(
                version=row.version,
                content_hash=row.content_hash,
                fields=dict(fields),
                field_hashes=dict(hashes),
                fields_root=row.fields_root,
                created_at=as_aware(row.created_at),
            )
        )
    return found


def repair_view(row: CreditRepairApplication, at: datetime.datetime) -> RepairView:
    """A repair application as shown at ``at``."""
    deadline = as_aware(row.deadline)
    return RepairView(
        id=row.id,
        record_id=row.record_id,
        state=row.state,
        applied_at=as_aware(row.applied_at),
        deadline=deadline,
        overdue=row.state == "pending" and at >= deadline,
        obligations_fulfilled=row.obligations_fulfilled,
        evidence_hash=row.evidence_hash,
        decided_at=None if row.decided_at is None else as_aware(row.decided_at),
        decision_reason=row.decision_reason,
    )


def authority_profile(
    db: Database,
    subject: str,
    *,
    at: datetime.datetime | None = None,
    keys: CreditKeys | None = None,
) -> AuthorityProfile:
    """Everything on file about ``subject``: every record whether displayed or not (at
    ``at``, or now if omitted: only the ``displayed`` flags and overdue repairs depend on
    it), each with every version and event; its list entries, repair applications and the
    checks made of it."""
    moment = at if at is not None else datetime.datetime.now(datetime.UTC)
    with db.read_session() as session:
        rows = list(
            session.scalars(
                select(CreditRecordRow)
                .where(subject_filter(subject, keys))
                .order_by(CreditRecordRow.window_start.desc(), CreditRecordRow.id)
            )
        )
        ids = [row.id for row in rows]
        shown = set(
            session.scalars(
                select(CreditRecordRow.id).where(CreditRecordRow.id.in_(ids), displayed_at(moment))
            )
        )
        events = _events(session, ids)
        versions = _versions(session, {row.id: row for row in rows})
        lists = _lists(session, [row.id for row in rows if row.kind == "list_entry"])
        subject_keys = {row.subject_key for row in rows}
        repairs = (
            session.scalars(
                select(CreditRepairApplication)
                .where(CreditRepairApplication.subject_key.in_(subject_keys))
                .order_by(CreditRepairApplication.applied_at)
            ).all()
            if subject_keys
            else []
        )
        checks = (
            session.scalars(
                select(CreditCheckLog)
                .where(CreditCheckLog.subject_key.in_(subject_keys))
                .order_by(CreditCheckLog.id.desc())
            ).all()
            if subject_keys
            else []
        )
    first = rows[0] if rows else None
    return AuthorityProfile(
        subject_code=None if first is None else first.subject_code,
        subject_name=None if first is None else first.subject_name,
        at=moment,
        records=tuple(
            AuthorityRecord(
                current=_public(row),
                displayed=row.id in shown,
                minimum_end=None if row.minimum_end is None else as_aware(row.minimum_end),
                maximum_end=None if row.maximum_end is None else as_aware(row.maximum_end),
                stopped_at=None if row.stopped_at is None else as_aware(row.stopped_at),
                withdrawn=row.withdrawn,
                commitment_status=row.commitment_status,
                versions=tuple(versions.get(row.id, [])),
                events=tuple(events.get(row.id, [])),
            )
            for row in rows
        ),
        lists=lists,
        repairs=tuple(repair_view(row, moment) for row in repairs),
        checks=tuple(
            CheckSeen(
                checker_uscc=row.checker_uscc,
                checker_name=row.checker_name,
                activity=row.activity,
                on_date=row.on_date,
                decision=row.decision,
                at=as_aware(row.at),
            )
            for row in checks
        ),
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


_CREDIT_VERSION = select(func.max(CreditEventRow.seq))
"""The last credit event's number (:func:`credit_version`)."""


_CREDIT_VERSION_SQL: dict[tuple[str, str], str] = {}
"""(dialect, driver) → :data:`_CREDIT_VERSION` compiled for it, as it is first needed."""


def credit_version(db: Database) -> int:
    """A number that grows with every change of public credit: the last credit event's
    sequence number (every stored, corrected, stopped, withdrawn or repaired record makes an
    event in the transaction that changes it). 0 before any.

    Read for every public page served, so as SQL text compiled once, on a pooled driver
    connection: one SELECT is its own snapshot, and SQLAlchemy's execution around it (the
    read transaction's BEGIN and its events, the result object) took 0.07 ms of CPU, the
    driver's cursor 0.01 (an ORM session took 0.26)."""
    engine = db.engine
    dialect = engine.dialect
    key = (dialect.name, dialect.driver)
    sql = _CREDIT_VERSION_SQL.get(key)
    if sql is None:
        sql = _CREDIT_VERSION_SQL[key] = str(_CREDIT_VERSION.compile(dialect=dialect))
    # The pool rolls back whatever the SELECT began when the connection goes back to it.
    pooled = engine.raw_connection()
    try:
        cursor = pooled.cursor()
        try:
            cursor.execute(sql)
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        pooled.close()
    return int(row[0] or 0) if row is not None else 0


class WaitlessVersionReader:
    """The credit version of an SQLite database (:func:`credit_version`) read where nothing
    may wait, such as a server's event loop: through a connection of the calling thread's
    own, opened once, that only reads and never waits for a lock (no busy timeout), and
    outside any pool (a pool can make its caller wait for a connection). A read that cannot
    be made at once (the database busy, or anything else failing) answers None, and the
    caller reads the version as usual, on a thread that may wait."""

    def __init__(self, db: Database) -> None:
        """Read the database of ``db`` (an SQLite file; for anything else every read
        answers None)."""
        url = db.engine.url
        database = url.database
        self._path = (
            database
            if url.get_backend_name() == "sqlite" and database and database != ":memory:"
            else None
        )
        self._sql = str(_CREDIT_VERSION.compile(dialect=db.engine.dialect))
        self._local = threading.local()

    def read(self) -> int | None:
        """The credit version now (one SELECT, its own snapshot: stepped to its end, so
        that no read transaction stays open), or None: not read."""
        if self._path is None:
            return None
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        try:
            if connection is None:
                connection = sqlite3.connect(self._path, timeout=0, isolation_level=None)
                self._local.connection = connection
                connection.execute("PRAGMA query_only=1")
            rows = connection.execute(self._sql).fetchall()
        except sqlite3.Error:
            self.close()
            return None
        return int(rows[0][0] or 0) if rows else 0

    def close(self) -> None:
        """Close the calling thread's connection, if open (the next read opens another)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def read_credit_version(connection: Connection) -> int:
    """:func:`credit_version` in the transaction of ``connection`` (with what else it reads
    there, one snapshot)."""
    return int(connection.execute(_CREDIT_VERSION).scalar() or 0)


def _next_change_statement(condition: ColumnElement[bool]) -> Any:
    """The first instants after ``moment`` at which a record of ``condition`` starts, and
    ends, its public display."""
    return select(
        func.min(case((CreditRecordRow.window_start > _MOMENT, CreditRecordRow.window_start))),
        func.min(case((CreditRecordRow.display_end > _MOMENT, CreditRecordRow.display_end))),
    ).where(condition)


_PROFILE_CHANGES = _next_change_statement(CreditRecordRow.subject_code == bindparam("subject"))
_SEARCH_CHANGES = _next_change_statement(_SEARCHED)
_SEARCH_HITS_COUNT = func.count(CreditRecordRow.id)
_SEARCH_HITS = (
    select(CreditRecordRow.subject_code, CreditRecordRow.subject_name, _SEARCH_HITS_COUNT)
    .where(_SEARCHED, _SHOWN)
    .group_by(CreditRecordRow.subject_code, CreditRecordRow.subject_name)
    .order_by(_SEARCH_HITS_COUNT.desc(), CreditRecordRow.subject_name)
    .limit(bindparam("limit", type_=Integer))
)


def _next_change(
    db: Database, statement: Any, parameters: dict[str, Any], at: datetime.datetime
) -> datetime.datetime | None:
    """The first instant after ``at`` at which a record enters or leaves public display
    (None: none does), the records as stored now: ``statement`` (of
    :func:`_next_change_statement`) with ``parameters``."""
    with db.read_connection() as connection:
        starts, ends = connection.execute(statement, {**parameters, **_moment(at)}).one()
    found: list[datetime.datetime] = [as_aware(value) for value in (starts, ends) if value]
    return min(found, default=None)


def profile_changes_after(
    db: Database, subject: str, at: datetime.datetime
) -> datetime.datetime | None:
    """When :func:`public_profile` of ``subject`` (its code) next shows other records than
    at ``at``, as long as no credit event changes them (:func:`credit_version`); None:
    never."""
    return _next_change(db, _PROFILE_CHANGES, {"subject": subject.strip().upper()}, at)


def search_changes_after(
    db: Database, text: str, at: datetime.datetime
) -> datetime.datetime | None:
    """When :func:`search_public` of ``text`` next finds otherwise than at ``at``, as long
    as no credit event changes the records (:func:`credit_version`); None: never."""
    needle = text.strip()
    if len(needle) < MIN_SEARCH_TEXT:
        return None
    return _next_change(db, _SEARCH_CHANGES, _search_parameters(needle), at)


def search_public(
    db: Database, text: str, at: datetime.datetime, *, limit: int = MAX_SEARCH_RESULTS
) -> list[SearchHit]:
    """Subjects with records on display at ``at`` whose name contains ``text`` or whose
    code is ``text`` (case and surrounding spaces ignored), most records first, at most
    ``limit``. Natural persons are found by neither (their names and numbers are shown
    masked, never searched). Text shorter than two characters finds nothing."""
    needle = text.strip()
    if len(needle) < MIN_SEARCH_TEXT:
        return []
    parameters = {
        **_search_parameters(needle),
        **_moment(at),
        "limit": max(1, min(limit, MAX_SEARCH_RESULTS)),
    }
    with db.read_connection() as connection:
        return [
            SearchHit(subject_code=code, subject_name=name, records_on_display=int(number))
            for code, name, number in connection.execute(_SEARCH_HITS, parameters)
        ]
