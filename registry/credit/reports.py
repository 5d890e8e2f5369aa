"""Credit reports served: issue a report of a subject at an instant (content from the public
profile, :mod:`credit.report`; PDF, :mod:`registry.credit.report_pdf`), anchor the PDF's SM3
through a credit event the issuing department signs like its other events (then the shared
notarization pipeline seals and anchors it), and answer whether given PDF bytes are an
issued report, unchanged.

A report's JSON carries what verifies offline: the proof bundle of the report's own event
(the PDF's SM3, signed by the department, anchored) once anchored, and for every record it
lists the bundle of that record's latest anchored event (:mod:`registry.credit.proofs`)."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from chain.crypto import sm3
from credit.report import (
    CreditReport,
    ReportedList,
    ReportedRecord,
    ReportError,
    ReportKind,
    build_report,
    report_content_hash,
    report_from_payload,
    report_payload,
)
from credit.subjects import mask_identifier, mask_person_name
from registry.chain_gateway import ChainGateway
from registry.credit.events import SIGNED, event_values
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditEventRow
from registry.credit.proofs import record_bundles
from registry.credit.public_reads import public_profile
from registry.credit.report_models import CreditReportRow
from registry.credit.report_pdf import render_report_pdf
from registry.credit.store import as_aware
from registry.db import Database
from registry.errors import InvalidInput, NotFound
from registry.models import Batch, Client, Record
from registry.record_bundles import VerifyCaches, bundle_for, bundle_json
from sdk.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

__all__ = [
    "CHINA_TIME",
    "MAX_PDF_BYTES",
    "REPORT_EVENT",
    "GenuineCheck",
    "IssuedReport",
    "ReportState",
    "check_pdf",
    "issue_report",
    "report_json",
    "report_state",
    "verify_path",
]

REPORT_EVENT = "credit_report"
"""The kind of the credit event that anchors a report's PDF."""

MAX_PDF_BYTES = 6 * 1024 * 1024
"""Largest PDF accepted for a genuine check (issued reports are a few tens of kB; the
registry refuses bodies over 8 MiB before this)."""

CHINA_TIME = datetime.timezone(datetime.timedelta(hours=8), "CST")
"""Reports state their instants in China Standard Time."""

MAX_NAME = 200
MAX_PURPOSE = 200

VERIFY_PATH = "/credit/reports"
"""Where a report's genuine-check page lives (``/credit/reports/{id}``)."""


def verify_path(report_id: str) -> str:
    """The path of a report's genuine-check page."""
    return f"{VERIFY_PATH}/{report_id}"


@dataclass(frozen=True)
class IssuedReport:
    """A report just issued."""

    report_id: str
    pdf_sm3: str
    content_hash: str
    event_id: str
    """The credit event to sign (it waits with the department's other events)."""
    commitment: str
    """That event's commitment, to sign as a notarized record's."""
    verify_url: str
    report: dict[str, Any]
    """The report's content (JSON)."""


@dataclass(frozen=True)
class ReportState:
    """A stored report and where its anchoring is."""

    report: CreditReport
    pdf_sm3: str
    content_hash: str
    event_state: str
    """awaiting_signature, or signed."""
    anchoring: str | None
    """The notarized record's status once signed: accepted, sealed or anchored."""
    notary_record_id: str | None
    block_number: int | None
    """The block holding the anchoring, once anchored."""


@dataclass(frozen=True)
class GenuineCheck:
    """The answer about given PDF bytes."""

    pdf_sm3: str
    """SM3 of the bytes checked."""
    genuine: bool
    """The bytes are exactly an issued report's PDF."""
    state: ReportState | None
    """That report (when genuine), or the report the check was made against."""


def _subject(subject: str, name: str) -> tuple[str, str, str]:
    """(identifier to look up, code shown, name shown) of a requested subject."""
    text = subject.strip().upper()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"the subject's name is longer than {MAX_NAME}")
    try:
        return validate_uscc(text), validate_uscc(text), name.strip()
    except InvalidIdentifier:
        pass
    try:
        number = validate_resident_id(text)
    except InvalidIdentifier:
        raise InvalidInput(
            "subject must be a USCC (GB 32100) or a resident ID number (GB 11643) with "
            "its check character",
            code="invalid_subject",
        ) from None
    return number, mask_identifier(number), mask_person_name(name.strip())


def issue_report(
    db: Database,
    keys: CreditKeys,
    client: Client,
    *,
    subject: str,
    subject_name: str,
    as_of: datetime.datetime,
    issued_at: datetime.datetime,
    purpose: str,
    base_url: str,
    kind: ReportKind = ReportKind.SPECIAL,
) -> IssuedReport:
    """Issue a report of ``subject`` (USCC or resident ID) at ``as_of``: built from the
    public profile at that instant, rendered, stored, and its PDF's SM3 put in a credit
    event awaiting ``client``'s signature. The subject's name shown is the one on its
    records when it has any on display, else ``subject_name`` (masked for a person).
    Raises InvalidInput for a bad subject or instant."""
    lookup, code, given_name = _subject(subject, subject_name)
    if len(purpose) > MAX_PURPOSE:
        raise InvalidInput(f"purpose is longer than {MAX_PURPOSE}")
    if as_of.tzinfo is None or issued_at.tzinfo is None:
        raise InvalidInput("times must carry their zone")
    as_of, issued_at = as_of.astimezone(CHINA_TIME), issued_at.astimezone(CHINA_TIME)
    profile = public_profile(db, lookup, as_of, keys=keys)
    name = profile.subject_name or given_name
    if not name:
        raise InvalidInput("the subject has no records on display: give its name")
    report_id = str(uuid.uuid4())
    try:
        report = build_report(
            report_id=report_id,
            kind=kind,
            subject_code=profile.subject_code or code,
            subject_name=name,
            as_of=as_of,
            issued_at=issued_at,
            issuer_name=client.name,
            issuer_uscc=client.uscc,
            purpose=purpose.strip(),
            records=[
                ReportedRecord(
                    record_id=record.id,
                    kind=record.kind,
                    version=record.version,
                    authority_uscc=record.authority_uscc,
                    decision_number=record.decision_number,
                    fields=record.fields,
                    window_start=record.window_start,
                    display_end=record.display_end,
                    severity=record.severity,
                    fields_root=record.fields_root,
                )
                for record in profile.records
            ],
            lists=[
                ReportedList(
                    record_id=entry.record_id,
                    list_type=entry.list_type,
                    list_name=entry.list_name,
                    entry_date=entry.entry_date,
                    planned_exit_date=entry.planned_exit_date,
                )
                for entry in profile.lists
                if entry.exit_date is None or entry.exit_date > as_of.date()
            ],
        )
    except ReportError as exc:
        raise InvalidInput(str(exc), code="invalid_report") from None
    verify_url = base_url.rstrip("/") + verify_path(report_id)
    pdf = render_report_pdf(report, verify_url)
    pdf_sm3 = sm3(pdf)
    content_hash = report_content_hash(report).hex()
    event = event_values(client=client, kind=REPORT_EVENT, digest=pdf_sm3, at=issued_at)
    payload = report_payload(report)
    with db.session() as session:
        session.add(CreditEventRow(**event))
        session.add(
            CreditReportRow(
                id=report_id,
                kind=kind.value,
                client_id=client.id,
                subject_key=keys.subject_key(lookup),
                as_of=as_of,
                issued_at=issued_at,
                content_json=payload,
                content_hash=content_hash,
                pdf=pdf,
                pdf_sm3=pdf_sm3.hex(),
                event_id=event["id"],
            )
        )
    return IssuedReport(
        report_id=report_id,
        pdf_sm3=pdf_sm3.hex(),
        content_hash=content_hash,
        event_id=event["id"],
        commitment=event["commitment"],
        verify_url=verify_url,
        report=payload,
    )


def _state(row: CreditReportRow, event: CreditEventRow, record: Record | None) -> ReportState:
    return ReportState(
        report=report_from_payload(row.content_json),
        pdf_sm3=row.pdf_sm3,
        content_hash=row.content_hash,
        event_state=event.state,
        anchoring=None if record is None else record.status,
        notary_record_id=event.notary_record_id,
        block_number=None,
    )


def _load(db: Database, *, report_id: str | None = None, pdf_sm3: str | None = None) -> Any:
    query = (
        select(CreditReportRow, CreditEventRow, Record, Batch)
        .join(CreditEventRow, CreditEventRow.id == CreditReportRow.event_id)
        .outerjoin(Record, Record.id == CreditEventRow.notary_record_id)
        .outerjoin(Batch, Batch.id == Record.batch_id)
    )
    if report_id is not None:
        query = query.where(CreditReportRow.id == report_id)
    else:
        query = query.where(CreditReportRow.pdf_sm3 == pdf_sm3)
    with db.read_session() as session:
        return session.execute(query).one_or_none()


def _with_block(state: ReportState, batch: Batch | None) -> ReportState:
    if batch is None or batch.block_number is None:
        return state
    return ReportState(**{**vars(state), "block_number": int(batch.block_number)})


def report_state(db: Database, report_id: str) -> ReportState:
    """The stored report ``report_id``; raises NotFound."""
    found = _load(db, report_id=report_id.strip().lower())
    if found is None:
        raise NotFound(f"no credit report {report_id}", code="report_not_found")
    row, event, record, batch = found
    return _with_block(_state(row, event, record), batch)


def report_pdf(db: Database, report_id: str) -> bytes:
    """The PDF of report ``report_id`` as issued; raises NotFound."""
    with db.read_session() as session:
        pdf = session.scalar(
            select(CreditReportRow.pdf).where(CreditReportRow.id == report_id.strip().lower())
        )
    if pdf is None:
        raise NotFound(f"no credit report {report_id}", code="report_not_found")
    return bytes(pdf)


def check_pdf(db: Database, pdf: bytes, *, report_id: str | None = None) -> GenuineCheck:
    """Whether ``pdf`` is exactly an issued report (by the SM3 of its bytes: one changed
    byte makes it another file). With ``report_id`` (the QR code's), the bytes must be
    that report's; the answer then also carries that report, to say what it stated."""
    if len(pdf) > MAX_PDF_BYTES:
        raise InvalidInput(f"a report PDF is at most {MAX_PDF_BYTES} bytes", code="too_large")
    digest = sm3(pdf).hex()
    found = _load(db, pdf_sm3=digest)
    if found is not None:
        row, event, record, batch = found
        state = _with_block(_state(row, event, record), batch)
        if report_id is None or row.id == report_id.strip().lower():
            return GenuineCheck(pdf_sm3=digest, genuine=True, state=state)
    claimed = None if report_id is None else report_state(db, report_id)
    return GenuineCheck(pdf_sm3=digest, genuine=False, state=claimed)


def report_json(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, report_id: str
) -> dict[str, Any]:
    """The report as JSON with what verifies offline: ``report`` (content), ``pdf_sm3``,
    ``content_hash``, ``anchoring`` (the event's state, and its proof bundle once
    anchored) and ``record_proofs`` (each listed record's latest anchored event with its
    bundle, null while none is)."""
    found = _load(db, report_id=report_id.strip().lower())
    if found is None:
        raise NotFound(f"no credit report {report_id}", code="report_not_found")
    row, event, record, batch = found
    bundle = None
    if record is not None and event.state == SIGNED:
        proof = bundle_for(db, gateway, caches, record, batch)
        if proof is not None and batch is not None:
            bundle = bundle_json(caches, batch, proof)
    record_ids = [item["record_id"] for item in row.content_json.get("records", [])]
    return {
        "report": row.content_json,
        "pdf_sm3": row.pdf_sm3,
        "content_hash": row.content_hash,
        "issued_at": as_aware(row.issued_at).isoformat(),
        "anchoring": {
            "event_id": event.id,
            "event_state": event.state,
            "commitment": event.commitment,
            "notary_record_id": event.notary_record_id,
            "status": None if record is None else record.status,
            "bundle": bundle,
        },
        "record_proofs": record_bundles(db, gateway, caches, record_ids),
    }
