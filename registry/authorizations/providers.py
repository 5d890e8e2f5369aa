"""Where the gateway reads shared data: one provider per top-level catalogue item. A
provider tells whose data a resource is (the subject the gateway matches against the
authorization) and reads the item once the gateway allowed it. Licenses are served now;
credit records and archives plug in by registering a provider for ``credit`` and
``archive``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from authorizations.terms import SubjectKind
from registry.authorizations.signing import RegistrySigner
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


class LicenseProvider:
    """License metadata (GB/T 36903) from the registry's licenses table; the holder is the
    subject. ``license.metadata`` is the metadata with the holder identifier masked;
    ``license.holder_id`` (or ``license``, everything) adds it in clear."""

    root = "license"

    def __init__(self, db: Database, signer: RegistrySigner) -> None:
        """Read from ``db``, open sealed holder identifiers with the registry's vault."""
        self.db = db
        self.signer = signer

    def _row(self, resource: str) -> License | None:
        with self.db.read_session() as session:
            row = session.get(License, resource)
            if row is not None:
                session.expunge(row)
            return row

    def _holder(self, row: License) -> tuple[SubjectKind, str]:
        metadata = json.loads(row.metadata_json)
        kind = (
            SubjectKind.ENTERPRISE
            if metadata.get("holder_id_type") == "uscc"
            else SubjectKind.CITIZEN
        )
        if row.holder_id_sealed is None:
            return kind, str(metadata["holder_id"])
        return kind, self.signer.vault().open(row.holder_id_sealed).decode()

    def subject_of(self, resource: str) -> SubjectRef | None:
        """The license's holder."""
        row = self._row(resource)
        if row is None:
            return None
        kind, identifier = self._holder(row)
        return SubjectRef(kind, identifier)

    def read(self, resource: str, item: str) -> dict[str, Any]:
        """The license's metadata (and its holder identifier, if that item is asked)."""
        row = self._row(resource)
        if row is None:
            raise NotFound(f"no license {resource}", code="license_not_found")
        data: dict[str, Any] = {
            "identifier": row.identifier,
            "status": row.status,
            "metadata": json.loads(row.metadata_json),
            "valid_until": row.valid_until,
        }
        if item in ("license", "license.holder_id"):
            data["holder_id"] = self._holder(row)[1]
        return data


__all__ = ["ItemProvider", "LicenseProvider", "SubjectRef"]
