"""A subject's red and black list entries as ``check`` reads them
(:func:`registry.credit.checks.check_subject`), kept per registry process under the credit
version they were read at.

Every change a check can see makes a credit event in the transaction that changes it: a
list entry published (its record stored), its exit, its decision withdrawn or stopped, a
record it rests on stored. So the entries read under one credit version (the last credit
event's number, :func:`registry.credit.credit_version.credit_version`) are the entries under
that version, whichever process checks; the version is read in the same read transaction as
the entries, so the pair is one snapshot. A kept subject costs one short read of the version
instead of the entries, the records they rest on and building them again (a subject on 20
lists: 0.9 ms of CPU).

The version is exact only where credit events commit in the order of their numbers (SQLite,
one writer at a time); on PostgreSQL every check reads its entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from credit.records import ListEntry, ListExit, ListType, NaturalKey, RecordKind, record_id
from credit.subjects import Subject, SubjectCategory
from registry.caches import KeptPerOwner, LruCache
from registry.credit.credit_version import credit_version, read_credit_version
from registry.credit.models import CreditListMembership, CreditRecordRow
from registry.credit.store import as_aware
from registry.db import Database

__all__ = ["KEPT_SUBJECTS", "SubjectEntries", "kept_entries", "subject_entries"]

KEPT_SUBJECTS = 4_096
"""Most subjects' entries kept per database per process (each a few kilobytes at most)."""

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


@dataclass(frozen=True)
class SubjectEntries:
    """A subject's list entries and exits in the domain's terms, with what the answer
    names of each."""

    entries: tuple[ListEntry, ...]
    exits: tuple[ListExit, ...]
    rows: Mapping[NaturalKey, Any]
    """The entry's decision → its row (:data:`_ENTRIES`' columns)."""
    basis_ids: Mapping[str, str]
    """``authority USCC/decision number`` → the subject's record of it, for the records on
    file that entries rest on."""
    version: int | None = None
    """The credit version they were read under (None where versions are not kept: on
    PostgreSQL)."""


_KEPT: KeptPerOwner[tuple[str, int], SubjectEntries] = KeptPerOwner(KEPT_SUBJECTS)


def kept_entries(db: Database) -> LruCache[tuple[str, int], SubjectEntries]:
    """The entries kept for ``db`` in this process: (subject key, credit version) → entries."""
    return _KEPT.of(db)


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


def _entries(rows: Sequence[Any], basis_ids: dict[str, str], version: int | None) -> SubjectEntries:
    """The domain's list entries and exits of ``rows``. An entry whose decision was
    withdrawn exits on the day it stopped."""
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
    return SubjectEntries(tuple(entries), tuple(exits), by_key, basis_ids, version)


def subject_entries(db: Database, subject_key: str) -> SubjectEntries:
    """The list entries of the subject of ``subject_key`` as stored now: kept ones if the
    credit version has not moved since they were read (SQLite), else read in one read
    transaction, through a connection and statements built once.

    A kept subject is answered after the version alone, read as SQL compiled once on a
    pooled driver connection (:func:`credit_version`: a read transaction around the same
    SELECT cost 0.1 ms of CPU, most of a kept check's entries). Entries read are kept under
    the version read in their own transaction, with them."""
    kept = kept_entries(db) if db.is_sqlite else None
    if kept is not None:
        found = kept.get((subject_key, credit_version(db)))
        if found is not None:
            return found
    with db.read_connection() as connection:
        version = None if kept is None else read_credit_version(connection)
        rows = connection.execute(_ENTRIES, {"subject_key": subject_key}).all()
        basis_ids = _basis_ids(connection, subject_key, rows)
    entries = _entries(rows, basis_ids, version)
    if kept is not None and version is not None:
        kept.put((subject_key, version), entries)
    return entries
