"""Credit repair (信用修复) served: a subject applies with evidence for one of its records
once the minimum period has passed and its obligations are met; the authority approves or
rejects with reasons before a deadline (:data:`credit.working_days.REPAIR_DECISION_WORKING_DAYS`
working days after the day of receipt, on the State Council's calendar); undecided
applications past it are overdue. An approval anchors a ``repair`` and a
``stop_publishing`` event and takes the record off public display at that instant. Every
step is in the subject's profile (:func:`registry.credit.authority_profile.authority_profile`). Time
is a parameter."""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from chain.crypto import PublicKey, sm3
from chain.errors import ChainError
from credit.records import LifecycleEventKind
from credit.windows import RepairRefused, Severity, Window, approve_repair, require_repair_eligible
from credit.working_days import (
    REPAIR_DECISION_WORKING_DAYS,
    national_calendar,
    working_day_deadline,
)
from registry.credit.authority_profile import RepairView, repair_view
from registry.credit.keys import CreditKeys
from registry.credit.lifecycle import MAX_REASON, load_record, record_event, stop_display_at
from registry.credit.models import CreditRecordRow, CreditRepairApplication
from registry.credit.store import Publisher, as_aware, require_authority
from registry.db import Database
from registry.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry.models import Base
from sdk.credit_subject import (
    parse_repair_terms,
    repair_approval_bytes,
    repair_sign_bytes,
    repair_terms_hash,
)
from sdk.data_receipts import subject_commitment

__all__ = [
    "MAX_EVIDENCE",
    "MAX_TERMS_SKEW_S",
    "CreditRepairFiling",
    "OwnFiler",
    "RepairDecision",
    "apply_for_repair",
    "decide_repair",
    "file_own_repair",
    "overdue_repairs",
    "window_of_row",
]

MAX_TERMS_SKEW_S = 600
"""How far the time a subject signed its application's terms may be from the registry's."""

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


# -- a subject files its own application ---------------------------------------------------


class CreditRepairFiling(Base):
    """A repair application the subject filed itself (created by migration
    ``0016_subject_trails``): the terms it signed (or its identity provider attested), once
    — a replay collides on their hash — and the subject's blind index, by which its tracker
    finds it."""

    __tablename__ = "credit_repair_filings"

    application_id: Mapped[str] = mapped_column(
        ForeignKey("credit_repair_applications.id"), primary_key=True
    )
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_index: Mapped[str] = mapped_column(String(64), index=True)
    filed_by: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    terms_json: Mapped[str] = mapped_column(Text)
    terms_hash: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class OwnFiler:
    """Who files: the enterprise itself, or the identity provider for a citizen."""

    client_id: str
    """The filing client."""
    public_key: bytes
    """Its SM2 public key (the signature must verify under it)."""
    subject_kind: str
    """``enterprise`` (the client's own USCC) or ``citizen`` (attested)."""
    subject_id: str
    """The subject's identifier, canonical."""
    subject_index: str
    """Its blind index (the tracker's)."""


def _bad_terms(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_repair_terms")


def file_own_repair(
    session: Session,
    keys: CreditKeys,
    filer: OwnFiler,
    *,
    terms: Any,
    evidence: str,
    signature: bytes,
    chain_id: int,
    now: datetime.datetime,
    signed_now: float,
) -> RepairView:
    """File the subject's own application under its signed ``terms`` at ``now`` (the
    instant the application counts from); ``signed_now`` is the wall-clock second the terms'
    time is compared with. Checked in order —
    the terms are well formed, for this chain, about this subject, of this evidence, and
    recent (422 ``invalid_repair_terms``); the signature verifies under the filer's key
    over :func:`sdk.credit_subject.repair_sign_bytes` (an enterprise) or
    :func:`sdk.credit_subject.repair_approval_bytes` (an identity provider) (422
    ``bad_signature``); these terms were not filed before (409 ``repair_replayed``); the
    record is the subject's own (403 ``not_own_record``; 404 if there is no such record) —
    then as :func:`apply_for_repair`. Nothing is stored unless all of it holds."""
    try:
        parsed = parse_repair_terms(terms)
    except ValueError as exc:
        raise _bad_terms(f"repair terms: {exc}") from None
    if parsed.chain_id != chain_id:
        raise _bad_terms(f"the terms are for chain {parsed.chain_id}, not {chain_id}")
    if parsed.subject_kind != filer.subject_kind or parsed.subject_commitment != bytes(
        subject_commitment(filer.subject_kind, filer.subject_id, parsed.subject_salt)
    ):
        raise _bad_terms("the terms are not about the filing subject")
    if parsed.evidence_hash != sm3(evidence.strip().encode()).hex():
        raise _bad_terms("the evidence is not the evidence the terms name")
    if abs(parsed.at - signed_now) > MAX_TERMS_SKEW_S:
        raise _bad_terms(f"the terms were signed more than {MAX_TERMS_SKEW_S} s from now")
    digest = repair_terms_hash(terms)
    sign_bytes = repair_sign_bytes if filer.subject_kind == "enterprise" else repair_approval_bytes
    try:
        PublicKey.from_bytes(filer.public_key).verify(signature, sign_bytes(chain_id, digest))
    except (ChainError, ValueError):
        raise InvalidInput(
            "the signature over the terms does not verify", code="bad_signature"
        ) from None
    replayed = session.scalar(
        select(CreditRepairFiling.application_id).where(
            CreditRepairFiling.terms_hash == digest.hex()
        )
    )
    if replayed is not None:
        raise Conflict("these terms were filed already", code="repair_replayed")
    row = session.get(CreditRecordRow, parsed.record_id)
    if row is None:
        raise NotFound(f"no credit record {parsed.record_id}", code="credit_record_not_found")
    if row.subject_key != keys.subject_key(filer.subject_id):
        raise Forbidden("a subject files repair only for its own records", code="not_own_record")
    view = apply_for_repair(
        session,
        keys,
        record_id=parsed.record_id,
        subject=filer.subject_id,
        evidence=evidence,
        obligations_fulfilled=parsed.obligations_fulfilled,
        now=now,
    )
    session.add(
        CreditRepairFiling(
            application_id=view.id,
            subject_kind=filer.subject_kind,
            subject_index=filer.subject_index,
            filed_by=filer.client_id,
            terms_json=json.dumps(terms, separators=(",", ":"), sort_keys=True),
            terms_hash=digest.hex(),
            signature=base64.b64encode(signature).decode("ascii"),
            at=int(signed_now),
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("these terms were filed already", code="repair_replayed") from None
    return view
