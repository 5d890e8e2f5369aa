"""Finding and handing out archives: the catalogue search (档号, 题名, 全宗, dates) and the
access copy (DIP) with the proof of every file, each handed-out copy logged as an anchored
access event.

**Personal material.** Where a package concerns a person, access must pass the data-sharing
authorization gateway and show in that person's data tracker. That gateway is its own
domain; this module calls :data:`AccessCheck` before every export so the gateway plugs in
there (the default, :func:`allow_non_personal`, lets non-personal material through and
refuses packages whose description marks them personal until it is plugged in)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from archives.custody import EventType, Outcome
from archives.dip import export_dip
from archives.errors import PackageNotFound
from registry.archives.models import ArchiveEventRow, ArchiveFileRow, ArchivePackageRow
from registry.archives.service import ArchiveService
from registry.db import Database
from registry.errors import Forbidden, NotFound, ServiceUnavailable
from registry.models import Batch, Record
from registry.notarization import VerifyCaches, bundle_for
from sdk.archive_bundle import event_record_metadata, file_record_metadata, root_record_metadata

MAX_RESULTS = 200
"""Most packages one search answers."""

PERSONAL_MARK = "个人"
"""A 题名 or 责任者 naming personal material (人事, 个人) needs the authorization gateway."""


@dataclass(frozen=True)
class AccessRequest:
    """Who asks for an access copy, and why."""

    requester: str
    """The requesting department or person (as logged)."""
    purpose: str
    """Why (查档 purpose, logged with the access event)."""


AccessCheck = Callable[[ArchivePackageRow, AccessRequest], None]
"""Raises Forbidden to refuse an access; the authorization gateway's hook."""


def allow_non_personal(package: ArchivePackageRow, request: AccessRequest) -> None:
    """Let non-personal packages through; refuse personal ones (until the authorization
    gateway is plugged in as the :data:`AccessCheck`)."""
    if PERSONAL_MARK in package.title or PERSONAL_MARK in package.creator:
        raise Forbidden(
            "this package concerns a person: access goes through the authorization gateway",
            code="authorization_required",
        )


def search(
    db: Database,
    *,
    archival_code: str | None = None,
    title: str | None = None,
    fonds: str | None = None,
    formed_from: date | None = None,
    formed_to: date | None = None,
    limit: int = 50,
) -> list[ArchivePackageRow]:
    """Packages (latest version each, not disposed) matching every given criterion: 档号
    prefix, 题名 substring, 全宗号, 形成时间 overlapping [from, to]."""
    query = select(ArchivePackageRow).where(ArchivePackageRow.disposed_at.is_(None))
    if archival_code:
        query = query.where(ArchivePackageRow.archival_code.startswith(archival_code))
    if title:
        query = query.where(ArchivePackageRow.title.contains(title))
    if fonds:
        query = query.where(ArchivePackageRow.fonds == fonds)
    if formed_from:
        query = query.where(ArchivePackageRow.formed_last >= formed_from)
    if formed_to:
        query = query.where(ArchivePackageRow.formed_first <= formed_to)
    query = query.order_by(ArchivePackageRow.archival_code, ArchivePackageRow.version.desc())
    latest: dict[str, ArchivePackageRow] = {}
    with db.read_session() as session:
        for row in session.scalars(query.limit(min(limit, MAX_RESULTS) * 4)):
            latest.setdefault(row.package_id, row)
    return list(latest.values())[: min(limit, MAX_RESULTS)]


def _record(
    service: ArchiveService, caches: VerifyCaches, record_id: str, salt: str, meta: dict[str, Any]
) -> dict[str, Any]:
    with service.db.read_session() as session:
        record = session.scalars(select(Record).where(Record.id == record_id)).one()
        batch = None if record.batch_id is None else session.get(Batch, record.batch_id)
    bundle = bundle_for(service.db, service.gateway, caches, record, batch)
    if bundle is None:
        raise ServiceUnavailable(
            "the package is not anchored yet (or the node cannot be read): try again",
            code="not_anchored",
        )
    return {"metadata": meta, "metadataSalt": salt, "bundle": bundle.to_json()}


def export_access_copy(
    service: ArchiveService,
    caches: VerifyCaches,
    package_id: str,
    target: Path,
    request: AccessRequest,
    *,
    now: datetime,
    version: int | None = None,
    check: AccessCheck = allow_non_personal,
) -> Path:
    """Write the DIP of the package's latest (or given) version to ``target`` and log the
    access as a custody event. Raises NotFound, Forbidden (the access check),
    ServiceUnavailable (not anchored yet)."""
    rows = service.package_rows(package_id)
    row = rows[-1] if version is None else next((r for r in rows if r.version == version), None)
    if row is None or row.disposed_at is not None:
        raise NotFound(f"no archive package {package_id} to access", code="package_not_found")
    check(row, request)
    service.record_events(
        package_id,
        [
            (
                EventType.ACCESS,
                Outcome.SUCCESS,
                request.requester,
                {"version": row.version, "purpose": request.purpose, "kind": "DIP"},
            )
        ],
        now=now,
    )
    with service.db.read_session() as session:
        files = list(
            session.scalars(
                select(ArchiveFileRow).where(
                    ArchiveFileRow.package_id == package_id,
                    ArchiveFileRow.version == row.version,
                )
            )
        )
        event_rows = list(
            session.scalars(
                select(ArchiveEventRow)
                .where(ArchiveEventRow.package_id == package_id)
                .order_by(ArchiveEventRow.sequence)
            )
        )
    file_records = {
        f.path: _record(
            service,
            caches,
            f.record_id,
            f.metadata_salt,
            file_record_metadata(package_id, row.version, f.path),
        )
        for f in files
    }
    root_record = _record(
        service,
        caches,
        row.root_record_id,
        row.root_metadata_salt,
        root_record_metadata(package_id, row.version),
    )
    events = []
    for event_row in event_rows:
        anchored: dict[str, Any] | None
        try:
            anchored = _record(
                service,
                caches,
                event_row.record_id,
                event_row.metadata_salt,
                event_record_metadata(package_id),
            )
        except ServiceUnavailable:
            # The newest events (this access among them) anchor after the copy is made:
            # they travel linked by hash, without a proof yet.
            anchored = None
        events.append({"event": json.loads(event_row.event_json), "record": anchored})
    try:
        return export_dip(
            service.store,
            package_id,
            row.version,
            target,
            chain_id=int(service.gateway.chain_id()),
            file_records=file_records,
            root_record=root_record,
            events=events,
        )
    except PackageNotFound as exc:
        raise NotFound(str(exc), code="package_not_found") from exc


def latest_package(db: Database, package_id: str) -> ArchivePackageRow | None:
    """The latest version's row of a package not disposed of; None if there is none."""
    with db.read_session() as session:
        row = session.scalars(
            select(ArchivePackageRow)
            .where(ArchivePackageRow.package_id == package_id)
            .order_by(ArchivePackageRow.version.desc())
            .limit(1)
        ).first()
        if row is None or row.disposed_at is not None:
            return None
        session.expunge(row)
        return row


def package_files(db: Database, package_id: str, version: int) -> list[ArchiveFileRow]:
    """The files of one version of a package, by path."""
    with db.read_session() as session:
        rows = list(
            session.scalars(
                select(ArchiveFileRow)
                .where(ArchiveFileRow.package_id == package_id, ArchiveFileRow.version == version)
                .order_by(ArchiveFileRow.path)
            )
        )
        for row in rows:
            session.expunge(row)
        return rows


def stored_file(service: ArchiveService, row: ArchivePackageRow, path: str) -> ArchiveFileRow:
    """The stored file ``path`` of the package version ``row`` (a path its manifest
    lists, nothing else in the bag); raises NotFound."""
    with service.db.read_session() as session:
        found = session.get(ArchiveFileRow, (row.package_id, row.version, path))
        if found is not None:
            session.expunge(found)
    if found is None:
        raise NotFound(f"no file {path!r} in package {row.package_id}", code="file_not_found")
    return found


def file_location(service: ArchiveService, file: ArchiveFileRow) -> Path:
    """Where the stored file is on disk; raises NotFound if it is not there (or its path
    would lead out of the package's bag)."""
    try:
        bag = service.store.bag_path(file.package_id, file.version).resolve()
    except PackageNotFound as exc:
        raise NotFound(str(exc), code="package_not_found") from exc
    target = (bag / file.path).resolve()
    if not target.is_relative_to(bag) or not target.is_file():
        raise NotFound(f"file {file.path!r} is not in the store", code="file_not_found")
    return target


__all__ = [
    "AccessCheck",
    "AccessRequest",
    "allow_non_personal",
    "export_access_copy",
    "file_location",
    "latest_package",
    "package_files",
    "search",
    "stored_file",
]
