"""What the public sees of a record (信用公示): every field, with a natural person's name and
identity number masked and a legal representative's identity number masked, as the
national rules require for display."""

from __future__ import annotations

from credit.records import CreditRecord, record_fields
from credit.subjects import mask_identifier, mask_person_name

__all__ = ["MASKED_IDENTIFIER_FIELDS", "public_fields"]

MASKED_IDENTIFIER_FIELDS = ("subject.id_number", "subject.legal_representative_id")
"""Fields that hold a person's identity document number: always masked for display."""


def public_fields(record: CreditRecord) -> dict[str, str | None]:
    """The fields of ``record`` as shown to the public (see
    :func:`credit.records.record_fields` for their names and text forms)."""
    fields = record_fields(record)
    for name in MASKED_IDENTIFIER_FIELDS:
        value = fields.get(name)
        if value:
            fields[name] = mask_identifier(value)
    if record.subject.is_natural_person:
        fields["subject.name"] = mask_person_name(record.subject.name)
    return fields
