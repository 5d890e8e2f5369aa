"""Request and response bodies of licenses signed by their department: the license with
the salt of its commitment and the department's signature over that commitment, what a
department signs for, and the auditor's listing per department (the license schemas of
:mod:`registry.schemas`, extended)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from registry.record_schemas import MAX_SIGNATURE_BASE64
from registry.schemas import LicenseCreate

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


class DepartmentLicensesPublic(BaseModel):
    """Answer to ``GET /v1/licenses/by-department/{uscc}``: one page, by identifier."""

    uscc: str
    licenses: list[DepartmentLicensePublic]
    next_after: str | None = Field(description="pass as 'after' for the next page")
