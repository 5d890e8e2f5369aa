"""Request and answer bodies of the authorization, data gateway and tracker APIs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuthorizationCreate(BaseModel):
    """A department asks for an authorization (it is granted at once when its legal basis
    needs no consent; otherwise it waits for the subject's)."""

    model_config = ConfigDict(extra="forbid")

    subject_kind: str = Field(pattern="^(citizen|enterprise)$")
    subject_id: str = Field(min_length=18, max_length=18, description="USCC or resident ID")
    controller: str = Field(min_length=18, max_length=18, description="USCC holding the data")
    recipient: str = Field(min_length=18, max_length=18, description="USCC reading the data")
    items: list[str] = Field(min_length=1, max_length=32)
    purpose: str = Field(min_length=1, max_length=200)
    legal_basis: str = Field(pattern="^(consent|statutory_duty|contract|investigation)$")
    basis_citation: str = Field(default="", max_length=300)
    valid_from: int = Field(ge=0, le=2**40)
    valid_until: int = Field(ge=0, le=2**40)
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)
    disclose_after: int | None = Field(default=None, ge=0, le=2**40)


class ConsentGive(BaseModel):
    """The subject's consent: the enterprise's own signature over ``consent_sign_bytes``,
    or the identity provider's over ``approval_sign_bytes`` (see sdk.data_receipts)."""

    model_config = ConfigDict(extra="forbid")

    signature: str = Field(min_length=8, max_length=200, description="base64 DER SM2")


class EventPublic(BaseModel):
    """One anchored event of an authorization."""

    kind: str
    at: int
    record_id: str
    event: dict[str, Any]
    registry_signature: str
    metadata_salt: str
    bundle: dict[str, Any] | None = None


class AuthorizationPublic(BaseModel):
    """An authorization as its parties see it."""

    id: str
    status: str = Field(description="requested, granted, revoked, amended or expired")
    terms: dict[str, Any]
    terms_hash: str
    subject_salt: str = Field(description="hex salt of the subject commitment")
    consent: dict[str, Any] | None
    uses_made: int
    granted_at: int | None
    revoked_at: int | None
    events: list[EventPublic]


class AuthorizationList(BaseModel):
    """One page of the authorizations of one subject or department."""

    authorizations: list[AuthorizationPublic]
    next: str | None = Field(
        default=None, description="cursor of the following page (``after``); null: the last"
    )


class DataRead(BaseModel):
    """A read through the gateway, citing an authorization."""

    model_config = ConfigDict(extra="forbid")

    authorization_id: str = Field(min_length=36, max_length=36)
    item: str = Field(min_length=1, max_length=250)
    purpose: str = Field(min_length=1, max_length=200)
    resource: str = Field(min_length=1, max_length=200, description="e.g. a license identifier")


class ReceiptPublic(BaseModel):
    """The signed log entry of one access, and its proof bundle once anchored."""

    entry: dict[str, Any]
    entry_hash: str
    record_id: str
    registry_key: str
    metadata_salt: str
    registry_signature: str
    chain_id: int
    registry_proof: str | None = None
    bundle: dict[str, Any] | None = None

    def to_sdk_json(self) -> dict[str, Any]:
        """The receipt as ``sdk.data_receipts.AccessReceipt.from_json`` reads it."""
        return {
            "entry": self.entry,
            "recordId": self.record_id,
            "registryKey": self.registry_key,
            "metadataSalt": self.metadata_salt,
            "registrySignature": self.registry_signature,
            "registryProof": self.registry_proof,
            "chainId": self.chain_id,
            "bundle": self.bundle,
        }


class DataAnswer(BaseModel):
    """An allowed read: the data and the receipt of the access."""

    data: dict[str, Any]
    receipt: dict[str, Any]


class CheckList(BaseModel):
    """One page of the credit checks made of a subject, each with its receipt (kind
    ``credit-check``)."""

    checks: list[dict[str, Any]]
    next: str | None = Field(
        default=None, description="cursor of the following page (``after``); null: the last"
    )


class RepairList(BaseModel):
    """One page of the credit repair applications a subject filed itself."""

    repairs: list[dict[str, Any]]
    next: str | None = Field(
        default=None, description="cursor of the following page (``after``); null: the last"
    )


class AccessList(BaseModel):
    """One page of the accesses a subject may see (or of a stream, for its parties),
    each with its receipt."""

    accesses: list[dict[str, Any]]
    next: str | None = Field(
        default=None, description="cursor of the following page (``after``); null: the last"
    )
