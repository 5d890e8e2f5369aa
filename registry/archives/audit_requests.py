"""Fixity audits of one package asked for by a department (``POST
/v1/archives/packages/{id}/audits``): the request is queued in the database and run by the
scheduled audits' worker (:class:`registry.archives.scheduler.AuditWorker`), through the
same runner (:func:`registry.archives.auditing.run_audit`): stopped at shutdown with its
checkpoint kept and continued by the next worker, its custody events anchored, a failure
logged and sent to the webhook. Its result, the findings and the 四性 report of each
version (:func:`archives.fixity_report.fixity_report`), is kept with the request.

One audit of a package is queued or running at a time: asking again while it is returns
it (a unique column holds the package until the audit ends, whichever process is asked)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from archives.audit import AuditResult
from archives.errors import AuditBusy, AuditInterrupted, CheckpointError
from archives.fixity_report import fixity_report
from registry.archives.auditing import run_audit
from registry.archives.models import ArchiveAuditRequestRow, ArchivePackageRow
from registry.archives.service import ArchiveService
from registry.errors import Conflict, Forbidden, NotFound
from registry.models import Client

logger = logging.getLogger(__name__)

AUDIT_ROLE = "archive_audit"
"""The client role that may ask for (and read) an audit of any department's package; the
department that ingested a package may without it."""

MAX_REASON = 500
"""Longest reason given with a request."""


class AuditStatus(StrEnum):
    """Where a requested audit is."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


def check_auditor(service: ArchiveService, package_id: str, client: Client) -> ArchivePackageRow:
    """The package's latest row if ``client`` may audit it: the department that ingested
    it, or a client with :data:`AUDIT_ROLE`. Raises NotFound (no such package), Forbidden
    (``not_package_owner``)."""
    rows = service.package_rows(package_id)
    if rows[0].client_id != client.id and AUDIT_ROLE not in client.roles:
        raise Forbidden(
            f"package {package_id} is audited on demand by the department that ingested it "
            f"or a client with the {AUDIT_ROLE} role",
            code="not_package_owner",
        )
    return rows[-1]


def _active(service: ArchiveService, package_id: str) -> ArchiveAuditRequestRow | None:
    with service.db.read_session() as session:
        return session.scalars(
            select(ArchiveAuditRequestRow).where(
                ArchiveAuditRequestRow.active_package == package_id
            )
        ).one_or_none()


def request_audit(
    service: ArchiveService, package_id: str, client: Client, reason: str | None, *, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Queue an audit of ``package_id`` asked for by ``client``: its view and True, or
    the view of the one queued or running already and False. Raises as
    :func:`check_auditor`, Conflict (``package_disposed``) when no version is left."""
    latest = check_auditor(service, package_id, client)
    if latest.disposed_at is not None:
        raise Conflict(f"package {package_id} was disposed of", code="package_disposed")
    running = _active(service, package_id)
    if running is not None:
        return audit_view(running), False
    row = ArchiveAuditRequestRow(
        id=uuid.uuid4().hex,
        package_id=package_id,
        active_package=package_id,
        requested_by=client.id,
        requested_at=now,
        reason=reason,
        status=AuditStatus.QUEUED.value,
    )
    try:
        with service.db.session() as session:
            session.add(row)
    except IntegrityError:
        # Asked at the same moment through another process: that one is the audit.
        running = _active(service, package_id)
        if running is None:
            raise
        return audit_view(running), False
    logger.info("fixity audit %s of package %s asked by %s", row.id, package_id, client.id)
    return audit_view(row), True


def find_audit(service: ArchiveService, package_id: str, audit_id: str) -> dict[str, Any]:
    """The view of one requested audit of ``package_id``; raises NotFound."""
    with service.db.read_session() as session:
        row = session.get(ArchiveAuditRequestRow, audit_id)
    if row is None or row.package_id != package_id:
        raise NotFound(f"no audit {audit_id} of package {package_id}", code="audit_not_found")
    return audit_view(row)


def audit_location(package_id: str, audit_id: str) -> str:
    """Where a requested audit is polled."""
    return f"/v1/archives/packages/{package_id}/audits/{audit_id}"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def audit_view(row: ArchiveAuditRequestRow) -> dict[str, Any]:
    """A requested audit as answered: where it is and, once finished, what it found."""
    view: dict[str, Any] = {
        "auditId": row.id,
        "packageId": row.package_id,
        "status": row.status,
        "location": audit_location(row.package_id, row.id),
        "requestedBy": row.requested_by,
        "requestedAt": _iso(row.requested_at),
        "reason": row.reason,
        "startedAt": _iso(row.started_at),
        "finishedAt": _iso(row.finished_at),
        "ok": None,
        "files": None,
        "bytes": None,
        "findings": [],
        "versions": [],
        "error": None,
    }
    if row.result_json is not None:
        view.update(json.loads(row.result_json))
    return view


def pending_audits(service: ArchiveService) -> list[str]:
    """Requested audits queued or running (stopped by a shutdown), oldest first."""
    with service.db.read_session() as session:
        return list(
            session.scalars(
                select(ArchiveAuditRequestRow.id)
                .where(ArchiveAuditRequestRow.active_package.is_not(None))
                .order_by(ArchiveAuditRequestRow.requested_at)
            )
        )


def _result_json(
    service: ArchiveService, package_id: str, result: AuditResult, now: datetime
) -> dict[str, Any]:
    rows = {row.version: row for row in service.package_rows(package_id)}
    versions = []
    for _, version in result.packages:
        findings = [f for f in result.findings if f.version == version]
        files = len(service.store.read_version(package_id, version).entries)
        report = fixity_report(rows[version].archival_code, findings, files, checked_at=now)
        versions.append({"version": version, "ok": not findings, "report": report.to_json()})
    return {
        "ok": result.ok,
        "files": result.files + result.resumed_files,
        "bytes": result.bytes,
        "findings": [finding.to_json() for finding in result.findings],
        "versions": versions,
    }


def _update(service: ArchiveService, audit_id: str, **values: Any) -> ArchiveAuditRequestRow:
    with service.db.session() as session:
        row = session.get(ArchiveAuditRequestRow, audit_id)
        if row is None:
            raise NotFound(f"no audit {audit_id}", code="audit_not_found")
        for name, value in values.items():
            setattr(row, name, value)
        return row


def run_requested_audit(
    service: ArchiveService,
    audit_id: str,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> AuditResult | None:
    """Run (or continue) the requested audit ``audit_id`` and keep its result; None if it
    failed (its error kept: a damaged checkpoint). Raises AuditInterrupted once ``stop``
    is set (it stays running, continued by the next call) and AuditBusy while another
    audit of the store runs (it stays queued)."""
    row = _update(service, audit_id)
    if row.active_package is None:
        return None
    if row.started_at is None:
        row = _update(service, audit_id, status=AuditStatus.RUNNING.value, started_at=now())
    try:
        result = run_audit(
            service,
            progress=progress,
            now=now,
            stop=stop,
            package_id=row.package_id,
            audit_id=row.id,
        )
    except (AuditInterrupted, AuditBusy):
        raise
    except CheckpointError as exc:
        logger.exception("requested fixity audit %s failed", audit_id)
        _update(
            service,
            audit_id,
            status=AuditStatus.FAILED.value,
            active_package=None,
            finished_at=now(),
            result_json=json.dumps({"error": str(exc)}, ensure_ascii=False),
        )
        return None
    finished = now()
    result_json = _result_json(service, row.package_id, result, finished)
    _update(
        service,
        audit_id,
        status=AuditStatus.FINISHED.value,
        active_package=None,
        finished_at=finished,
        result_json=json.dumps(result_json, ensure_ascii=False),
    )
    logger.info(
        "requested fixity audit %s of package %s: %d findings",
        audit_id,
        row.package_id,
        len(result.findings),
    )
    return result


__all__ = [
    "AUDIT_ROLE",
    "MAX_REASON",
    "AuditStatus",
    "audit_location",
    "audit_view",
    "check_auditor",
    "find_audit",
    "pending_audits",
    "request_audit",
    "run_requested_audit",
]
