"""Per-field salted SM3 commitments of a credit record, so that a subject can disclose one
field (its penalty's decision date, say) without the others, and so that nothing meant for
the chain holds a natural person's identity number, or any other field, in clear.

Each field is committed with :func:`sdk.commitments.field_hash` (SM3 over a 128-bit salt,
the field name and the canonical JSON of the value), the same construction as the
selectively disclosable fields of notarized records, so the registry's disclosure proofs
apply unchanged. Salts come from a random source passed in (``secrets.token_bytes`` in
production, a seeded source in tests): this module draws no randomness of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chain.primitives import Hash32
from credit.records import CreditRecord, record_fields, record_id, record_kind
from sdk.commitments import COMMITMENT_SALT_SIZE, field_hash, fields_root

__all__ = [
    "FIELD_SALT_SIZE",
    "ChainView",
    "FieldOpening",
    "RecordCommitment",
    "commit_record",
    "verify_opening",
]

FIELD_SALT_SIZE = COMMITMENT_SALT_SIZE
"""Bytes of each field's salt: 16 (128 bits), as for notarized records."""

RandomBytes = Callable[[int], bytes]
"""A source of cryptographically secure random bytes (``secrets.token_bytes``)."""


@dataclass(frozen=True)
class FieldOpening:
    """What a subject hands over to disclose one field: its value and salt."""

    name: str
    """The field's name."""
    value: str | None
    """The field's value, as text."""
    salt: bytes
    """The field's salt."""


@dataclass(frozen=True)
class ChainView:
    """What of a record may go to the chain: its identity, the field hashes and their root.
    Holds no field value."""

    record_id: Hash32
    """The record's identity (kind + natural key: authority USCC and decision number)."""
    field_hashes: tuple[tuple[str, Hash32], ...]
    """(field name, salted hash), sorted by name."""
    root: Hash32
    """:func:`sdk.commitments.fields_root` of the field hashes."""


@dataclass(frozen=True)
class RecordCommitment:
    """A record's commitments and the openings that stay off chain with the record."""

    chain_view: ChainView
    """What the chain holds."""
    openings: Mapping[str, FieldOpening]
    """Field name → value and salt, kept by the registry and given to the subject."""


def commit_record(record: CreditRecord, random_bytes: RandomBytes) -> RecordCommitment:
    """Commit every field of ``record`` under a fresh salt of :data:`FIELD_SALT_SIZE` bytes
    drawn from ``random_bytes``."""
    openings: dict[str, FieldOpening] = {}
    hashes: list[tuple[str, Hash32]] = []
    for name, value in record_fields(record).items():
        salt = random_bytes(FIELD_SALT_SIZE)
        if len(salt) != FIELD_SALT_SIZE:
            raise ValueError(f"the random source gave {len(salt)} bytes, not {FIELD_SALT_SIZE}")
        openings[name] = FieldOpening(name, value, salt)
        hashes.append((name, field_hash(name, value, salt)))
    hashes.sort()
    identity = record_id(record_kind(record), record.natural_key)
    view = ChainView(identity, tuple(hashes), fields_root(hashes))
    return RecordCommitment(view, openings)


def verify_opening(view: ChainView, opening: FieldOpening) -> None:
    """Check that ``opening`` discloses a field committed in ``view``; raises ValueError
    if not (returns nothing when it does)."""
    committed = dict(view.field_hashes).get(opening.name)
    if committed is None:
        raise ValueError(f"no field {opening.name!r} is committed")
    if field_hash(opening.name, opening.value, opening.salt) != committed:
        raise ValueError(f"the opening of {opening.name!r} does not match its commitment")
