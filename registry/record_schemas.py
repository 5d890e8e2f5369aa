"""Request and response bodies of notarized records signed by their department, their
revocation, their history and the auditor's listing per department (the record schemas
of :mod:`registry.schemas`, extended)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.schemas import (
    MAX_BULK_RECORDS,
    MAX_FIELDS,
    BatchPublic,
    RecordAccepted,
    RecordCreate,
)

SALT_PATTERN = r"^[0-9a-fA-F]{32}$"
"""A hex 16-byte salt."""

MAX_SIGNATURE_BASE64 = 200
"""Longest base64 SM2 signature accepted (a DER signature is at most 72 bytes)."""

MAX_DEPARTMENT_PAGE = 1_000
"""Most records in one page of a department's listing."""


class SignedRecordCreate(RecordCreate):
    """``POST /v1/records``: a record, the salts of its commitment, and the department's
    signature over that commitment."""

    metadata_salt: str | None = Field(
        default=None,
        pattern=SALT_PATTERN,
        description="16 random bytes (hex) salting the metadata hash; never stored",
    )
    field_salts: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_FIELDS,
        description="16 random bytes (hex) per field, salting its hash; never stored",
    )
    department_signature: str | None = Field(
        default=None,
        max_length=MAX_SIGNATURE_BASE64,
        description="required: base64 of the client key's DER SM2 signature (default signer "
        "ID) over 'lianxin/department-commitment/v1' + 0x00 + the chain id (8 bytes, "
        "big-endian) + the record's 32-byte version 2 commitment",
    )


class SignedRecordBulkCreate(BaseModel):
    """``POST /v1/records/bulk``: signed records stored together, or none of them."""

    model_config = ConfigDict(extra="forbid")

    records: list[SignedRecordCreate] = Field(
        min_length=1,
        max_length=MAX_BULK_RECORDS,
        description="as many as the max_bulk_records setting allows (1,000 by default)",
    )
    department_signature: str | None = Field(
        default=None,
        max_length=MAX_SIGNATURE_BASE64,
        description="the request signed once (then no record carries a signature): base64 "
        "of the client key's DER SM2 signature over 'lianxin/department-commitments/v1' + "
        "0x00 + the chain id and the number of records (8 bytes big-endian each) + the SM3 "
        "Merkle root (RFC 6962 style) of the records' version 2 commitments in request order",
    )


class SignedRecordAccepted(RecordAccepted):
    """Answer to ``POST /v1/records`` (202): the salts come back in this answer only."""

    metadata_salt: str | None = Field(
        default=None, description="the metadata hash's salt, returned only here: keep it"
    )
    commitment: str | None = Field(default=None, description="the record's commitment (leaf)")


class RecordRevoke(BaseModel):
    """``POST /v1/records/{id}/revoke``."""

    model_config = ConfigDict(extra="forbid")

    reason: int = Field(ge=0, le=65535, description="reason code (contracts.trust.Reason)")


class KeyCompromiseRevoke(BaseModel):
    """``POST /v1/records/revoke-by-key``: revoke what the department signed with a key."""

    model_config = ConfigDict(extra="forbid")

    department_key: str | None = Field(
        default=None,
        pattern=r"^04[0-9a-fA-F]{128}$",
        description="the compromised key (uncompressed, hex); any key of the department if null",
    )
    since: datetime | None = Field(default=None, description="notarized at or after")
    until: datetime | None = Field(default=None, description="notarized before")
    reason: int = Field(default=2, ge=0, le=65535, description="reason code (2: key compromise)")


class KeyCompromiseRevoked(BaseModel):
    """What ``POST /v1/records/revoke-by-key`` queued."""

    queued: int = Field(description="records whose revocation goes on chain through the outbox")


class RecordEventPublic(BaseModel):
    """One event of a record's history."""

    event: str = Field(description="accepted, anchored, revocation_requested or revoked")
    at: datetime | None = None
    block_number: int | None = None
    reason: int | None = None
    tx_hash: str | None = None


class SignedRecordPublic(BaseModel):
    """Answer to ``GET /v1/records/{id}``."""

    id: str
    status: str = Field(description="accepted, sealed, anchored, or revoked")
    digest: str
    metadata: dict[str, Any]
    metadata_hash: str
    field_hashes: dict[str, str]
    commitment: str
    department_signature: str | None = Field(
        description="the department's signature over the commitment (null for records "
        "notarized before departments signed), or over the root of its bulk request"
    )
    department_proof: str | None = Field(
        default=None,
        description="for a record of a bulk request signed once: its Merkle path to the "
        "signed root (hex MerkleProof encoding)",
    )
    created_at: datetime
    batch: BatchPublic | None
    bundle: dict[str, Any] | None = Field(description="the proof bundle, once anchored")
    history: list[RecordEventPublic] = Field(
        default_factory=list, description="what happened to the record, oldest first"
    )


class RevocationRequested(BaseModel):
    """What revoking a record did."""

    record: SignedRecordPublic
    operation_state: str = Field(description="pending, sent, confirmed or reverted")


class DepartmentRecordPublic(BaseModel):
    """One record a department signed, as an auditor lists it."""

    seq: int
    id: str
    digest: str
    commitment: str
    status: str
    department_signature: str
    department_proof: str | None = None
    batch_root: str | None
    block_number: int | None
    created_at: datetime


class DepartmentRecordsPublic(BaseModel):
    """Answer to ``GET /v1/records/by-department/{uscc}``: one page, oldest first."""

    uscc: str
    records: list[DepartmentRecordPublic]
    next_after: int | None = Field(description="pass as 'after' for the next page")


class SigningFacts(BaseModel):
    """Answer to ``GET /v1/records/signing``: what a department signs a record for."""

    chainId: int
    commitmentScheme: int
    signaturePrefix: str
