"""The authority's profile of a subject: everything on file, displayed or not, with every
version, every lifecycle event and its way to the chain, repair applications and the log of
checks (authorised readers, and the subject itself). Display at an instant is as
:mod:`registry.credit.public_reads` reads it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.credit.keys import CreditKeys
from registry.credit.models import (
    CreditCheckLog,
    CreditEventRow,
    CreditRecordRow,
    CreditRecordVersion,
    CreditRepairApplication,
)
from registry.credit.public_reads import (
    ListMembershipView,
    PublicRecord,
    displayed_at,
    list_memberships,
    public_record,
    subject_filter,
)
from registry.credit.store import as_aware
from registry.db import Database
from registry.models import Record

__all__ = [
    "AuthorityProfile",
    "AuthorityRecord",
    "CheckSeen",
    "EventView",
    "RepairView",
    "VersionView",
    "authority_profile",
    "repair_view",
]


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
        lists = list_memberships(session, [row.id for row in rows if row.kind == "list_entry"])
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
                current=public_record(row),
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
