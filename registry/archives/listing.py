"""A package version's files a page at a time (``GET /v1/archives/packages/{id}/files``):
each file's path exactly as stored, its size and SM3, and where it is anchored (the record
committing to it, its batch and leaf, the anchoring transaction, and the record's proof
link). Pages follow the path order of the database, keyed by the last path answered, so a
listing paged to its end holds every file once, whatever the page sizes."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from registry.archives.models import ArchiveFileRow, ArchivePackageRow
from registry.archives.service import ArchiveService
from registry.errors import InvalidInput, NotFound
from registry.models import Batch, Record

MAX_FILES_PAGE = 1_000
"""Most files one page answers."""

DEFAULT_FILES_PAGE = 100
"""Files a page answers unless asked for another number."""

MAX_CURSOR = 6_000
"""Longest cursor accepted (a path of up to 1,024 characters, as UTF-8, in base64)."""


@dataclass(frozen=True)
class FilePage:
    """One page of a version's files."""

    package_id: str
    """The package."""
    version: int
    """The version listed."""
    files: list[dict[str, Any]]
    """The files, by path."""
    next_cursor: str | None
    """The cursor of the next page; None after the last."""

    def to_json(self) -> dict[str, Any]:
        """As answered."""
        return {
            "packageId": self.package_id,
            "version": self.version,
            "files": self.files,
            "next": self.next_cursor,
        }


def encode_cursor(path: str) -> str:
    """The cursor of the page after ``path``: unpadded base64url of its UTF-8."""
    return base64.urlsafe_b64encode(path.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The path a cursor follows; raises InvalidInput (``invalid_cursor``)."""
    try:
        path = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        path = "\x00"
    if "\x00" in path:
        raise InvalidInput("cursor is not one this listing answered", code="invalid_cursor")
    return path


def _version(service: ArchiveService, package_id: str, version: int | None) -> ArchivePackageRow:
    rows = service.package_rows(package_id)
    row = rows[-1] if version is None else next((r for r in rows if r.version == version), None)
    if row is None:
        raise NotFound(f"package {package_id} has no version {version}", code="version_not_found")
    return row


def _file(row: ArchiveFileRow, record: Record, batch: Batch | None) -> dict[str, Any]:
    return {
        "path": row.path,
        "size": row.size,
        "sm3": row.sm3,
        "anchoring": {
            "recordId": record.id,
            "status": record.status,
            "batch": record.batch_id,
            "leafIndex": record.leaf_index,
            "batchRoot": None if batch is None else batch.root,
            "txHash": None if batch is None else batch.tx_hash,
            "blockNumber": None if batch is None else batch.block_number,
            "proof": f"/v1/records/{record.id}",
        },
    }


def file_page(
    service: ArchiveService,
    package_id: str,
    *,
    version: int | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_FILES_PAGE,
) -> FilePage:
    """The files of ``version`` (default: the latest) after ``cursor``, at most ``limit``
    of them (1 to :data:`MAX_FILES_PAGE`). Raises NotFound (``package_not_found``,
    ``version_not_found``), InvalidInput (a cursor or limit out of range)."""
    if not 1 <= limit <= MAX_FILES_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_FILES_PAGE}", code="invalid_page")
    after = None if cursor is None else decode_cursor(cursor)
    row = _version(service, package_id, version)
    query = (
        select(ArchiveFileRow, Record, Batch)
        .join(Record, Record.id == ArchiveFileRow.record_id)
        .outerjoin(Batch, Batch.id == Record.batch_id)
        .where(ArchiveFileRow.package_id == package_id, ArchiveFileRow.version == row.version)
    )
    if after is not None:
        query = query.where(ArchiveFileRow.path > after)
    query = query.order_by(ArchiveFileRow.path).limit(limit + 1)
    with service.db.read_session() as session:
        found = [_file(file, record, batch) for file, record, batch in session.execute(query)]
    more = len(found) > limit
    files = found[:limit]
    next_cursor = encode_cursor(files[-1]["path"]) if more else None
    return FilePage(package_id, row.version, files, next_cursor)


__all__ = [
    "DEFAULT_FILES_PAGE",
    "MAX_CURSOR",
    "MAX_FILES_PAGE",
    "FilePage",
    "decode_cursor",
    "encode_cursor",
    "file_page",
]
