"""Request and response bodies of the HTTP API: separate Create and Public schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from registry.limits import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from sdk.canonical import CanonicalJsonError, strict_canonical_json
from sdk.trust import Verdict

DIGEST_PATTERN = r"^(0x)?[0-9a-fA-F]{64}$"
"""A hex SM3 digest (64 hex digits, optional 0x)."""

MAX_FIELDS = 64
"""Most disclosable fields per record."""


def json_depth(value: Any) -> int:
    """How deeply ``value``'s lists and dicts nest (0 for a scalar), counted with a stack
    of its own, never recursing."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            members: Any = item.values()
        elif isinstance(item, list):
            members = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((member, depth + 1) for member in members)
    return deepest


def check_canonical_json(value: Any) -> Any:
    """``value`` if it nests at most :data:`MAX_METADATA_DEPTH` levels, has a strict RFC 8785
    encoding (no NaN, infinity, lone surrogate or integer beyond ±(2**53 − 1)) and that
    encoding is at most :data:`MAX_METADATA_BYTES`; raises ValueError (a 422) otherwise."""
    depth = json_depth(value)
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"nested {depth} levels deep; at most {MAX_METADATA_DEPTH}")
    try:
        size = len(strict_canonical_json(value))
    except CanonicalJsonError as exc:
        raise ValueError(f"has no canonical JSON form: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"{size} bytes as canonical JSON; at most {MAX_METADATA_BYTES}")
    return value


CanonicalObject = Annotated[dict[str, Any], AfterValidator(check_canonical_json)]
"""A JSON object the registry hashes and stores: bounded in depth and size, and canonically
encodable (see :func:`check_canonical_json`)."""


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

    metadata: CanonicalObject = Field(
        default_factory=dict,
        description=f"stored in the registry and hashed as RFC 8785 JSON: at most "
        f"{MAX_METADATA_DEPTH} levels deep and {MAX_METADATA_BYTES} bytes; no NaN, "
        "infinity, lone surrogate or integer beyond ±(2**53 − 1)",
    )
    fields: CanonicalObject | None = Field(
        default=None,
        max_length=MAX_FIELDS,
        description="disclosable fields: each is committed as a salted SM3 hash (same "
        "limits as metadata, for the object as a whole)",
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


MAX_BULK_RECORDS = 100_000
"""Upper bound of the ``max_bulk_records`` setting (default 1,000)."""


class RecordBulkCreate(BaseModel):
    """``POST /v1/records/bulk``: records stored together, or none of them."""

    model_config = ConfigDict(extra="forbid")

    records: list[RecordCreate] = Field(
        min_length=1,
        max_length=MAX_BULK_RECORDS,
        description="as many as the max_bulk_records setting allows (1,000 by default)",
    )


class RecordBulkAccepted(BaseModel):
    """Answer to ``POST /v1/records/bulk`` (202): one entry per record, in request order."""

    records: list[RecordAccepted]


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


# -- e-licenses ------------------------------------------------------------------------------

LICENSE_IDENTIFIER_MAX = 128
"""Longest e-license identifier accepted (a valid one has at most about 100 characters)."""

MAX_TOKEN_LIFETIME_S = 86_400
"""Longest lifetime of a dynamic QR token."""


class ContentFieldInput(BaseModel):
    """One item on the face of the license (照面信息)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1, max_length=2000)


class LicenseCreate(BaseModel):
    """``POST /v1/licenses``: the GB/T 36903 metadata of a new license. Type and issuer
    codes are taken from the identifier. The holder identifier stays in the registry; the
    chain gets only a salted SM3 commitment to it."""

    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(
        max_length=LICENSE_IDENTIFIER_MAX,
        description="GB/T 36904 identifier; its MOD 37,36 check character is verified",
    )
    license_name: str = Field(min_length=1, max_length=200, description="证照名称")
    holder_name: str = Field(min_length=1, max_length=200, description="持证主体")
    holder_id_type: str = Field(description="uscc or resident_id", pattern="^(uscc|resident_id)$")
    holder_id: str = Field(max_length=32, description="USCC or citizen identity number")
    issuer_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="证照颁发机构: optional; the client's registered name is recorded, and "
        "another name is refused (403 wrong_issuer_name)",
    )
    issue_date: date
    valid_from: date
    valid_until: date | None = Field(default=None, description="inclusive; null for no end")
    license_number: str | None = Field(default=None, max_length=2000)
    content: list[ContentFieldInput] = Field(default_factory=list, max_length=100)


class LicenseChange(BaseModel):
    """``POST /v1/licenses/{identifier}/change``: the new version and why."""

    model_config = ConfigDict(extra="forbid")

    license: LicenseCreate
    reason: int = Field(default=4, ge=0, le=65535, description="reason code (default 4)")


class TokenRequest(BaseModel):
    """``POST /v1/licenses/{identifier}/token``."""

    model_config = ConfigDict(extra="forbid")

    lifetime_seconds: int = Field(default=300, ge=10, le=MAX_TOKEN_LIFETIME_S)


class HistoryEntryPublic(BaseModel):
    """One entry of a license's on-chain history."""

    status: str
    reason: int
    reason_text: str
    block_number: int
    by: str


class ChainStatusPublic(BaseModel):
    """A license's status as the chain reports it now."""

    verdict: Verdict = Field(description="VALID: in force; INVALID: not; UNAVAILABLE: unknown")
    status: str | None = Field(description="statusOf now; null when the chain is unreachable")
    detail: str
    read_at_block: int | None
    history: list[HistoryEntryPublic]


class OperationPublic(BaseModel):
    """The LicenseRegistry transaction a request made."""

    id: int
    action: str
    reason: int
    state: str = Field(description="pending, sent, confirmed or reverted")
    tx_hash: str
    block_number: int | None
    error: str | None


class LicensePublic(BaseModel):
    """A license: registry copy, chain facts, links, and (for a write) the operation."""

    identifier: str
    id_hash: str
    department: str
    recorded_status: str = Field(description="the status last confirmed by the registry")
    metadata: dict[str, Any] | None = Field(
        description="the GB/T 36903 metadata (holder data only for the issuing department)"
    )
    holder_commitment: str
    metadata_hash: str
    valid_until: int
    predecessor: str | None
    successor: str | None
    tx_hash: str | None
    block_number: int | None
    anchored_at: datetime | None
    chain: ChainStatusPublic | None
    verify_url: str
    qr_png_url: str
    qr_svg_url: str
    operation: OperationPublic | None = None


class TokenPublic(BaseModel):
    """A dynamic QR token and where it leads."""

    token: str
    url: str
    expires_at: datetime
    qr_svg: str
    qr_png_base64: str
