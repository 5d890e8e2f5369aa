"""Where the gateway reads shared data: one provider per top-level catalogue item. A
provider tells whose data a resource is (the subject the gateway matches against the
authorization) and reads the item once the gateway allowed it. Licenses are served now;
credit records and archives plug in by registering a provider for ``credit`` and
``archive``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select

from authorizations.terms import SubjectKind
from registry.authorizations.signing import RegistrySigner
from registry.caches import LruCache
from registry.db import Database
from registry.errors import NotFound
from registry.models import License


@dataclass(frozen=True)
class SubjectRef:
    """Whom a resource is about."""

    kind: SubjectKind
    """Citizen or enterprise."""
    identifier: str
    """Resident ID or USCC, canonical."""


class ItemProvider(Protocol):
    """The data behind one top-level item of the catalogue."""

    root: str
    """The top-level item code it serves (``license``, ``credit``, ``archive``)."""

    def subject_of(self, resource: str) -> SubjectRef | None:
        """Whom ``resource`` is about; None if there is no such resource."""
        ...

    def read(self, resource: str, item: str) -> dict[str, Any]:
        """Item ``item`` of ``resource`` (the gateway allowed it); raises NotFound."""
        ...


class Located(Protocol):
    """A resource read once: whom it is about, and its items (a provider that can serve a
    read from what it read to find the subject offers :meth:`LicenseProvider.locate`)."""

    subject: SubjectRef
    """Whom the resource is about."""

    def read(self, item: str) -> dict[str, Any]:
        """Item ``item`` of the resource (the gateway allowed it)."""
        ...


HOLDER_CACHE_SIZE = 10_000
"""Sealed holder identifiers kept opened in memory (a sealed value never changes)."""

_LICENSES = cast(Table, License.__table__)
_READ_LICENSE = select(
    _LICENSES.c.identifier,
    _LICENSES.c.status,
    _LICENSES.c.metadata_json,
    _LICENSES.c.valid_until,
    _LICENSES.c.holder_id_sealed,
).where(_LICENSES.c.identifier == bindparam("identifier"))
"""The columns a gated read of a license uses, in one Core statement: a read is made for
every group of the access writer, and the ORM's session, identity map and expunge cost
more than the row."""


@dataclass(frozen=True)
class _LicenseRow:
    """What a gated read uses of one ``licenses`` row."""

    identifier: str
    status: str
    metadata_json: str
    valid_until: int
    holder_id_sealed: str | None
    """The holder identifier sealed by the registry's vault (None: in the metadata)."""


@dataclass(frozen=True)
class _LocatedLicense:
    """One license row as read once for a gated read: its subject, and its data."""

    row: _LicenseRow
    subject: SubjectRef

    def read(self, item: str) -> dict[str, Any]:
        row = self.row
        data: dict[str, Any] = {
            "identifier": row.identifier,
            "status": row.status,
            "metadata": json.loads(row.metadata_json),
            "valid_until": row.valid_until,
        }
        if item in ("license", "license.holder_id"):
            data["holder_id"] = self.subject.identifier
        return data


class LicenseProvider:
    """License metadata (GB/T 36903) from the registry's licenses table; the holder is the
    subject. ``license.metadata`` is the metadata with the holder identifier masked;
    ``license.holder_id`` (or ``license``, everything) adds it in clear."""

    root = "license"

    def __init__(self, db: Database, signer: RegistrySigner) -> None:
        """Read from ``db``, open sealed holder identifiers with the registry's vault."""
        self.db = db
        self.signer = signer
        self._holders: LruCache[str, str] = LruCache(HOLDER_CACHE_SIZE)

    def _row(self, resource: str) -> _LicenseRow | None:
        with self.db.read_connection() as connection:
            found = connection.execute(_READ_LICENSE, {"identifier": resource}).first()
        if found is None:
            return None
        return _LicenseRow(
            found.identifier,
            found.status,
            found.metadata_json,
            found.valid_until,
            found.holder_id_sealed,
        )

    def _holder(self, row: _LicenseRow) -> tuple[SubjectKind, str]:
        metadata = json.loads(row.metadata_json)
        kind = (
            SubjectKind.ENTERPRISE
            if metadata.get("holder_id_type") == "uscc"
            else SubjectKind.CITIZEN
        )
        sealed = row.holder_id_sealed
        if sealed is None:
            return kind, str(metadata["holder_id"])
        holder = self._holders.get(sealed)
        if holder is None:
            holder = self.signer.vault().open(sealed).decode()
            self._holders.put(sealed, holder)
        return kind, holder

    def locate(self, resource: str) -> _LocatedLicense | None:
        """The license read once (its holder opened once): the gateway matches its subject
        and, if allowed, serves its data from the same read. None if there is none."""
        row = self._row(resource)
        if row is None:
            return None
        kind, identifier = self._holder(row)
        return _LocatedLicense(row, SubjectRef(kind, identifier))

    def subject_of(self, resource: str) -> SubjectRef | None:
        """The license's holder."""
        row = self._row(resource)
        if row is None:
            return None
        kind, identifier = self._holder(row)
        return SubjectRef(kind, identifier)

    def read(self, resource: str, item: str) -> dict[str, Any]:
        """The license's metadata (and its holder identifier, if that item is asked)."""
        located = self.locate(resource)
        if located is None:
            raise NotFound(f"no license {resource}", code="license_not_found")
        return located.read(item)


__all__ = ["ItemProvider", "LicenseProvider", "Located", "SubjectRef"]
