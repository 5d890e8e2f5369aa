"""Ingest, migration and disposal of packages in an :class:`~archives.store.ArchiveStore`.

Ingest: unpack (a zip or tar is extracted with bounds; a directory is read in place), read
and validate the bag through bagit, refuse classified material, run the 四性 check (a FAIL
refuses the package, the report says why), then store version 1 with an SM3 payload
manifest and an SM3 tag manifest added, and its package root computed over every file's
SM3 entry. Migration stores a new version (a new bag made by a tool) linked to the one
before; the old version stays. Disposal, with its approval, removes the files and leaves a
tombstone with the entries and roots of what was destroyed."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from archives.bag_reader import BagReading, read_bag
from archives.description import check_classification, parse_description, parse_period
from archives.errors import ArchiveError, PackageExists, PackageNotFound
from archives.extraction import ExtractionLimits, archive_kind, extract_archive
from archives.four_properties import FourPropertyReport, Stage, check_package
from archives.hashing import sm3_file, sm3_hex
from archives.package import ManifestEntry, package_root
from archives.retention import check_disposable
from archives.store import ArchiveStore, Lineage, PackageVersion
from archives.virus_scan import Scanner
from sdk.archive_entries import FileEntry, package_id_for, stored_bag_entries


class IngestRefused(ArchiveError):
    """The 四性 check failed; ``report`` holds every finding."""

    code = "ingest_refused"

    def __init__(self, report: FourPropertyReport) -> None:
        reasons = "; ".join(
            f"{item.name}: {item.evidence[0] if item.evidence else ''}" for item in report.failed
        )
        super().__init__(f"the package fails the four-property check: {reasons}")
        self.report = report


@dataclass(frozen=True)
class DisposalApproval:
    """The decision that allows destroying a package (鉴定销毁审批)."""

    approval_id: str
    """The approval document's number."""
    approved_by: str
    """Who approved (not the one who carries it out)."""
    approved_at: datetime
    """When."""
    reason: str
    """Why (e.g. 保管期限届满, 经鉴定无保存价值)."""

    def to_json(self) -> dict[str, str]:
        """As recorded in the tombstone and the disposal event."""
        return {
            "approvalId": self.approval_id,
            "approvedBy": self.approved_by,
            "approvedAt": self.approved_at.astimezone(UTC).isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class StoredOutcome:
    """A stored version and the check that admitted it."""

    version: PackageVersion
    """What was stored."""
    report: FourPropertyReport
    """Its 四性 report."""


def _tag_files(root: Path) -> list[str]:
    names: list[str] = []
    for directory, subdirectories, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        if relative.parts[:1] == ("data",):
            subdirectories[:] = []
            continue
        if relative == Path("."):
            subdirectories[:] = [d for d in subdirectories if d != "data"]
        names.extend((relative / name).as_posix() for name in files)
    return sorted(names)


def aip_entries(reading: BagReading) -> tuple[list[ManifestEntry], dict[str, str]]:
    """Every file of the stored bag with its SM3, and the tag files to add so it has an SM3
    payload manifest and an SM3 tag manifest (:func:`sdk.archive_entries.stored_bag_entries`,
    what the department signs too)."""
    known = {f.path: f for f in reading.files}
    payload = [FileEntry(f.path, f.sm3, f.size) for f in reading.payload]
    tags: dict[str, FileEntry] = {}
    for name in _tag_files(reading.root):
        found = known.get(name)
        if found is not None:
            tags[name] = FileEntry(name, found.sm3, found.size)
        else:
            digest, size = sm3_file(reading.root / name)
            tags[name] = FileEntry(name, digest, size)
    entries, extra = stored_bag_entries(payload, tags)
    return [ManifestEntry(*entry) for entry in entries], extra


def _open_bag(source: Path, workdir: Path, limits: ExtractionLimits | None) -> Path:
    if archive_kind(source) == "directory":
        return source
    return extract_archive(source, workdir / "unpacked", limits)


def store_version(
    store: ArchiveStore,
    reading: BagReading,
    report: FourPropertyReport,
    *,
    package_id: str,
    version: int,
    lineage: Lineage | None,
) -> PackageVersion:
    """Store a checked bag as ``version`` of ``package_id`` (SM3 manifests added)."""
    description = parse_description(reading.info)
    entries, extra = aip_entries(reading)
    stored = PackageVersion(
        package_id=package_id,
        version=version,
        entries=tuple(entries),
        root=package_root(entries),
        description=description.to_json(),
        report_sm3=sm3_hex(report.canonical_json()),
        lineage=lineage,
    )
    store.write_version(stored, reading.root, report.canonical_json(), extra_tag_files=extra)
    return stored


def check_submission(
    source: Path,
    workdir: Path,
    *,
    stage: Stage,
    now: datetime,
    processes: int = 2,
    scanner: Scanner | None = None,
    limits: ExtractionLimits | None = None,
    read_budget: float | None = None,
) -> tuple[BagReading, FourPropertyReport]:
    """Unpack (into ``workdir``) and read the bag at ``source``, refuse classified
    material, and run the 四性 check at ``stage``; raises IngestRefused if an item fails.
    Its payload files are opened within ``read_budget`` seconds in all
    (:data:`archives.usability.READ_BUDGET_SECONDS` if None); those it leaves unread make
    the usability item NOT_CHECKED, which refuses nothing. Nothing is stored."""
    root = _open_bag(source, workdir, limits)
    reading = read_bag(root, processes=processes, read_budget=read_budget)
    check_classification(reading.info)
    report = check_package(reading, stage=stage, now=now, scanner=scanner)
    if report.failed:
        raise IngestRefused(report)
    return reading, report


def ingest(
    source: Path,
    store: ArchiveStore,
    *,
    now: datetime,
    processes: int = 2,
    scanner: Scanner | None = None,
    limits: ExtractionLimits | None = None,
    read_budget: float | None = None,
) -> StoredOutcome:
    """Ingest the bag at ``source`` (directory, zip or tar) as version 1 of its package
    (``read_budget``: as :func:`check_submission`'s). Raises UnsafeArchive, BagUnreadable,
    ClassifiedMaterial, IngestRefused (with the report) or PackageExists; nothing is
    stored then."""
    with tempfile.TemporaryDirectory(prefix="lianxin-ingest-") as scratch:
        reading, report = check_submission(
            source,
            Path(scratch),
            stage=Stage.INGEST,
            now=now,
            processes=processes,
            scanner=scanner,
            limits=limits,
            read_budget=read_budget,
        )
        description = parse_description(reading.info)
        package_id = package_id_for(description.fonds, description.archival_code)
        if store.versions(package_id):
            raise PackageExists(f"档号 {description.archival_code} is stored already")
        stored = store_version(
            store, reading, report, package_id=package_id, version=1, lineage=None
        )
        return StoredOutcome(stored, report)


def migrate(
    store: ArchiveStore,
    package_id: str,
    migrated_bag: Path,
    *,
    tool: str,
    tool_version: str,
    parameters: dict[str, Any],
    now: datetime,
    processes: int = 2,
    scanner: Scanner | None = None,
    read_budget: float | None = None,
) -> StoredOutcome:
    """Store ``migrated_bag`` (the output of a format migration) as the next version of
    ``package_id``, linked to the latest (tool, version, parameters recorded). It must
    describe the same 全宗号 and 档号 and pass the 四性 check (``read_budget``: as
    :func:`check_submission`'s); the old version stays."""
    versions = store.versions(package_id)
    previous = store.read_version(package_id, versions[-1] if versions else 0)
    with tempfile.TemporaryDirectory(prefix="lianxin-migrate-") as scratch:
        reading, report = check_submission(
            migrated_bag,
            Path(scratch),
            stage=Stage.PRESERVATION,
            now=now,
            processes=processes,
            scanner=scanner,
            limits=None,
            read_budget=read_budget,
        )
        description = parse_description(reading.info)
        if package_id_for(description.fonds, description.archival_code) != package_id:
            raise ArchiveError("the migrated bag describes another 全宗号 or 档号")
        lineage = Lineage(
            previous_version=previous.version,
            previous_root=previous.root,
            tool=tool,
            tool_version=tool_version,
            parameters=parameters,
        )
        stored = store_version(
            store,
            reading,
            report,
            package_id=package_id,
            version=previous.version + 1,
            lineage=lineage,
        )
        return StoredOutcome(stored, report)


def check_disposal(
    store: ArchiveStore,
    package_id: str,
    approval: DisposalApproval,
    *,
    carried_out_by: str,
    today: date,
) -> date:
    """Whether ``package_id`` may be destroyed under ``approval`` on ``today``: the
    approver is not the one who carries it out, and the retention period of its latest
    version has run out (a 永久 package never); returns the day it became disposable.
    Raises ArchiveError (PermanentRetention, RetentionNotExpired, PackageNotFound)."""
    if approval.approved_by.strip() == carried_out_by.strip() or not approval.approval_id:
        raise ArchiveError("disposal needs an approval by someone other than who carries it out")
    versions = store.versions(package_id)
    if not versions:
        raise PackageNotFound(f"no package {package_id}")
    description = store.read_version(package_id, versions[-1]).description
    return check_disposable(
        str(description["保管期限"]), parse_period(str(description["形成时间"])), today
    )


def dispose(
    store: ArchiveStore,
    package_id: str,
    approval: DisposalApproval,
    *,
    carried_out_by: str,
    today: date,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Destroy every version of ``package_id`` under ``approval`` and return the tombstone
    left in its place: the approval, who carried it out, when the retention period ran
    out, ``extra`` (e.g. the department's signed disposal record) and each version's root
    and entries (what was destroyed, provably). Refused, with nothing destroyed, as
    :func:`check_disposal` says."""
    disposable = check_disposal(
        store, package_id, approval, carried_out_by=carried_out_by, today=today
    )
    destroyed = [store.read_version(package_id, v).to_json() for v in store.versions(package_id)]
    tombstone = {
        "packageId": package_id,
        "approval": approval.to_json(),
        "carriedOutBy": carried_out_by,
        "disposableFrom": disposable.isoformat(),
        **(extra or {}),
        "destroyed": destroyed,
    }
    store.dispose(package_id, tombstone)
    return tombstone


def remove_scratch(path: Path) -> None:
    """Remove a scratch directory made for an upload."""
    shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "DisposalApproval",
    "IngestRefused",
    "StoredOutcome",
    "aip_entries",
    "check_disposal",
    "check_submission",
    "dispose",
    "ingest",
    "migrate",
    "package_id_for",
    "store_version",
]
