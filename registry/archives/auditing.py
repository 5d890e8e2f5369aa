"""Scheduled and on-demand fixity audits of the archive store (:func:`archives.audit.audit_store`)
against the roots recorded and anchored at ingest. Every package version audited gets a
``fixity check`` custody event (anchored), success or failure with its findings; a failure
is logged, kept for the health answer (:func:`archive_health`) and POSTed to the webhook if
one is configured."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from archives.audit import LOCK_SUFFIX, AuditResult, FixityFinding, audit_store
from archives.custody import EventType, Outcome
from registry.archives.models import ArchiveAuditRow, ArchivePackageRow
from registry.archives.service import ArchiveService

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = ".audit-checkpoint"
"""The checkpoint of a running audit of the whole store, in the store's directory (an
audit of one package: this name, a dot and the audit's id)."""

LOCK_NAME = CHECKPOINT_NAME + LOCK_SUFFIX
"""The lock every audit of the store holds while it runs (one audit at a time)."""

WEBHOOK_TIMEOUT_S = 10.0
"""How long the webhook may take to answer."""


def anchored_roots(service: ArchiveService) -> dict[tuple[str, int], str]:
    """(package, version) → the root recorded (and anchored) at its ingest."""
    with service.db.read_session() as session:
        return {
            (row.package_id, row.version): row.root
            for row in session.scalars(
                select(ArchivePackageRow).where(ArchivePackageRow.disposed_at.is_(None))
            )
        }


def _notify(url: str, audit: AuditResult) -> None:
    try:
        httpx.post(
            url,
            json={
                "audit": audit.audit_id,
                "findings": [finding.to_json() for finding in audit.findings],
            },
            timeout=WEBHOOK_TIMEOUT_S,
        ).raise_for_status()
    except httpx.HTTPError:
        logger.exception("the fixity webhook %s could not be told", url)


def run_audit(
    service: ArchiveService,
    *,
    progress: Callable[[int, int], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: threading.Event | None = None,
    package_id: str | None = None,
    audit_id: str | None = None,
) -> AuditResult:
    """Audit every stored version (resuming an interrupted audit), record a fixity event
    per package version and the audit itself, and surface failures. Once ``stop`` is set
    the audit ends with AuditInterrupted, recording nothing; the next one resumes it.

    With ``package_id`` (and the ``audit_id`` asked for), only that package's versions,
    from a checkpoint of their own; the audit is then the caller's to record (it is not
    the store's last audit, which the schedule and the health answer read)."""
    started = now()
    root = service.store.root
    checkpoint = root / (CHECKPOINT_NAME if package_id is None else f"{CHECKPOINT_NAME}.{audit_id}")
    result = audit_store(
        service.store,
        checkpoint,
        anchored_roots=anchored_roots(service),
        processes=service.settings.processes,
        progress=progress,
        stop=stop,
        audit_id=audit_id,
        package_ids=None if package_id is None else {package_id},
        lock=root / LOCK_NAME,
    )
    by_package: dict[tuple[str, int], list[FixityFinding]] = {key: [] for key in result.packages}
    for finding in result.findings:
        by_package.setdefault((finding.package_id, finding.version), []).append(finding)
    finished = now()
    for (audited, version), findings in sorted(by_package.items()):
        detail: dict[str, Any] = {"audit": result.audit_id, "version": version}
        if findings:
            detail["findings"] = [finding.to_json() for finding in findings]
            for finding in findings:
                logger.error(
                    "fixity FAILED: package %s v%d %s %s (expected %s, found %s) %s",
                    audited,
                    version,
                    finding.path,
                    finding.kind.value,
                    finding.expected_sm3 or "-",
                    finding.actual_sm3 or "-",
                    finding.detail,
                )
        outcome = Outcome.FAILURE if findings else Outcome.SUCCESS
        service.record_events(
            audited,
            [(EventType.FIXITY_CHECK, outcome, "registry: fixity audit", detail)],
            now=finished,
        )
    if package_id is not None:
        _surface(service, result)
        return result
    with service.db.session() as session:
        session.add(
            ArchiveAuditRow(
                id=result.audit_id or uuid.uuid4().hex,
                started_at=started,
                finished_at=finished,
                files=result.files + result.resumed_files,
                bytes=result.bytes,
                ok=result.ok,
                findings_json=json.dumps(
                    [finding.to_json() for finding in result.findings], ensure_ascii=False
                ),
            )
        )
    _surface(service, result)
    return result


def _surface(service: ArchiveService, result: AuditResult) -> None:
    if not result.ok and service.settings.webhook_url:
        _notify(service.settings.webhook_url, result)


def archive_health(service: ArchiveService) -> dict[str, Any]:
    """The archive's health field: the last audit, whether it passed, what it found."""
    with service.db.read_session() as session:
        last = session.scalars(
            select(ArchiveAuditRow).order_by(ArchiveAuditRow.finished_at.desc()).limit(1)
        ).one_or_none()
        if last is None:
            return {"status": "not_audited", "lastAudit": None, "findings": []}
        return {
            "status": "ok" if last.ok else "fixity_failed",
            "lastAudit": {
                "id": last.id,
                "finishedAt": last.finished_at.isoformat(),
                "files": last.files,
            },
            "findings": json.loads(last.findings_json),
        }


__all__ = ["CHECKPOINT_NAME", "LOCK_NAME", "anchored_roots", "archive_health", "run_audit"]
