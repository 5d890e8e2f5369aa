"""``check(subject, activity, date)`` served (联合奖惩): the subject's list entries from
the database, the measures catalogue (:func:`credit.joint.bundled_catalogue`, versioned
data) and the domain's :func:`credit.joint.check` give allowed / restricted / favoured with
every reason (the entries read by :func:`registry.credit.check_entries.subject_entries`,
kept per credit version); each call is logged (who checked whom, for what, when, and the answer), so
the subject can see it in its profile. Bundles of the reasons are attached by the caller
(:func:`registry.credit.proofs.record_bundles`)."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from credit.joint import Catalogue, SubjectState, bundled_catalogue, check
from registry.credit.check_entries import SubjectEntries, kept_entries, subject_entries
from registry.credit.check_log import SUBJECT_FIELD
from registry.credit.keys import CreditKeys
from registry.db import Database
from registry.errors import InvalidInput
from registry.models import Client

__all__ = [
    "CHECK_ROLES",
    "MAX_ACTIVITY",
    "CheckAnswer",
    "CheckAsked",
    "CheckReason",
    "activity_name",
    "catalogue",
    "check_kept_subject",
    "check_log_row",
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
    credit_version: int | None = field(default=None, compare=False)
    """The credit version the subject's entries were read under (None on PostgreSQL): not
    part of the answer, it lets the reasons' proofs be kept per version
    (:func:`registry.credit.proofs.record_bundles`)."""


@dataclass(frozen=True)
class CheckAsked:
    """One ``check`` call: who asks, of which subject, for which activity, on which day,
    and when (the shape every check function takes)."""

    client: Client
    subject: str
    """Any identifier (USCC, resident ID), as the caller gave it."""
    activity: str
    """As given: surrounding spaces are not part of the name (:func:`activity_name`)."""
    on: datetime.date
    now: datetime.datetime


def check_subject(
    db: Database, keys: CreditKeys, asked: CheckAsked
) -> tuple[CheckAnswer, dict[str, Any]]:
    """Check ``asked.subject`` for ``asked.activity`` on ``asked.on``, and answer with
    every reason, with the ``credit_checks`` row that logs the call as made by
    ``asked.client`` at ``asked.now`` (:func:`check_log_row`; the caller commits it before
    answering). An entry whose decision was withdrawn does not count."""
    name = activity_name(asked.activity)
    subject_key = keys.subject_key(asked.subject)
    found = subject_entries(db, subject_key)
    return _answer(found, asked, subject_key, name)


def check_kept_subject(
    db: Database, keys: CreditKeys, asked: CheckAsked, version: int
) -> tuple[CheckAnswer, dict[str, Any]] | None:
    """:func:`check_subject` from the subject's entries kept under the credit version
    ``version`` (read by the caller just now), without touching the database; None if they
    are not kept (on SQLite only, as :func:`registry.credit.check_entries.subject_entries`
    keeps them). For a caller that may not wait, such as a server's event loop."""
    name = activity_name(asked.activity)
    if not db.is_sqlite:
        return None
    subject_key = keys.subject_key(asked.subject)
    found = kept_entries(db).get((subject_key, version))
    if found is None:
        return None
    return _answer(found, asked, subject_key, name)


def check_log_row(asked: CheckAsked, subject_key: str, name: str, decision: str) -> dict[str, Any]:
    """The ``credit_checks`` row that logs ``asked`` (of the subject keyed ``subject_key``,
    for the activity ``name``) answered ``decision``. The caller commits it before answering
    (:class:`registry.credit.check_log.CheckLogWriter`, which hands the subject as given,
    under :data:`registry.credit.check_log.SUBJECT_FIELD`, to its trail)."""
    client = asked.client
    return {
        "client_id": client.id,
        "checker_uscc": client.uscc,
        "checker_name": client.name[:200],
        "subject_key": subject_key,
        "activity": name,
        "on_date": asked.on,
        "decision": decision,
        "at": asked.now.astimezone(datetime.UTC),
        SUBJECT_FIELD: asked.subject,
    }


def activity_name(activity: str) -> str:
    """``activity`` without surrounding spaces; InvalidInput if empty or too long."""
    name = activity.strip()
    if not name or len(name) > MAX_ACTIVITY:
        raise InvalidInput(f"activity is 1 to {MAX_ACTIVITY} characters", code="bad_activity")
    return name


def _answer(
    found: SubjectEntries, asked: CheckAsked, subject_key: str, name: str
) -> tuple[CheckAnswer, dict[str, Any]]:
    """The answer for the subject of ``found`` and its log row (see :func:`check_subject`)."""
    measures = catalogue()
    result = check(SubjectState(found.entries, found.exits, ()), name, asked.on, measures)
    reasons = []
    for reason in result.reasons:
        entry_row = found.rows[reason.entry.natural_key]
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
                    found.basis_ids[text]
                    for text in entry_row.basis_records
                    if text in found.basis_ids
                ),
            )
        )
    answer = CheckAnswer(
        decision=result.decision.value,
        activity=name,
        on=asked.on,
        reasons=tuple(reasons),
        catalogue_id=result.catalogue_id,
        catalogue_version=result.catalogue_version,
        catalogue_hash=result.catalogue_hash.hex(),
        checked_at=asked.now,
        credit_version=found.version,
    )
    return answer, check_log_row(asked, subject_key, name, answer.decision)
