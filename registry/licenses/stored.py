"""A license's metadata as the registry stores it: the GB/T 36903 metadata with the
holder's identifier masked (the identifier itself is sealed beside it, see
:mod:`registry.data_vault`), and the part of it the citizen's verify page shows."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from registry.data_vault import mask_identifier
from registry.licenses.metadata import LicenseMetadata


def stored_metadata_json(metadata: LicenseMetadata) -> str:
    """The JSON stored for ``metadata``: its canonical object, holder identifier masked."""
    value = metadata.to_json_object()
    value["holder_id"] = mask_identifier(metadata.holder_id)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class PageMetadata:
    """What the verify page shows of a license's stored metadata (checked when issued)."""

    license_name: str
    issuer_name: str
    issuer_code: str
    issue_date: datetime.date
    valid_from: datetime.date
    valid_until: datetime.date | None

    @classmethod
    def from_stored(cls, stored_json: str) -> PageMetadata:
        """Read from the stored JSON (masked, or a clear copy stored before sealing)."""
        value = json.loads(stored_json)
        until = value["valid_until"]
        return cls(
            license_name=str(value["license_name"]),
            issuer_name=str(value["issuer_name"]),
            issuer_code=str(value["issuer_code"]),
            issue_date=datetime.date.fromisoformat(value["issue_date"]),
            valid_from=datetime.date.fromisoformat(value["valid_from"]),
            valid_until=None if until is None else datetime.date.fromisoformat(until),
        )


__all__ = ["PageMetadata", "stored_metadata_json"]
