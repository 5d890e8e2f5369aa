"""Credit repair (信用修复) served: a subject applies with evidence for one of its records
once the minimum period has passed and its obligations are met; the authority approves or
rejects with reasons before a deadline (:data:`credit.working_days.REPAIR_DECISION_WORKING_DAYS`
working days after the day of receipt, on the State Council's calendar); undecided
applications past it are overdue. An approval anchors a ``repair`` and a
``stop_publishing`` event and takes the record off public display at that instant. Every
step is in the subject's profile (:func:`registry.credit.queries.authority_profile`). Time
is a parameter."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.crypto import sm3
from credit.records import LifecycleEventKind
from credit.windows import RepairRefused, Severity, Window, approve_repair, require_repair_eligible
from credit.working_days import (
    REPAIR_DECISION_WORKING_DAYS,
    national_calendar,
    working_day_deadline,
)
from registry.credit.keys import CreditKeys
from registry.credit.lifecycle import MAX_REASON, load_record, record_event, stop_display_at
from registry.credit.models import CreditRecordRow, CreditRepairApplication
from registry.credit.queries import RepairView, repair_view
from registry.credit.store import Publisher, as_aware, require_authority
from registry.db import Database
from registry.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "MAX_EVIDENCE",
    "RepairDecision",
    "apply_for_repair",
    "decide_repair",
    "overdue_repairs",
    "window_of_row",
]

MAX_EVIDENCE = 4_000
"""Longest evidence text (a description, document numbers and hashes of attachments)."""

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"


class RepairNotAllowed(InvalidInput):
    """An application that cannot be accepted now (``code`` says why, as
    :class:`credit.windows.RepairRefused` names it)."""


@dataclass(frozen=True)
class RepairDecision:
    """The authority's answer to an application."""

    approve: bool
    """Approve (stop publishing now) or reject."""
    reason: str
    """Why, in words: shown to the subject."""


def window_of_row(row: CreditRecordRow) -> Window:
    """The record's window as :mod:`credit.windows` computes with it."""
    severity = None if row.severity is None else Severity(row.severity)
    return Window(
        start=as_aware(row.window_start),
        minimum_end=None if row.minimum_end is None else as_aware(row.minimum_end),
        maximum_end=None if row.maximum_end is None else as_aware(row.maximum_end),
        severity=severity,
        rule_set_id="",
        rule_set_version=0,
        rule_set_hash=bytes(32),  # type: ignore[arg-type]
        stopped_at=None if row.stopped_at is None else as_aware(row.stopped_at),
    )


def _refused(error: RepairRefused) -> RepairNotAllowed:
    return RepairNotAllowed(str(error), code=f"repair_{error.reason}")


def apply_for_repair(
    session: Session,
    keys: CreditKeys,
    *,
    record_id: str,
    subject: str,
    evidence: str,
    obligations_fulfilled: bool,
    now: datetime.datetime,
) -> RepairView:
    """File the application of ``subject`` (its identifier: it must be the record's
    subject) for repair of ``record_id`` at ``now``. Raises NotFound (unknown record, or
    not this subject's), RepairNotAllowed (before the minimum, obligations unmet, not
    published, no longer displayed), Conflict (an application is pending already)."""
    row = load_record(session, record_id)
    if row.subject_key != keys.subject_key(subject):
        raise NotFound(
            f"no credit record {record_id} of this subject", code="credit_record_not_found"
        )
    text = evidence.strip()
    if not text or len(text) > MAX_EVIDENCE:
        raise InvalidInput(f"evidence is 1 to {MAX_EVIDENCE} characters", code="bad_evidence")
    try:
        require_repair_eligible(
            window_of_row(row), now, obligations_fulfilled=obligations_fulfilled
        )
    except RepairRefused as error:
        raise _refused(error) from None
    pending = session.scalars(
        select(CreditRepairApplication.id).where(
            CreditRepairApplication.record_id == row.id,
            CreditRepairApplication.state == PENDING,
        )
    ).first()
    if pending is not None:
        raise Conflict(f"application {pending} is pending already", code="repair_pending")
    moment = now.astimezone(datetime.UTC)
    application = CreditRepairApplication(
        id=str(uuid.uuid4()),
        record_id=row.id,
        subject_key=row.subject_key,
        evidence_sealed=keys.vault.seal(text.encode()),
        evidence_hash=sm3(text.encode()).hex(),
        obligations_fulfilled=obligations_fulfilled,
        applied_at=moment,
        deadline=working_day_deadline(
            moment, REPAIR_DECISION_WORKING_DAYS, national_calendar()
        ).astimezone(datetime.UTC),
        state=PENDING,
        decided_at=None,
        decision_reason=None,
        decided_by=None,
    )
    session.add(application)
    session.flush()
    return repair_view(application, now)


def decide_repair(
    session: Session, publisher: Publisher, application_id: str, decision: RepairDecision
) -> tuple[RepairView, list[str]]:
    """The authority's decision on a pending application at ``publisher.now``: an
    approval stops the record's display at once and makes a ``repair`` and a
    ``stop_publishing`` event (their ids are returned); a rejection keeps it displayed.
    Raises NotFound, Forbidden (not the record's authority), Conflict (decided already),
    RepairNotAllowed (the record can no longer be repaired, e.g. its window ended)."""
    application = session.get(CreditRepairApplication, application_id)
    if application is None:
        raise NotFound(f"no repair application {application_id}", code="repair_not_found")
    row = load_record(session, application.record_id)
    require_authority(publisher.client, row.authority_uscc, None)
    if application.state != PENDING:
        raise Conflict(f"the application is {application.state} already", code="repair_decided")
    reason = decision.reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(f"give a reason of 1 to {MAX_REASON} characters", code="bad_reason")
    events: list[str] = []
    if decision.approve:
        try:
            approve_repair(
                window_of_row(row),
                publisher.now,
                obligations_fulfilled=application.obligations_fulfilled,
            )
        except RepairRefused as error:
            raise _refused(error) from None
        stop_display_at(row, publisher.now)
        for kind in (LifecycleEventKind.REPAIR, LifecycleEventKind.STOP_PUBLISHING):
            events.append(record_event(session, publisher, row, kind.value, reason))
    application.state = APPROVED if decision.approve else REJECTED
    application.decided_at = publisher.now.astimezone(datetime.UTC)
    application.decision_reason = reason
    application.decided_by = publisher.client.id
    session.flush()
    return repair_view(application, publisher.now), events


def overdue_repairs(
    db: Database, at: datetime.datetime, *, authority_uscc: str | None = None
) -> list[RepairView]:
    """Applications still undecided at their deadline as of ``at`` (for one authority if
    given), oldest deadline first."""
    query = (
        select(CreditRepairApplication)
        .join(CreditRecordRow, CreditRecordRow.id == CreditRepairApplication.record_id)
        .where(
            CreditRepairApplication.state == PENDING,
            CreditRepairApplication.deadline <= at.astimezone(datetime.UTC),
        )
        .order_by(CreditRepairApplication.deadline)
    )
    if authority_uscc is not None:
        query = query.where(CreditRecordRow.authority_uscc == authority_uscc)
    with db.read_session() as session:
        return [repair_view(row, at) for row in session.scalars(query)]
