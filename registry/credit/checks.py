"""``check(subject, activity, date)`` served (联合奖惩): the subject's list entries from
the database, the measures catalogue (:func:`credit.joint.bundled_catalogue`, versioned
data) and the domain's :func:`credit.joint.check` give allowed / restricted / favoured with
every reason; each call is logged (who checked whom, for what, when, and the answer), so
the subject can see it in its profile. Bundles of the reasons are attached by the caller
(:func:`registry.credit.proofs.record_bundles`)."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from credit.joint import Catalogue, SubjectState, bundled_catalogue, check
from credit.records import ListEntry, ListExit, ListType, NaturalKey, RecordKind, record_id
from credit.subjects import Subject, SubjectCategory
from registry.credit.check_log import SUBJECT_FIELD
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditListMembership, CreditRecordRow
from registry.credit.store import as_aware
from registry.db import READ_ONLY_OPTION, Database
from registry.errors import InvalidInput
from registry.models import Client

__all__ = [
    "CHECK_ROLES",
    "MAX_ACTIVITY",
    "CheckAnswer",
    "CheckReason",
    "catalogue",
    "check_subject",
]

CHECK_ROLES = ("credit", "credit_office", "verify")
"""Client roles that may call ``check`` (an approving department verifies)."""

MAX_ACTIVITY = 100
"""Longest activity name."""


@functools.cache
def catalogue() -> Catalogue:
    """The measures catalogue in force (the one shipped with :mod:`credit`)."""
    return bundled_catalogue()


@dataclass(frozen=True)
class CheckReason:
    """One measure that applies, the list entry that triggers it, the records behind it."""

    measure_id: str
    measure_name: str
    effect: str
    """restricted or favoured."""
    basis: str
    """The measure's legal basis."""
    entry_record_id: str
    """The list entry's record (its bundle proves it)."""
    list_type: str
    list_name: str
    entry_date: datetime.date
    authority_uscc: str
    decision_number: str
    basis_record_ids: tuple[str, ...]
    """The records the entry rests on that are on file."""


@dataclass(frozen=True)
class CheckAnswer:
    """The answer of ``check``."""

    decision: str
    """allowed, restricted or favoured."""
    activity: str
    on: datetime.date
    reasons: tuple[CheckReason, ...]
    catalogue_id: str
    catalogue_version: int
    catalogue_hash: str
    checked_at: datetime.datetime


_PLACEHOLDER_SUBJECT = Subject(
    SubjectCategory.ORGANISATION,
    "",
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
)
"""The checked subject is known by its key; the domain's check does not look at it."""


_MEMBERSHIP_COLUMNS = (
    CreditListMembership.list_type,
    CreditListMembership.list_name,
    CreditListMembership.entry_date,
    CreditListMembership.planned_exit_date,
    CreditListMembership.exit_date,
    CreditListMembership.exit_reason,
    CreditListMembership.basis_records,
)
_RECORD_COLUMNS = (
    CreditRecordRow.id,
    CreditRecordRow.authority_uscc,
    CreditRecordRow.decision_number,
    CreditRecordRow.withdrawn,
    CreditRecordRow.stopped_at,
)


_ENTRIES = (
    select(*_MEMBERSHIP_COLUMNS, *_RECORD_COLUMNS)
    .join(CreditRecordRow, CreditRecordRow.id == CreditListMembership.record_id)
    .where(CreditListMembership.subject_key == bindparam("subject_key"))
)
"""The subject's list entries with the columns the check reads of their records (a full
row would decode its JSON fields too)."""

_SUBJECT_RECORDS = (
    select(CreditRecordRow.id)
    .where(
        CreditRecordRow.id.in_(bindparam("ids", expanding=True)),
        CreditRecordRow.subject_key == bindparam("subject_key"),
    )
    .order_by(CreditRecordRow.id)
)
"""Which of the record ids ``ids`` are the subject's records on file."""


def _basis_ids(connection: Connection, subject_key: str, rows: Sequence[Any]) -> dict[str, str]:
    """``authority USCC/decision number`` → the subject's record of that decision, for the
    records the list entries ``rows`` rest on that are on file: one query for all, by
    primary key (a record's identity is its kind and natural key hashed, so a decision's
    record can only have one of four identities; the subject's other records may be many)."""
    candidates: dict[str, str] = {}
    for text in {text for row in rows for text in row.basis_records}:
        uscc, slash, number = text.partition("/")
        if slash:
            key = NaturalKey(uscc, number)
            candidates.update({record_id(kind, key).hex(): text for kind in RecordKind})
    found: dict[str, str] = {}
    if not candidates:
        return found
    for identity in connection.execute(
        _SUBJECT_RECORDS, {"ids": sorted(candidates), "subject_key": subject_key}
    ).scalars():
        found.setdefault(candidates[identity], identity)
    return found


def _subject_entries(db: Database, subject_key: str) -> tuple[Sequence[Any], dict[str, str]]:
    """The subject's list entries (:data:`_ENTRIES`) and the records on file they rest on
    (:func:`_basis_ids`), in one read transaction. Through a connection and statements
    built once: an ORM session and the statements built per check took most of the
    check's own CPU."""
    reading = db.engine.connect().execution_options(**{READ_ONLY_OPTION: True})
    with reading as connection:
        rows = connection.execute(_ENTRIES, {"subject_key": subject_key}).all()
        return rows, _basis_ids(connection, subject_key, rows)


def check_subject(
    db: Database,
    keys: CreditKeys,
    client: Client,
    *,
    subject: str,
    activity: str,
    on: datetime.date,
    now: datetime.datetime,
) -> tuple[CheckAnswer, dict[str, Any]]:
    """Check ``subject`` (any identifier: USCC, resident ID) for ``activity`` on ``on``,
    and answer with every reason, with the ``credit_checks`` row that logs the call as made
    by ``client`` at ``now`` (the caller commits it before answering:
    :class:`registry.credit.check_log.CheckLogWriter`, which hands the subject as given,
    under :data:`registry.credit.check_log.SUBJECT_FIELD`, to its trail). An entry whose
    decision was withdrawn does not count."""
    name = activity.strip()
    if not name or len(name) > MAX_ACTIVITY:
        raise InvalidInput(f"activity is 1 to {MAX_ACTIVITY} characters", code="bad_activity")
    subject_key = keys.subject_key(subject)
    measures = catalogue()
    rows, basis_ids = _subject_entries(db, subject_key)
    entries: list[ListEntry] = []
    exits: list[ListExit] = []
    by_key: dict[NaturalKey, Any] = {}
    for row in rows:
        key = NaturalKey(row.authority_uscc, row.decision_number)
        by_key[key] = row
        entries.append(
            ListEntry(
                subject=_PLACEHOLDER_SUBJECT,
                list_type=ListType(row.list_type),
                list_name=row.list_name,
                decision_number=row.decision_number,
                reason="",
                legal_basis="",
                entry_date=row.entry_date,
                planned_exit_date=row.planned_exit_date,
                authority="",
                authority_uscc=row.authority_uscc,
            )
        )
        if row.exit_date is not None:
            exits.append(ListExit(key, row.exit_date, row.exit_reason or ""))
        elif row.withdrawn and row.stopped_at is not None:
            exits.append(ListExit(key, as_aware(row.stopped_at).date(), "withdrawn"))
    result = check(SubjectState(entries, exits, ()), name, on, measures)
    reasons = []
    for reason in result.reasons:
        entry_row = by_key[reason.entry.natural_key]
        reasons.append(
            CheckReason(
                measure_id=reason.measure.id,
                measure_name=reason.measure.name,
                effect=reason.measure.effect.value,
                basis=reason.measure.basis,
                entry_record_id=entry_row.id,
                list_type=entry_row.list_type,
                list_name=entry_row.list_name,
                entry_date=entry_row.entry_date,
                authority_uscc=entry_row.authority_uscc,
                decision_number=entry_row.decision_number,
                basis_record_ids=tuple(
                    basis_ids[text] for text in entry_row.basis_records if text in basis_ids
                ),
            )
        )
    log_row = {
        "client_id": client.id,
        "checker_uscc": client.uscc,
        "checker_name": client.name[:200],
        "subject_key": subject_key,
        "activity": name,
        "on_date": on,
        "decision": result.decision.value,
        "at": now.astimezone(datetime.UTC),
        SUBJECT_FIELD: subject,
    }
    answer = CheckAnswer(
        decision=result.decision.value,
        activity=name,
        on=on,
        reasons=tuple(reasons),
        catalogue_id=result.catalogue_id,
        catalogue_version=result.catalogue_version,
        catalogue_hash=result.catalogue_hash.hex(),
        checked_at=now,
    )
    return answer, log_row
