"""A department's side of notarizing a record: salt everything the commitment covers,
compute the version 2 commitment (:func:`sdk.commitments.department_record_commitment`),
and sign it with the department's own SM2 key (:func:`sdk.bundle_links.department_sign_bytes`),
so that the proof bundle shows which department vouched for the record. The records of a
bulk request are signed once (:func:`sign_records`): over the SM3 Merkle root of their
commitments in request order (:func:`sdk.bundle_links.department_root_sign_bytes`); each
record's bundle carries that signature and the record's path to the root.

Salts are derived from the department's private key and the request's Idempotency-Key
(HMAC-SM3), 128 bits each: a retry of the same request sends the same body, and a
department that kept its key and the key of a request can compute the salts again to
disclose a field later. Nobody without the private key can compute them.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain.crypto import PrivateKey, sm3
from chain.merkle import MerkleProof, MerkleTree
from chain.primitives import Hash32
from sdk.bundle_links import department_root_sign_bytes, department_sign_bytes
from sdk.commitments import (
    COMMITMENT_SALT_SIZE,
    department_record_commitment,
    field_hash,
    salted_metadata_hash,
)

SALT_DERIVATION_PREFIX = b"lianxin/record-salt/v1\x00"
"""Domain separation of derived salts."""


def derive_salt(key: PrivateKey, idempotency_key: str, purpose: str) -> bytes:
    """The 16-byte salt of ``purpose`` (``metadata``, or ``field:<name>``) of the record
    notarized under ``idempotency_key``: HMAC-SM3 under the private key's scalar."""
    message = SALT_DERIVATION_PREFIX + idempotency_key.encode() + b"\x00" + purpose.encode()
    return hmac.new(key.to_bytes(), message, "sm3").digest()[:COMMITMENT_SALT_SIZE]


@dataclass(frozen=True)
class RecordSalts:
    """The salts of one record's commitment: keep them to disclose its metadata or fields."""

    metadata: bytes
    """Salt of the metadata hash."""
    fields: Mapping[str, bytes]
    """Salt of each field hash, by field name."""

    def to_json(self) -> dict[str, Any]:
        """Hex salts: ``{"metadata": ..., "fields": {name: ...}}``."""
        return {
            "metadata": self.metadata.hex(),
            "fields": {name: salt.hex() for name, salt in sorted(self.fields.items())},
        }


@dataclass(frozen=True)
class SignedRecord:
    """A record ready to send: its request body and what the department keeps."""

    body: dict[str, Any]
    """The JSON object of ``POST /v1/records`` (or one item of a bulk request)."""
    commitment: Hash32
    """The version 2 commitment it signed."""
    salts: RecordSalts
    """Its salts."""


def sign_record(
    key: PrivateKey,
    chain_id: int,
    *,
    idempotency_key: str,
    digest: bytes | str | None = None,
    document: bytes | None = None,
    metadata: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> SignedRecord:
    """Salt, commit and sign one record for the chain ``chain_id``; raises ValueError
    unless exactly one of ``digest`` (32 bytes, or 64 hex digits) and ``document`` is
    given."""
    record = commit_record(
        key,
        idempotency_key=idempotency_key,
        digest=digest,
        document=document,
        metadata=metadata,
        fields=fields,
    )
    signature = key.sign(department_sign_bytes(chain_id, record.commitment))
    record.body["department_signature"] = base64.b64encode(signature).decode("ascii")
    return record


def commit_record(
    key: PrivateKey,
    *,
    idempotency_key: str,
    digest: bytes | str | None = None,
    document: bytes | None = None,
    metadata: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> SignedRecord:
    """:func:`sign_record` without the signature: the salted body and its commitment
    (for a bulk request, whose records are signed together by :func:`sign_records`)."""
    if (digest is None) == (document is None):
        raise ValueError("give exactly one of digest and document")
    digest_bytes: bytes
    if document is not None:
        digest_bytes = sm3(document)
    elif isinstance(digest, str):
        digest_bytes = bytes.fromhex(digest.removeprefix("0x"))
    else:
        assert digest is not None
        digest_bytes = bytes(digest)
    if len(digest_bytes) != 32:
        raise ValueError("a digest is 32 bytes")
    meta = dict(metadata or {})
    values = dict(fields or {})
    salts = RecordSalts(
        metadata=derive_salt(key, idempotency_key, "metadata"),
        fields={name: derive_salt(key, idempotency_key, f"field:{name}") for name in values},
    )
    hashes = {name: field_hash(name, value, salts.fields[name]) for name, value in values.items()}
    commitment = department_record_commitment(
        key.public_key.to_bytes(),
        digest_bytes,
        salted_metadata_hash(meta, salts.metadata),
        sorted(hashes.items()),
    )
    body: dict[str, Any] = {"metadata": meta, "metadata_salt": salts.metadata.hex()}
    if document is not None:
        body["document"] = base64.b64encode(document).decode("ascii")
    else:
        body["digest"] = digest_bytes.hex()
    if values:
        body["fields"] = values
        body["field_salts"] = {name: salt.hex() for name, salt in salts.fields.items()}
    return SignedRecord(body=body, commitment=commitment, salts=salts)


@dataclass(frozen=True)
class SignedRecords:
    """The records of a bulk request, signed once."""

    records: tuple[SignedRecord, ...]
    """Each record's body (without a signature of its own), commitment and salts."""
    root: Hash32
    """The SM3 Merkle root of their commitments, in request order."""
    signature: bytes
    """The department's signature over :func:`department_root_sign_bytes` of the root."""

    def body(self) -> dict[str, Any]:
        """The JSON object of ``POST /v1/records/bulk``."""
        return {
            "records": [record.body for record in self.records],
            "department_signature": base64.b64encode(self.signature).decode("ascii"),
        }

    def proof(self, index: int) -> MerkleProof:
        """The path of record ``index``'s commitment to the signed root."""
        return MerkleTree.build([record.commitment for record in self.records]).prove(index)


def sign_records(key: PrivateKey, chain_id: int, records: list[SignedRecord]) -> SignedRecords:
    """Sign the committed ``records`` (:func:`commit_record`) of one bulk request at once,
    for the chain ``chain_id``: one SM2 signature over the Merkle root of their
    commitments, instead of one per record."""
    tree = MerkleTree.build([record.commitment for record in records])
    signature = key.sign(department_root_sign_bytes(chain_id, tree.leaf_count, tree.root))
    return SignedRecords(records=tuple(records), root=tree.root, signature=signature)


__all__ = [
    "SALT_DERIVATION_PREFIX",
    "RecordSalts",
    "SignedRecord",
    "SignedRecords",
    "commit_record",
    "derive_salt",
    "sign_record",
    "sign_records",
]
