"""Public-credit data behind the gateway: the credit record classes of one subject, read
through :func:`registry.credit.queries.authority_profile` (everything on file, displayed
or not: the part the public never sees), cut down to exactly the class asked for.

The resource is the subject itself: its USCC, or a natural person's resident ID (matched
through the registry's keyed subject hash, never stored). Items, from the catalogue:

- ``credit.licensing``: its licensing decisions (行政许可);
- ``credit.penalty``: its penalty decisions (行政处罚);
- ``credit.check``: the credit checks made of it (信用核查结果);
- ``credit``: all of the above, with its red/black list entries and credit commitments.

The gateway has allowed the item before :meth:`CreditProvider.read` runs, and a grant of
one class never covers another (:func:`authorizations.catalogue.covers`), so a department
reads the classes it was authorized for and nothing beyond."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from authorizations.terms import SubjectKind
from registry.authorizations.providers import SubjectRef
from registry.credit.authority_profile import AuthorityProfile, AuthorityRecord, authority_profile
from registry.credit.keys import CreditKeys
from registry.db import Database
from registry.errors import InvalidInput
from sdk.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

ROOT = "credit"
"""The top-level item this provider serves."""

RECORD_CLASSES: dict[str, frozenset[str]] = {
    "credit.licensing": frozenset({"licensing"}),
    "credit.penalty": frozenset({"penalty"}),
    "credit.check": frozenset(),
}
"""Item code → the credit record kinds it reads (``credit`` reads every kind)."""

CHECK_ITEMS = frozenset({ROOT, "credit.check"})
"""Items that include the checks made of the subject."""


def _when(moment: datetime.datetime | datetime.date | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _record_json(record: AuthorityRecord) -> dict[str, Any]:
    current = record.current
    latest = record.versions[-1] if record.versions else None
    return {
        "id": current.id,
        "kind": current.kind,
        "version": current.version,
        "authorityUscc": current.authority_uscc,
        "decisionNumber": current.decision_number,
        "fields": dict(latest.fields) if latest is not None else dict(current.fields),
        "fieldsRoot": current.fields_root,
        "severity": current.severity,
        "displayed": record.displayed,
        "windowStart": _when(current.window_start),
        "displayEnd": _when(current.display_end),
        "stoppedAt": _when(record.stopped_at),
        "withdrawn": record.withdrawn,
        "commitmentStatus": record.commitment_status,
    }


def credit_data(profile: AuthorityProfile, item: str) -> dict[str, Any]:
    """The part of ``profile`` item ``item`` names (see the module docstring); raises
    InvalidInput for an item of the credit root this provider does not know."""
    if item != ROOT and item not in RECORD_CLASSES:
        raise InvalidInput(f"no credit data is served for item {item!r}", code="item_not_served")
    kinds = RECORD_CLASSES.get(item)
    records = [
        _record_json(record)
        for record in profile.records
        if kinds is None or record.current.kind in kinds
    ]
    data: dict[str, Any] = {
        "subjectCode": profile.subject_code,
        "subjectName": profile.subject_name,
        "at": _when(profile.at),
        "item": item,
    }
    if item != "credit.check":
        data["records"] = records
    if item == ROOT:
        data["lists"] = [
            {
                "recordId": entry.record_id,
                "listType": entry.list_type,
                "listName": entry.list_name,
                "entryDate": _when(entry.entry_date),
                "plannedExitDate": _when(entry.planned_exit_date),
                "exitDate": _when(entry.exit_date),
                "exitReason": entry.exit_reason,
            }
            for entry in profile.lists
        ]
    if item in CHECK_ITEMS:
        data["checks"] = [
            {
                "checkerUscc": check.checker_uscc,
                "checkerName": check.checker_name,
                "activity": check.activity,
                "onDate": _when(check.on_date),
                "decision": check.decision,
                "at": _when(check.at),
            }
            for check in profile.checks
        ]
    return data


def subject_of_identifier(resource: str) -> SubjectRef | None:
    """The subject a credit resource names: an enterprise by USCC, a citizen by resident
    ID (check characters verified); None for anything else."""
    for kind, validate in (
        (SubjectKind.ENTERPRISE, validate_uscc),
        (SubjectKind.CITIZEN, validate_resident_id),
    ):
        try:
            return SubjectRef(kind, validate(resource))
        except InvalidIdentifier:
            continue
    return None


class CreditProvider:
    """The credit record classes of a subject (see the module docstring)."""

    root = ROOT

    def __init__(
        self, db: Database, keys: Callable[[], CreditKeys], clock: Callable[[], float]
    ) -> None:
        """Read from ``db``; ``keys`` gives the registry's credit keys (derived from its
        signing key when first needed), ``clock`` the instant of the view."""
        self.db = db
        self.keys = keys
        self.clock = clock

    def subject_of(self, resource: str) -> SubjectRef | None:
        """The subject the resource names."""
        return subject_of_identifier(resource)

    def read(self, resource: str, item: str) -> dict[str, Any]:
        """The classes ``item`` names of the subject ``resource``, as on file now."""
        subject = subject_of_identifier(resource)
        if subject is None:
            raise InvalidInput("a credit resource is a USCC or a resident ID", code="bad_subject")
        at = datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
        profile = authority_profile(self.db, subject.identifier, at=at, keys=self.keys())
        return credit_data(profile, item)


__all__ = ["RECORD_CLASSES", "CreditProvider", "credit_data", "subject_of_identifier"]
