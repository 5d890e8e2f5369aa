"""Record commitments: what a notarized record's Merkle leaf is made of. Version 2 (every
new record) hides what it commits to: the metadata hash is salted like every field hash,
each salt 128 bits, and the leaf names the notarizing department's key, whose signature over
it travels in the proof bundle. Version 1 (records notarized before) is kept to verify
them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from chain import encoding as enc
from chain.crypto import sm3
from chain.primitives import Hash32
from sdk import canonical

RECORD_COMMITMENT_V2_PREFIX = b"lianxin/record/v2\x00"
"""Domain separation of version 2 record commitments."""

SALTED_METADATA_PREFIX = b"lianxin/metadata/v2\x00"
"""Domain separation of salted metadata hashes."""

COMMITMENT_SALT_SIZE = 16
"""Bytes of every salt of a version 2 commitment (128 bits)."""

DEPARTMENT_KEY_SIZE = 65
"""An uncompressed SM2 public key."""

RECORD_COMMITMENT_PREFIX = b"lianxin/record/v1\x00"
"""Domain separation of record commitments (the Merkle leaves of a batch)."""

FIELD_HASH_PREFIX = b"lianxin/field/v1\x00"
"""Domain separation of salted per-field hashes."""

NO_FIELDS = Hash32(bytes(32))
"""The field root of a record notarized without selectively disclosable fields."""


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value``: RFC 8785 (see :mod:`sdk.canonical`)."""
    return canonical.canonical_json(value)


def metadata_hash(metadata: Mapping[str, Any]) -> Hash32:
    """SM3 of the canonical JSON of a record's metadata: the unsalted hash of version 1
    records, which confirms any guess of the metadata. New records use
    :func:`salted_metadata_hash`."""
    return sm3(canonical_json(dict(metadata)))


def commitment_salt(value: bytes | str) -> bytes:
    """A commitment salt given as hex text (JSON, ``0x`` allowed) or bytes, checked to be
    :data:`COMMITMENT_SALT_SIZE` bytes; raises ValueError. Anything else is refused before
    ``bytes()`` could take it: ``bytes(n)`` of a JSON number allocates n zero bytes."""
    if isinstance(value, str):
        salt = bytes.fromhex(value.removeprefix("0x"))
    elif isinstance(value, bytes | bytearray):
        salt = bytes(value)
    else:
        raise ValueError(f"a salt is hex text or bytes, not {type(value).__name__}")
    if len(salt) != COMMITMENT_SALT_SIZE:
        raise ValueError(f"a salt is {COMMITMENT_SALT_SIZE} bytes")
    return salt


def salted_metadata_hash(metadata: Mapping[str, Any], salt: bytes) -> Hash32:
    """SM3 of the prefix, the 16-byte ``salt`` and the canonical JSON of ``metadata``.
    Without the salt, guessing the metadata is no help."""
    (digest,) = salted_metadata_hashes(metadata, [salt])
    return digest


def salted_metadata_hashes(metadata: Mapping[str, Any], salts: Sequence[bytes]) -> list[Hash32]:
    """:func:`salted_metadata_hash` of ``metadata`` under each of ``salts``, its canonical
    JSON made once."""
    if any(len(salt) != COMMITMENT_SALT_SIZE for salt in salts):
        raise ValueError(f"a metadata salt is {COMMITMENT_SALT_SIZE} bytes")
    encoded = canonical_json(dict(metadata))
    return [sm3(SALTED_METADATA_PREFIX + bytes(salt) + encoded) for salt in salts]


def field_hash(name: str, value: Any, salt: bytes) -> Hash32:
    """The salted hash of one disclosable field: SM3 of the prefix and the RLP of
    ``[salt, name, canonical JSON of value]``. Revealing ``value`` and ``salt`` lets anyone
    recompute it; without the salt, guessing ``value`` is no help."""
    payload: list[enc.RLPItem] = [salt, name.encode(), canonical_json(value)]
    return sm3(FIELD_HASH_PREFIX + enc.encode(payload))


def field_hash_forms(name: str, value: Any, salt: bytes) -> tuple[Hash32, ...]:
    """Every hash a field's value may have been committed under: :func:`field_hash` (RFC
    8785), then the hash over version 1's encoding where it differs (a float, say, in a
    record notarized before RFC 8785; see :func:`sdk.canonical.canonical_forms`)."""
    return tuple(
        sm3(FIELD_HASH_PREFIX + enc.encode([salt, name.encode(), form]))
        for form in canonical.canonical_forms(value)
    )


def fields_root(field_hashes: Sequence[tuple[str, bytes]]) -> Hash32:
    """SM3 over the RLP of the ``[name, hash]`` pairs sorted by name; NO_FIELDS if none."""
    if not field_hashes:
        return NO_FIELDS
    pairs: list[enc.RLPItem] = [[name.encode(), digest] for name, digest in sorted(field_hashes)]
    return sm3(enc.encode(pairs))


def record_commitment(
    record_id: str, digest: bytes, metadata: bytes, field_hashes: Sequence[tuple[str, bytes]]
) -> Hash32:
    """The 32-byte leaf that stands for a record in its batch: SM3 of the prefix and the RLP
    of ``[record id (16 bytes), digest, metadata hash, fields root]``. The record id makes
    every leaf, and so every batch root, unique."""
    payload: list[enc.RLPItem] = [
        uuid.UUID(record_id).bytes,
        bytes(digest),
        bytes(metadata),
        fields_root(field_hashes),
    ]
    return sm3(RECORD_COMMITMENT_PREFIX + enc.encode(payload))


def department_record_commitment(
    department_key: bytes,
    digest: bytes,
    metadata: bytes,
    field_hashes: Sequence[tuple[str, bytes]],
) -> Hash32:
    """The version 2 leaf of a record: SM3 of the prefix, the notarizing department's
    public key (65 bytes), the digest, the salted metadata hash and the fields root (32
    bytes each). Fixed widths, no record id: the department computes it before the registry
    knows the record, signs it (:func:`department_sign_bytes`), and the salts keep every
    leaf unique."""
    if len(department_key) != DEPARTMENT_KEY_SIZE:
        raise ValueError(f"a department key is {DEPARTMENT_KEY_SIZE} bytes")
    if len(digest) != 32 or len(metadata) != 32:
        raise ValueError("digest and metadata hash are 32 bytes each")
    return sm3(
        RECORD_COMMITMENT_V2_PREFIX
        + bytes(department_key)
        + bytes(digest)
        + bytes(metadata)
        + fields_root(field_hashes)
    )
