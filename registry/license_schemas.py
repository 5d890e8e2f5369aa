"""Request and response bodies of licenses signed by their department: the license with
the salt of its commitment and the department's signature over that commitment, what a
department signs for, the auditor's listing per department, status changes signed by the
department, and the license as read with its signature's verdict (the license schemas of
:mod:`registry.schemas`, extended)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from registry.record_schemas import MAX_SIGNATURE_BASE64
from registry.schemas import LicenseCreate, LicensePublic
from sdk.trust_types import Verdict

LICENSE_SALT_PATTERN = r"^[0-9a-fA-F]{64}$"
"""A hex 32-byte salt."""

MAX_LICENSE_PAGE = 1_000
"""Most licenses in one page of a department's listing."""


class SignedLicenseCreate(LicenseCreate):
    """``POST /v1/licenses``: the GB/T 36903 metadata of a new license, the salt of its
    commitment and the department's signature over that commitment."""

    commitment_salt: str | None = Field(
        default=None,
        pattern=LICENSE_SALT_PATTERN,
        description="required: 32 random bytes (hex) salting the holder commitment and the "
        "metadata hash; kept sealed by the registry",
    )
    department_signature: str | None = Field(
        default=None,
        max_length=MAX_SIGNATURE_BASE64,
        description="required: base64 of the client key's DER SM2 signature (default signer "
        "ID) over 'lianxin/department-commitment/v1' + 0x00 + the chain id (8 bytes, "
        "big-endian) + the license's 32-byte commitment (sdk.license_signing)",
    )


class SignedLicenseChange(BaseModel):
    """``POST /v1/licenses/{identifier}/change``: the new version, signed, and why."""

    model_config = ConfigDict(extra="forbid")

    license: SignedLicenseCreate
    reason: int = Field(default=4, ge=0, le=65535, description="reason code (default 4)")


class LicenseSigningFacts(BaseModel):
    """Answer to ``GET /v1/licenses/signing``: what the calling department signs a
    license for, and the name and codes the registry records it under."""

    chainId: int
    signaturePrefix: str
    commitmentPrefix: str
    issuerName: str = Field(description="the department's registered name (证照颁发机构)")
    uscc: str
    issuerCodes: list[str] = Field(description="issuer codes its identifiers may carry")


class StatusChangePublic(BaseModel):
    """One status change of a license its department signed, as the registry keeps it."""

    action: str = Field(description="suspend, resume, revoke or expire")
    reason: int
    sequence: int | None = Field(
        description="the history position it takes on chain (null: it reverted, took none)"
    )
    commitment: str
    department_key: str
    department_signature: str
    state: str = Field(description="pending, sent, confirmed or reverted")
    tx_hash: str
    block_number: int | None
    created_at: datetime


class DepartmentLicensePublic(BaseModel):
    """One license a department signed, as an auditor lists it."""

    identifier: str
    id_hash: str
    commitment: str
    department_key: str
    department_signature: str
    status: str = Field(description="the status last confirmed by the registry")
    predecessor: str | None
    tx_hash: str | None
    block_number: int | None
    created_at: datetime
    status_changes: list[StatusChangePublic] = Field(
        default_factory=list, description="its status changes the department signed"
    )


class DepartmentLicensesPublic(BaseModel):
    """Answer to ``GET /v1/licenses/by-department/{uscc}``: one page, by identifier."""

    uscc: str
    licenses: list[DepartmentLicensePublic]
    next_after: str | None = Field(description="pass as 'after' for the next page")


class SignedLicenseStatusChange(BaseModel):
    """``POST /v1/licenses/{identifier}/suspend|resume|revoke|expire``: the reason code and
    the department's signature over the change."""

    model_config = ConfigDict(extra="forbid")

    reason: int = Field(ge=0, le=65535, description="reason code (contracts.trust.Reason)")
    sequence: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="required: the history position the change takes, i.e. the number of "
        "entries of the license's on-chain history now (chain.history in GET "
        "/v1/licenses/{identifier})",
    )
    department_signature: str | None = Field(
        default=None,
        max_length=MAX_SIGNATURE_BASE64,
        description="required: base64 of the client key's DER SM2 signature (default signer "
        "ID) over 'lianxin/department-commitment/v1' + 0x00 + the chain id (8 bytes, "
        "big-endian) + the change's 32-byte commitment: SM3 of "
        "'lianxin/license-status/v1' + 0x00 + the client's public key (65 bytes) + the chain "
        "id (8 bytes) + SM3 of the identifier (32 bytes) + the action (1 byte: suspend 1, "
        "resume 2, revoke 3, expire 4) + the reason (2 bytes) + sequence (8 bytes), all "
        "big-endian (sdk.license_status_signing)",
    )


class LicenseSignerPublic(BaseModel):
    """Who signed a license's issuance, checked against the department's key record in
    IssuerRegistry at the issuing block."""

    verdict: Verdict = Field(
        description="VALID: the signature verifies with a key the department held there; "
        "INVALID: it does not (or the license carries none); UNAVAILABLE: not checked now"
    )
    uscc: str | None = Field(description="the signing department (VALID only)")
    name: str | None = Field(description="its name in IssuerRegistry (VALID only)")
    detail: str


class SignedLicensePublic(LicensePublic):
    """A license with its department's signature: the commitment it signed, who signed it
    (checked on chain), and its signed status changes."""

    commitment: str | None = Field(
        default=None, description="the license's commitment its department signed"
    )
    signed_by: LicenseSignerPublic | None = Field(
        default=None, description="the signature's verdict (reads only; null for writes)"
    )
    status_changes: list[StatusChangePublic] = Field(
        default_factory=list, description="status changes signed by the department"
    )
