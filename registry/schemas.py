"""Request and response bodies of the HTTP API: separate Create and Public schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdk.trust import Verdict

DIGEST_PATTERN = r"^(0x)?[0-9a-fA-F]{64}$"
"""A hex SM3 digest (64 hex digits, optional 0x)."""

MAX_FIELDS = 64
"""Most disclosable fields per record."""


class DocumentInput(BaseModel):
    """A document given by its SM3 digest or its bytes (base64); exactly one."""

    model_config = ConfigDict(extra="forbid")

    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN, description="hex SM3")
    document: str | None = Field(default=None, description="base64 of the document bytes")

    @model_validator(mode="after")
    def _exactly_one(self) -> DocumentInput:
        if (self.digest is None) == (self.document is None):
            raise ValueError("give exactly one of digest and document")
        return self


class RecordCreate(DocumentInput):
    """``POST /v1/records``."""

    metadata: dict[str, Any] = Field(default_factory=dict, description="stored in the registry")
    fields: dict[str, Any] | None = Field(
        default=None,
        max_length=MAX_FIELDS,
        description="disclosable fields: each is committed as a salted SM3 hash",
    )


class RecordAccepted(BaseModel):
    """Answer to ``POST /v1/records`` (202)."""

    id: str
    status: str
    digest: str
    metadata_hash: str
    field_hashes: dict[str, str]
    salts: dict[str, str] = Field(description="field salts, returned only here: keep them")
    created_at: datetime


class BatchPublic(BaseModel):
    """Where a record sits once sealed."""

    id: int
    root: str
    leaf_count: int
    leaf_index: int
    status: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None


class RecordPublic(BaseModel):
    """Answer to ``GET /v1/records/{id}``."""

    id: str
    status: str
    digest: str
    metadata: dict[str, Any]
    metadata_hash: str
    field_hashes: dict[str, str]
    commitment: str
    created_at: datetime
    batch: BatchPublic | None
    bundle: dict[str, Any] | None = Field(description="the proof bundle, once anchored")


class VerifyRequest(DocumentInput):
    """``POST /v1/verify``."""

    record_id: str | None = Field(default=None, description="check this record specifically")


class VerdictPublic(BaseModel):
    """One verdict and why."""

    verdict: Verdict
    detail: str


class VerificationPublic(BaseModel):
    """Answer to ``POST /v1/verify``: separate verdicts, facts, and the proof bundle."""

    found: bool
    record_id: str | None
    digest: str
    integrity: VerdictPublic
    issuance: VerdictPublic
    status: VerdictPublic
    issuer: VerdictPublic
    facts: dict[str, Any]
    bundle: dict[str, Any] | None
