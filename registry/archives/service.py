"""E-archive use cases over the database, the chain gateway and the archive store: ingest
(the department's signed records checked against the entries computed here), custody
events (each signed by the archive, hash-chained per package, anchored) and the upload spool.
Plain functions on :class:`ArchiveService`; migration and disposal are in
:mod:`registry.archives.lifecycle`; the router and the command line only translate."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select

from archives.custody import CustodyEvent, EventType, Outcome, next_event
from archives.description import parse_description, parse_period
from archives.errors import PackageExists, PackageNotFound
from archives.extraction import ExtractionLimits
from archives.four_properties import FourPropertyReport, Stage, Verdict
from archives.hashing import sm3_hex
from archives.ingest import (
    aip_entries,
    check_submission,
    package_id_for,
    store_version,
)
from archives.package import ManifestEntry, package_root
from archives.report_pdf import render_report_pdf
from archives.spool import UploadSpool
from archives.store import LocalArchiveStore, PackageVersion
from archives.submission import ROOT_KEY, record_key
from archives.virus_scan import ClamdScanner, Scanner
from registry.archives.models import ArchiveEventRow, ArchiveFileRow, ArchivePackageRow
from registry.archives.settings import ArchiveSettings
from registry.archives.signing import ArchiveSigner
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.errors import Conflict, InvalidInput, NotFound
from registry.intake import NewRecord
from registry.models import Client, Record
from registry.notarization import prepare_record
from registry.record_schemas import SignedRecordCreate
from registry.settings import RegistrySettings
from sdk.archive_bundle import event_record_metadata, file_record_metadata, root_record_metadata

logger = logging.getLogger(__name__)

SPOOL_DIR = ".spool"
"""The upload spool, inside the archive store (a dot name: never taken for a package)."""

MAX_SUBMISSION_RECORDS = 200_000
"""Most signed records in one ingest (files plus the root)."""


@dataclass(frozen=True)
class IngestAnswer:
    """What an ingest stored."""

    package_id: str
    """The package."""
    version: int
    """Its version (1)."""
    root: str
    """Its root."""
    report: FourPropertyReport
    """The 四性 report of ingest."""
    events: tuple[CustodyEvent, ...]
    """The custody events recorded."""


class ArchiveService:
    """The archive of one registry: its store, the archive's signer, the scanner."""

    def __init__(
        self,
        db: Database,
        gateway: ChainGateway,
        registry_settings: RegistrySettings,
        settings: ArchiveSettings | None = None,
    ) -> None:
        """The archive over ``db`` and ``gateway``, storing under ``settings.store_dir``
        (default: the registry's data dir + ``archives``)."""
        self.db = db
        self.gateway = gateway
        self.settings = settings or ArchiveSettings()
        root = self.settings.store_dir or Path(registry_settings.data_dir) / "archives"
        self.store = LocalArchiveStore(root)
        self.signer = ArchiveSigner(db, gateway)
        self.spool = UploadSpool(
            root / SPOOL_DIR,
            max_bytes=self.settings.max_upload_bytes,
            ttl_s=self.settings.upload_ttl_s,
            max_pending=self.settings.max_pending_uploads,
        )
        self.scanner: Scanner | None = (
            None if self.settings.clamd is None else ClamdScanner(self.settings.clamd)
        )

    # -- records ----------------------------------------------------------------------------

    def department_records(
        self,
        client: Client,
        package_id: str,
        version: int,
        entries: Sequence[ManifestEntry],
        root: str,
        submission: Mapping[str, Any],
    ) -> dict[str, tuple[NewRecord, str]]:
        expected = {entry.path: entry.sm3 for entry in entries} | {ROOT_KEY: root}
        if len(submission) > MAX_SUBMISSION_RECORDS or set(submission) != set(expected):
            missing = sorted(set(expected) - set(submission))[:5]
            extra = sorted(set(submission) - set(expected))[:5]
            raise InvalidInput(
                f"sign one record per stored file and the root (missing {missing}, "
                f"unexpected {extra})",
                code="archive_records_mismatch",
            )
        chain_id = int(self.gateway.chain_id())
        prepared: dict[str, tuple[NewRecord, str]] = {}
        for name, body in submission.items():
            try:
                payload = SignedRecordCreate.model_validate(body)
            except ValueError as exc:
                raise InvalidInput(f"record of {name}: {exc}", code="invalid_record") from None
            record = prepare_record(
                client, payload, record_key(package_id, version, name), chain_id
            )
            metadata = (
                root_record_metadata(package_id, version)
                if name == ROOT_KEY
                else file_record_metadata(package_id, version, name)
            )
            if record.values["digest"] != expected[name] or payload.metadata != metadata:
                raise InvalidInput(
                    f"the record of {name} does not commit to its SM3 and metadata",
                    code="archive_record_wrong",
                )
            prepared[name] = (record, str(payload.metadata_salt))
        return prepared

    def archive_records(
        self, package_id: str, version: int, entries: Sequence[ManifestEntry], root: str
    ) -> dict[str, tuple[NewRecord, str]]:
        records: dict[str, tuple[NewRecord, str]] = {}
        for entry in entries:
            records[entry.path] = self.signer.record(
                entry.sm3,
                file_record_metadata(package_id, version, entry.path),
                record_key(package_id, version, entry.path),
            )
        records[ROOT_KEY] = self.signer.record(
            root,
            root_record_metadata(package_id, version),
            record_key(package_id, version, ROOT_KEY),
        )
        return records

    # -- events -----------------------------------------------------------------------------

    def history(self, package_id: str) -> list[CustodyEvent]:
        """The package's custody events, in order."""
        with self.db.read_session() as session:
            rows = session.scalars(
                select(ArchiveEventRow)
                .where(ArchiveEventRow.package_id == package_id)
                .order_by(ArchiveEventRow.sequence)
            ).all()
            return [CustodyEvent.from_json(json.loads(row.event_json)) for row in rows]

    def event_rows(
        self,
        history: list[CustodyEvent],
        package_id: str,
        changes: Sequence[tuple[EventType, Outcome, str, dict[str, Any]]],
        now: datetime,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[CustodyEvent]]:
        record_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        events: list[CustodyEvent] = []
        chain = list(history)
        for event_type, outcome, agent, detail in changes:
            event = next_event(
                chain, package_id, event_type, at=now, agent=agent, outcome=outcome, detail=detail
            )
            chain.append(event)
            events.append(event)
            record, salt = self.signer.record(
                event.event_hash,
                event_record_metadata(package_id),
                f"archive-event:{package_id}:{event.sequence}",
            )
            record_rows.append(record.values)
            event_rows.append(
                {
                    "package_id": package_id,
                    "sequence": event.sequence,
                    "event_type": event.event_type.value,
                    "outcome": event.outcome.value,
                    "at": now,
                    "event_json": json.dumps(event.to_json(), ensure_ascii=False),
                    "event_hash": event.event_hash,
                    "record_id": record.values["id"],
                    "metadata_salt": salt,
                }
            )
        return record_rows, event_rows, events

    def record_events(
        self,
        package_id: str,
        changes: Sequence[tuple[EventType, Outcome, str, dict[str, Any]]],
        *,
        now: datetime,
    ) -> list[CustodyEvent]:
        """Append events to the package's history (each signed and queued for anchoring),
        in one transaction. Raises CustodyError if one cannot follow."""
        history = self.history(package_id)
        if not history:
            raise NotFound(f"no archive package {package_id}", code="package_not_found")
        record_rows, event_rows, events = self.event_rows(history, package_id, changes, now)
        with self.db.session() as session:
            session.execute(cast(Table, Record.__table__).insert(), record_rows)
            session.execute(cast(Table, ArchiveEventRow.__table__).insert(), event_rows)
        return events

    # -- ingest, migration, disposal --------------------------------------------------------

    def store_rows(
        self,
        client: Client,
        stored: PackageVersion,
        report: FourPropertyReport,
        records: Mapping[str, tuple[NewRecord, str]],
        events: tuple[list[dict[str, Any]], list[dict[str, Any]]],
        now: datetime,
    ) -> None:
        formed = parse_period(str(stored.description["形成时间"]))
        record_rows = [record.values for record, _ in records.values()] + events[0]
        file_rows = [
            {
                "package_id": stored.package_id,
                "version": stored.version,
                "path": entry.path,
                "sm3": entry.sm3,
                "size": entry.size,
                "record_id": records[entry.path][0].values["id"],
                "metadata_salt": records[entry.path][1],
            }
            for entry in stored.entries
        ]
        root_record, root_salt = records[ROOT_KEY]
        with self.db.session() as session:
            session.execute(cast(Table, Record.__table__).insert(), record_rows)
            session.add(
                ArchivePackageRow(
                    package_id=stored.package_id,
                    version=stored.version,
                    fonds=str(stored.description["全宗号"]),
                    archival_code=str(stored.description["档号"]),
                    title=str(stored.description["题名"]),
                    creator=str(stored.description["责任者"]),
                    formed_first=formed.first,
                    formed_last=formed.last,
                    retention=str(stored.description["保管期限"]),
                    classification=str(stored.description["密级"]),
                    item_count=int(stored.description["件数"]),
                    root=stored.root,
                    report_sm3=stored.report_sm3,
                    report_json=report.canonical_json().decode(),
                    lineage_json=None
                    if stored.lineage is None
                    else json.dumps(stored.lineage.to_json(), ensure_ascii=False),
                    client_id=client.id,
                    root_record_id=root_record.values["id"],
                    root_metadata_salt=root_salt,
                    created_at=now,
                )
            )
            session.execute(cast(Table, ArchiveFileRow.__table__).insert(), file_rows)
            if events[1]:
                session.execute(cast(Table, ArchiveEventRow.__table__).insert(), events[1])

    @staticmethod
    def check_events(
        report: FourPropertyReport, agent: str
    ) -> list[tuple[EventType, Outcome, str, dict[str, Any]]]:
        def outcome(code: str) -> Outcome:
            verdict = report.item(code).verdict
            if verdict is Verdict.PASS:
                return Outcome.SUCCESS
            return Outcome.FAILURE if verdict is Verdict.FAIL else Outcome.NOT_CHECKED

        return [
            (EventType.VALIDATION, outcome("authenticity.digests"), agent, {"tool": "bagit"}),
            (
                EventType.FORMAT_IDENTIFICATION,
                outcome("usability.formats"),
                agent,
                {"tool": "puremagic", "evidence": list(report.item("usability.formats").evidence)},
            ),
            (
                EventType.VIRUS_CHECK,
                outcome("security.virus"),
                agent,
                {"evidence": list(report.item("security.virus").evidence)},
            ),
        ]

    def ingest(
        self, client: Client, source: Path, submission: Mapping[str, Any], *, now: datetime
    ) -> IngestAnswer:
        """Check the bag at ``source`` and the department's signed records, store the AIP,
        and record it with its ingest events. Raises the domain's errors (UnsafeArchive,
        BagUnreadable, ClassifiedMaterial, IngestRefused), Conflict if the 档号 is stored,
        InvalidInput for records that do not match."""
        limits = ExtractionLimits(max_total_bytes=self.settings.max_bag_bytes)
        with tempfile.TemporaryDirectory(prefix="lianxin-archive-") as scratch:
            reading, report = check_submission(
                source,
                Path(scratch),
                stage=Stage.INGEST,
                now=now,
                processes=self.settings.processes,
                scanner=self.scanner,
                limits=limits,
                read_budget=self.settings.read_budget_s,
            )
            description = parse_description(reading.info)
            package_id = package_id_for(description.fonds, description.archival_code)
            if self.history(package_id):
                raise Conflict(
                    f"档号 {description.archival_code} is stored already", code="package_exists"
                )
            entries, _ = aip_entries(reading)
            root = package_root(entries)
            records = self.department_records(client, package_id, 1, entries, root, submission)
            agent = f"{client.name} ({client.uscc})"
            ingestion = (
                EventType.INGESTION,
                Outcome.SUCCESS,
                agent,
                {
                    "version": 1,
                    "root": root,
                    "reportSm3": "",
                    "reportPdfSm3": "",
                    "files": len(entries),
                },
            )
            if self.store.versions(package_id):
                # Stored before a crash kept it out of the database: the same bag finishes
                # its ingest with the report it was stored with; another bag is refused.
                stored = self.store.read_version(package_id, 1)
                if stored.root != root:
                    raise Conflict(
                        f"档号 {description.archival_code} is stored already",
                        code="package_exists",
                    )
                report = FourPropertyReport.from_json(
                    json.loads(self.store.read_report(package_id, 1))
                )
            else:
                try:
                    stored = store_version(
                        self.store, reading, report, package_id=package_id, version=1, lineage=None
                    )
                except PackageExists as exc:
                    raise Conflict(str(exc), code="package_exists") from exc
        ingestion[3]["reportSm3"] = stored.report_sm3
        ingestion[3]["reportPdfSm3"] = sm3_hex(render_report_pdf(report, stored.description))
        changes = [ingestion, *self.check_events(report, "registry")]
        record_rows, event_rows, events = self.event_rows([], package_id, changes, now)
        self.store_rows(client, stored, report, records, (record_rows, event_rows), now)
        logger.info("archive package %s ingested (root %s)", package_id, root)
        return IngestAnswer(package_id, 1, root, report, tuple(events))

    def package_rows(self, package_id: str) -> list[ArchivePackageRow]:
        """Every version's row of a package; raises NotFound."""
        with self.db.read_session() as session:
            rows = list(
                session.scalars(
                    select(ArchivePackageRow)
                    .where(ArchivePackageRow.package_id == package_id)
                    .order_by(ArchivePackageRow.version)
                )
            )
        if not rows:
            raise NotFound(f"no archive package {package_id}", code="package_not_found")
        return rows


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


__all__ = [
    "ArchiveService",
    "IngestAnswer",
    "PackageNotFound",
    "utc_now",
]
