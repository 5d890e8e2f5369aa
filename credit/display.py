"""What the public sees of a record (信用公示): every field, with a natural person's name and
identity number masked and a legal representative's identity number masked, as the
national rules require for display."""

from __future__ import annotations

from collections.abc import Mapping

from credit.records import CreditRecord, record_fields
from credit.subjects import mask_identifier, mask_person_name

__all__ = ["MASKED_IDENTIFIER_FIELDS", "public_fields"]

MASKED_IDENTIFIER_FIELDS = ("subject.id_number", "subject.legal_representative_id")
"""Fields that hold a person's identity document number: always masked for display."""


def public_fields(
    record: CreditRecord, fields: Mapping[str, str | None] | None = None
) -> dict[str, str | None]:
    """The fields of ``record`` as shown to the public (see
    :func:`credit.records.record_fields` for their names and text forms); ``fields``, when
    given, are its :func:`credit.records.record_fields` as the caller read them already
    (copied, not changed)."""
    shown = record_fields(record) if fields is None else dict(fields)
    for name in MASKED_IDENTIFIER_FIELDS:
        value = shown.get(name)
        if value:
            shown[name] = mask_identifier(value)
    if record.subject.is_natural_person:
        shown["subject.name"] = mask_person_name(record.subject.name)
    return shown
