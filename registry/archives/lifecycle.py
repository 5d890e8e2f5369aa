"""What happens to a stored package after its ingest: a format migration (a new version
linked to the one before, 四性-checked, the old version kept) and its disposal at the end
of its retention period (with the approval, leaving a tombstone).

Done over HTTP, both belong to the department that ingested the package (403 for any
other) and carry its own signature: a migration's files and root are signed records of the
department, as at ingest; a disposal is one signed record committing to the package, the
approval and the roots destroyed (:func:`sdk.archive_bundle.disposal_commitment`). Each is
recorded as a custody event, signed by the archive and anchored like every record. The
archive's own tools may migrate without a department (the archive signs the new files).

A crash between the store and the database is finished by asking again: a version (or
tombstone) that reached the store with the same content is taken as it is."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select

from archives.custody import CustodyEvent, EventType, Outcome
from archives.description import parse_description
from archives.errors import ArchiveError, PackageExists
from archives.extraction import ExtractionLimits
from archives.four_properties import FourPropertyReport, Stage
from archives.ingest import (
    DisposalApproval,
    aip_entries,
    check_disposal,
    check_submission,
    dispose,
    package_id_for,
    store_version,
)
from archives.package import package_root
from archives.retention import PermanentRetention, RetentionNotExpired
from archives.store import Lineage, PackageVersion
from registry.archives.models import ArchiveEventRow, ArchivePackageRow
from registry.archives.service import ArchiveService
from registry.errors import Conflict, Forbidden, InvalidInput
from registry.intake import NewRecord
from registry.models import Client, Record
from registry.notarization import prepare_record
from registry.record_schemas import SignedRecordCreate
from sdk.archive_bundle import disposal_commitment, disposal_record_metadata

ARCHIVE_ZONE = ZoneInfo("Asia/Shanghai")
"""Where retention years turn: a period runs out at midnight China time."""


@dataclass(frozen=True)
class Department:
    """The department acting, with what it signed."""

    client: Client
    """Its client."""
    records: Mapping[str, Any]
    """Its signed records (a migration: one per stored file and ``#root``; a disposal:
    ``{"disposal": record}``)."""

    @property
    def agent(self) -> str:
        """As custody events name it."""
        return f"{self.client.name} ({self.client.uscc})"


@dataclass(frozen=True)
class MigrationAnswer:
    """What a migration stored."""

    stored: PackageVersion
    """The new version (its lineage names the one before)."""
    report: FourPropertyReport
    """Its 四性 report (stage: preservation)."""
    events: tuple[CustodyEvent, ...]
    """The custody events recorded."""


def _active_rows(service: ArchiveService, package_id: str) -> list[ArchivePackageRow]:
    rows = service.package_rows(package_id)
    if any(row.disposed_at is not None for row in rows):
        raise Conflict(f"package {package_id} was disposed of", code="package_disposed")
    return rows


def check_owner(service: ArchiveService, package_id: str, client: Client) -> None:
    """Raise Forbidden unless ``client`` ingested ``package_id`` (NotFound if there is no
    such package)."""
    owner = service.package_rows(package_id)[0].client_id
    if owner != client.id:
        raise Forbidden(
            f"package {package_id} belongs to the department that ingested it",
            code="not_package_owner",
        )


def _stored_migration(
    service: ArchiveService, package_id: str, version: int, root: str, lineage: Lineage
) -> PackageVersion | None:
    """The version a crash left in the store without its rows, if it is this migration;
    raises Conflict if another one is there."""
    if version not in service.store.versions(package_id):
        return None
    stored = service.store.read_version(package_id, version)
    if stored.root != root or stored.lineage != lineage:
        raise Conflict(f"package {package_id} v{version} exists", code="package_exists")
    return stored


def migrate(
    service: ArchiveService,
    package_id: str,
    migrated_bag: Path,
    *,
    tool: str,
    tool_version: str,
    parameters: dict[str, Any],
    now: datetime,
    department: Department | None = None,
    agent: str = "registry: format migration",
) -> MigrationAnswer:
    """Store ``migrated_bag`` (a zip, tar or directory: the output of a format migration)
    as the next version of ``package_id``, linked to the latest (tool, version and
    parameters recorded), after the 四性 check at preservation; the old version stays.
    Its files are signed by ``department`` (checked as at ingest) or by the archive.
    Raises IngestRefused (with the report), the domain's bag errors, InvalidInput for a
    bag of another package or records that do not match, Conflict."""
    previous = _active_rows(service, package_id)[-1]
    version = previous.version + 1
    limits = ExtractionLimits(max_total_bytes=service.settings.max_bag_bytes)
    with tempfile.TemporaryDirectory(prefix="lianxin-migrate-") as scratch:
        reading, report = check_submission(
            migrated_bag,
            Path(scratch),
            stage=Stage.PRESERVATION,
            now=now,
            processes=service.settings.processes,
            scanner=service.scanner,
            limits=limits,
            read_budget=service.settings.read_budget_s,
        )
        description = parse_description(reading.info)
        if package_id_for(description.fonds, description.archival_code) != package_id:
            raise InvalidInput(
                "the migrated bag describes another 全宗号 or 档号", code="migration_other_package"
            )
        entries, _ = aip_entries(reading)
        root = package_root(entries)
        if department is None:
            records = service.archive_records(package_id, version, entries, root)
        else:
            records = service.department_records(
                department.client, package_id, version, entries, root, department.records
            )
        lineage = Lineage(previous.version, previous.root, tool, tool_version, dict(parameters))
        stored = _stored_migration(service, package_id, version, root, lineage)
        if stored is None:
            try:
                stored = store_version(
                    service.store,
                    reading,
                    report,
                    package_id=package_id,
                    version=version,
                    lineage=lineage,
                )
            except PackageExists as exc:
                raise Conflict(str(exc), code="package_exists") from exc
    acting = agent if department is None else department.agent
    migration = (
        EventType.MIGRATION,
        Outcome.SUCCESS,
        acting,
        {"version": version, "root": stored.root, "reportSm3": stored.report_sm3}
        | lineage.to_json(),
    )
    changes = [migration, *service.check_events(report, "registry")]
    record_rows, event_rows, events = service.event_rows(
        service.history(package_id), package_id, changes, now
    )
    owner = department.client if department is not None else service.signer.client()
    service.store_rows(owner, stored, report, records, (record_rows, event_rows), now)
    return MigrationAnswer(stored, report, tuple(events))


def _disposal_record(
    service: ArchiveService,
    department: Department,
    package_id: str,
    approval: DisposalApproval,
    roots: list[str],
) -> tuple[NewRecord, str]:
    """The department's signed disposal record, checked: it commits to this package, this
    approval and these roots."""
    body = department.records.get("disposal")
    if not isinstance(body, dict) or set(department.records) != {"disposal"}:
        raise InvalidInput("sign one record: 'disposal'", code="archive_records_mismatch")
    try:
        payload = SignedRecordCreate.model_validate(body)
    except ValueError as exc:
        raise InvalidInput(f"record of the disposal: {exc}", code="invalid_record") from None
    chain_id = int(service.gateway.chain_id())
    record = prepare_record(department.client, payload, f"archive:{package_id}:disposal", chain_id)
    expected = disposal_commitment(package_id, approval.to_json(), roots)
    if record.values["digest"] != expected or payload.metadata != disposal_record_metadata(
        package_id
    ):
        raise InvalidInput(
            "the disposal record does not commit to this package, approval and its roots",
            code="archive_record_wrong",
        )
    return record, str(payload.metadata_salt)


def dispose_package(
    service: ArchiveService,
    package_id: str,
    approval: DisposalApproval,
    *,
    now: datetime,
    department: Department | None = None,
    agent: str = "registry: disposal",
) -> dict[str, Any]:
    """Destroy every version of ``package_id`` under ``approval`` once its retention
    period has run out (never one kept 永久), leave the tombstone, record the anchored
    disposal event; the file records and their proofs stay. Raises Conflict
    (``retention_permanent``, ``retention_not_expired``, ``package_disposed``),
    InvalidInput (an approval by who carries it out, a record that does not match); in
    every such case nothing is destroyed."""
    rows = _active_rows(service, package_id)
    acting = agent if department is None else department.agent
    roots = [row.root for row in rows]
    today = now.astimezone(ARCHIVE_ZONE).date()
    tombstone = service.store.tombstone(package_id)
    if tombstone is None:
        try:
            check_disposal(service.store, package_id, approval, carried_out_by=acting, today=today)
        except (PermanentRetention, RetentionNotExpired) as exc:
            raise Conflict(str(exc), code=exc.code) from exc
        except ArchiveError as exc:
            raise InvalidInput(str(exc), code="disposal_refused") from exc
    signed = (
        None
        if department is None
        else _disposal_record(service, department, package_id, approval, roots)
    )
    extra: dict[str, Any] = {}
    if signed is not None:
        extra = {
            "departmentRecord": signed[0].values["id"],
            "departmentCommitment": signed[0].values["digest"],
        }
    if tombstone is None:
        tombstone = dispose(
            service.store, package_id, approval, carried_out_by=acting, today=today, extra=extra
        )
    elif tombstone["approval"] != approval.to_json():
        # Destroyed before a crash kept it out of the database, under another approval.
        raise Conflict(f"package {package_id} was disposed of", code="package_disposed")
    detail = {
        "approval": approval.to_json(),
        "destroyedRoots": [version["root"] for version in tombstone["destroyed"]],
        "disposableFrom": tombstone["disposableFrom"],
        **extra,
    }
    change = (EventType.DISPOSAL, Outcome.SUCCESS, acting, detail)
    record_rows, event_rows, _ = service.event_rows(
        service.history(package_id), package_id, [change], now
    )
    if signed is not None:
        record_rows.insert(0, signed[0].values)
    with service.db.session() as session:
        session.execute(cast(Table, Record.__table__).insert(), record_rows)
        session.execute(cast(Table, ArchiveEventRow.__table__).insert(), event_rows)
        for row in session.scalars(
            select(ArchivePackageRow).where(ArchivePackageRow.package_id == package_id)
        ):
            row.disposed_at = now
    return tombstone


__all__ = [
    "ARCHIVE_ZONE",
    "Department",
    "MigrationAnswer",
    "check_owner",
    "dispose_package",
    "migrate",
]
