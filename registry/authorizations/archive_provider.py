"""E-archives behind the gateway: a package's description and file list, and a file's
content, for a department an authorization names, within its scope.

**Whom a package is about.** The archival description (全宗号, 档号, 题名, 责任者, …) names
no subject, so a department ingesting a package about one enterprise or one citizen says so
at ingest (``subject``: kind and USCC or resident ID, check character verified). Only the
subject's keyed blind index is kept (``archive_subjects``), for enterprises and citizens
alike: never the identifier. A package recorded with no subject is about no one, and no
authorization reaches it (the gateway refuses it as ``subject_mismatch``). The gateway
matches the package's index against the cited authorization's: equal, the read is about
the authorization's subject.

**Items.** ``archive`` grants every package of the subject; ``archive.document`` (文书档案)
only packages whose 档号 names the 档案门类代码 ``WS`` (DA/T 13:
全宗号-门类代码·年度-保管期限-机构-件号). A read is decided and logged under the most
specific item the package belongs to, so a grant of one class never reaches another.

**Resources.** ``<package id>``: the latest version's description and file list;
``<package id>/<path>``: one listed file (the file route streams its content)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from authorizations.errors import InvalidTerms
from authorizations.terms import SubjectKind, canonical_subject
from registry.archives.access import file_location, latest_package, package_files, stored_file
from registry.archives.models import ArchiveFileRow, ArchivePackageRow
from registry.archives.service import ArchiveService
from registry.authorizations.providers import SubjectRef
from registry.authorizations.signing import RegistrySigner
from registry.authorizations.trail_models import ArchiveSubjectRow
from registry.db import Database
from registry.errors import Conflict, InvalidInput, NotFound

ROOT = "archive"
"""The top-level item this provider serves."""

CLASS_ITEMS = {"WS": "archive.document"}
"""档案门类代码 → the catalogue item of that class."""


class ArchiveSubjectIn(BaseModel):
    """Whom an ingested package is about, if it is about one subject."""

    model_config = ConfigDict(extra="forbid")

    kind: SubjectKind = Field(description="enterprise or citizen")
    id: str = Field(min_length=18, max_length=18, description="USCC or resident ID")


@dataclass(frozen=True)
class BlindSubject:
    """A subject known only by its blind index."""

    kind: str
    index: str


def subject_index_of(signer: RegistrySigner, subject: ArchiveSubjectIn) -> BlindSubject:
    """The blind index of ``subject``; raises InvalidInput (422 ``invalid_subject``) for
    an identifier whose form or check character is wrong."""
    try:
        identifier = canonical_subject(subject.kind, subject.id)
    except InvalidTerms as exc:
        raise InvalidInput(str(exc), code="invalid_subject") from None
    return BlindSubject(subject.kind.value, signer.subject_index(subject.kind.value, identifier))


def record_archive_subject(
    db: Database, package_id: str, subject: BlindSubject, client_id: str
) -> None:
    """Record whom package ``package_id`` is about; raises Conflict if it is recorded."""
    try:
        with db.session() as session:
            session.add(
                ArchiveSubjectRow(
                    package_id=package_id,
                    subject_kind=subject.kind,
                    subject_index=subject.index,
                    recorded_by=client_id,
                    recorded_at=int(time.time()),
                )
            )
    except IntegrityError:
        raise Conflict(
            f"the subject of package {package_id} is recorded", code="subject_recorded"
        ) from None


def archive_class(archival_code: str) -> str | None:
    """The 档案门类代码 of a 档号 (its second part, before ``·``), if it has one."""
    parts = archival_code.split("-")
    if len(parts) < 2:
        return None
    return parts[1].split("·", 1)[0].strip().upper() or None


def item_of_package(row: ArchivePackageRow) -> str:
    """The most specific catalogue item ``row`` belongs to."""
    return CLASS_ITEMS.get(archive_class(row.archival_code) or "", ROOT)


def split_resource(resource: str) -> tuple[str, str | None]:
    """``<package id>`` or ``<package id>/<path>`` → (package id, path or None)."""
    package_id, _, path = resource.partition("/")
    return package_id, (path or None)


def description_json(row: ArchivePackageRow) -> dict[str, Any]:
    """The archival description of a package version, with its Chinese field names."""
    return {
        "全宗号": row.fonds,
        "档号": row.archival_code,
        "题名": row.title,
        "责任者": row.creator,
        "形成时间": (
            row.formed_first.isoformat()
            if row.formed_first == row.formed_last
            else f"{row.formed_first.isoformat()}/{row.formed_last.isoformat()}"
        ),
        "保管期限": row.retention,
        "密级": row.classification,
        "件数": row.item_count,
    }


def _file_json(file: ArchiveFileRow) -> dict[str, Any]:
    return {"path": file.path, "sm3": file.sm3, "size": file.size, "recordId": file.record_id}


class ArchiveProvider:
    """Archive packages about a subject (see the module docstring)."""

    root = ROOT

    def __init__(self, db: Database, service: Callable[[], ArchiveService]) -> None:
        """Read rows from ``db``, files through the archive ``service`` (made when first
        needed)."""
        self.db = db
        self.service = service

    def _package(self, resource: str) -> ArchivePackageRow | None:
        package_id, _ = split_resource(resource)
        if not package_id.isalnum() or len(package_id) > 32:
            return None
        return latest_package(self.db, package_id)

    def subject_of(self, resource: str) -> SubjectRef | None:
        """Never the identifier: packages keep only the blind index (:meth:`blind_subject`)."""
        return None

    def blind_subject(self, resource: str) -> BlindSubject | None:
        """Whom the resource's package is about; None for an unknown or disposed package,
        a path its manifest does not list, or a package about no subject (the gateway then
        refuses the read as not about the authorization's subject, and logs it)."""
        row = self._package(resource)
        if row is None:
            return None
        _, path = split_resource(resource)
        with self.db.read_session() as session:
            if path is not None and (
                session.get(ArchiveFileRow, (row.package_id, row.version, path)) is None
            ):
                return None
            found = session.get(ArchiveSubjectRow, row.package_id)
            return None if found is None else BlindSubject(found.subject_kind, found.subject_index)

    def item_of(self, resource: str) -> str | None:
        """The item a read of ``resource`` is decided under; None for no such package."""
        row = self._package(resource)
        return None if row is None else item_of_package(row)

    def read(self, resource: str, item: str) -> dict[str, Any]:
        """The package's description and file list, or one file's facts (its content is
        streamed by :meth:`open_file`); raises NotFound."""
        row = self._package(resource)
        if row is None:
            raise NotFound(f"no archive package {resource}", code="package_not_found")
        _, path = split_resource(resource)
        data: dict[str, Any] = {
            "packageId": row.package_id,
            "version": row.version,
            "item": item_of_package(row),
            "description": description_json(row),
            "root": row.root,
        }
        if path is None:
            data["files"] = [
                _file_json(f) for f in package_files(self.db, row.package_id, row.version)
            ]
        else:
            data["file"] = _file_json(stored_file(self.service(), row, path))
        return data

    def open_file(self, resource: str) -> tuple[Path, ArchiveFileRow]:
        """Where the file ``resource`` names is on disk, and its row; raises NotFound."""
        row = self._package(resource)
        _, path = split_resource(resource)
        if row is None or path is None:
            raise NotFound(f"no archive file {resource}", code="file_not_found")
        service = self.service()
        file = stored_file(service, row, path)
        return file_location(service, file), file


__all__ = [
    "CLASS_ITEMS",
    "ROOT",
    "ArchiveProvider",
    "ArchiveSubjectIn",
    "BlindSubject",
    "archive_class",
    "description_json",
    "item_of_package",
    "record_archive_subject",
    "split_resource",
    "subject_index_of",
]
