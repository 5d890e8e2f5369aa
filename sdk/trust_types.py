"""What the registry's trust service answers, as typed values: the results of notarization,
verification and e-license calls, and the errors it reports. Each result is built from the
JSON the registry sends by its ``from_json`` class method."""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.trust import LicenseStatus
from sdk.bundle import ProofBundle
from sdk.errors import SdkError


class RegistryError(SdkError):
    """The registry answered with an error: ``status_code`` (HTTP), and the typed error body's
    ``code`` and ``message``."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"registry error {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 502/503/504, through every retry."""


class MalformedAnswer(RegistryError):
    """The registry answered success with a body that is not the API's answer: not JSON, or
    JSON of another shape (a member missing or of another type). Nothing is returned from
    such an answer; a proxy or a registry of another version is the usual cause."""

    def __init__(self, message: str) -> None:
        super().__init__(502, "malformed_answer", message)


class Verdict(enum.StrEnum):
    """The answer to one question of a verification."""

    VALID = "VALID"
    """The check holds."""
    INVALID = "INVALID"
    """The check fails."""
    UNAVAILABLE = "UNAVAILABLE"
    """The check could not be made now (the chain could not be reached, or the record is
    not anchored yet); never a statement that something is revoked or invalid."""


@dataclass(frozen=True)
class VerdictDetail:
    """One verdict and why."""

    verdict: Verdict
    """The verdict."""
    detail: str
    """A short explanation."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> VerdictDetail:
        """The verdict of one check as the registry reports it."""
        return cls(Verdict(value["verdict"]), str(value.get("detail", "")))


@dataclass(frozen=True)
class NotarizeResult:
    """What the registry answered to a notarization."""

    record_id: str
    """The record's id."""
    status: str
    """``accepted``, ``sealed`` or ``anchored``."""
    digest: str
    """Hex SM3 digest of the document."""
    field_hashes: Mapping[str, str]
    """Salted hash of each disclosable field."""
    salts: Mapping[str, str]
    """Hex salt of each field: keep them, they are needed to disclose a field later."""
    metadata_salt: str | None = None
    """Hex salt of the metadata hash (records signed by the department)."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> NotarizeResult:
        """The result from the registry's ``RecordAccepted`` object."""
        return cls(
            record_id=value["id"],
            status=value["status"],
            digest=value["digest"],
            field_hashes=dict(value.get("field_hashes") or {}),
            salts=dict(value.get("salts") or {}),
            metadata_salt=value.get("metadata_salt"),
        )


@dataclass(frozen=True)
class RecordResult:
    """A record as the registry reports it."""

    record_id: str
    """The record's id."""
    status: str
    """``accepted``, ``sealed`` or ``anchored``."""
    digest: str
    """Hex SM3 digest of the document."""
    metadata: Mapping[str, Any]
    """The metadata given when it was notarized."""
    batch: Mapping[str, Any] | None
    """Batch root, leaf index, anchoring tx hash and block once sealed."""
    bundle: ProofBundle | None
    """The proof bundle once anchored."""
    history: tuple[Mapping[str, Any], ...] = ()
    """What happened to it, oldest first (``accepted``, ``anchored``, ``revocation
    requested``, ``revoked`` …), each with its time, block and reason where known."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RecordResult:
        """The result from the registry's ``RecordPublic`` object."""
        return cls(
            record_id=value["id"],
            status=value["status"],
            digest=value["digest"],
            metadata=dict(value.get("metadata") or {}),
            batch=value.get("batch"),
            bundle=_bundle(value.get("bundle")),
            history=tuple(value.get("history") or ()),
        )


@dataclass(frozen=True)
class DepartmentRecords:
    """One page of the records a department signed (an auditor's listing)."""

    uscc: str
    """The department."""
    records: tuple[Mapping[str, Any], ...]
    """Each record's id, digest, commitment, status, batch root, block and signature."""
    next_after: int | None
    """Pass as ``after`` for the next page; None after the last."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> DepartmentRecords:
        """The page from the registry's ``DepartmentRecordsPublic`` object."""
        return cls(
            uscc=str(value["uscc"]),
            records=tuple(value["records"]),
            next_after=value.get("next_after"),
        )


@dataclass(frozen=True)
class Verification:
    """The registry's separate verdicts on a document or digest."""

    found: bool
    """Whether the registry knows a record with this digest."""
    record_id: str | None
    """The record verified."""
    digest: str
    """Hex SM3 digest verified."""
    integrity: VerdictDetail
    """The digest is that of a registered record, included in its batch."""
    issuance: VerdictDetail
    """The batch was anchored by an authorised issuer (the proof bundle verifies)."""
    status: VerdictDetail
    """The record is in force on chain now (not revoked)."""
    issuer: VerdictDetail
    """The issuing department is registered on chain and its key was valid when anchoring."""
    facts: Mapping[str, Any]
    """Supporting facts: issuer USCC and name, anchoring block, revocation block/reason."""
    bundle: ProofBundle | None
    """The proof bundle, when the record is anchored."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Verification:
        """The verdicts from the registry's answer to ``POST /v1/verify``."""
        return cls(
            found=bool(value["found"]),
            record_id=value.get("record_id"),
            digest=value["digest"],
            integrity=VerdictDetail.from_json(value["integrity"]),
            issuance=VerdictDetail.from_json(value["issuance"]),
            status=VerdictDetail.from_json(value["status"]),
            issuer=VerdictDetail.from_json(value["issuer"]),
            facts=dict(value.get("facts") or {}),
            bundle=_bundle(value.get("bundle")),
        )


# -- e-licenses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenseHistoryEntry:
    """One recorded state of a license on chain."""

    status: LicenseStatus
    """The state entered."""
    reason: int
    """Reason code (contracts.trust.Reason)."""
    reason_text: str
    """What the code says (English)."""
    block_number: int
    """Block of the change."""
    by: str
    """Account that made it (0x hex)."""


@dataclass(frozen=True)
class LicenseChainStatus:
    """A license's status as the chain reported it when the registry was asked."""

    verdict: Verdict
    """VALID (in force), INVALID (not in force), UNAVAILABLE (chain unreachable: unknown —
    never to be read as revoked)."""
    status: LicenseStatus | None
    """``statusOf`` (None when UNAVAILABLE)."""
    detail: str
    """A short explanation."""
    read_at_block: int | None
    """The block read."""
    history: tuple[LicenseHistoryEntry, ...]
    """Every recorded state, oldest first."""


@dataclass(frozen=True)
class LicenseOperationResult:
    """The LicenseRegistry transaction a write request made."""

    id: int
    """The registry's operation id."""
    action: str
    """issue, change, suspend, resume, revoke or expire."""
    reason: int
    """Reason code."""
    state: str
    """pending, sent, confirmed or reverted."""
    tx_hash: str
    """Hex hash of the transaction."""
    block_number: int | None
    """Block that included it, once confirmed."""
    error: str | None
    """Why it reverted, if it did."""

    @property
    def confirmed(self) -> bool:
        """Whether its receipt (status 1) is in."""
        return self.state == "confirmed"


@dataclass(frozen=True)
class LicenseResult:
    """A license as the registry reports it."""

    identifier: str
    """The GB/T 36904 identifier."""
    id_hash: str
    """Its on-chain key (hex SM3 of the identifier)."""
    department: str
    """USCC of the issuing department."""
    recorded_status: str
    """The status the registry last saw confirmed (pending until the issue is)."""
    metadata: Mapping[str, Any] | None
    """GB/T 36903 metadata (holder data only for the issuing department)."""
    holder_commitment: str
    """Hex salted SM3 commitment to the holder (what the chain stores)."""
    metadata_hash: str
    """Hex salted metadata hash (what the chain stores)."""
    valid_until: int
    """``validUntil`` on chain (seconds since the epoch; 0 for no limit)."""
    predecessor: str | None
    """The version it replaced."""
    successor: str | None
    """The version that replaced it."""
    tx_hash: str | None
    """The transaction that created it on chain."""
    block_number: int | None
    """Its block."""
    anchored_at: str | None
    """Its block's time (ISO 8601)."""
    chain: LicenseChainStatus | None
    """Live status and history (reads only; writes leave it None)."""
    verify_url: str
    """The citizen's verify page."""
    qr_png_url: str
    """Static QR code, PNG."""
    qr_svg_url: str
    """Static QR code, SVG."""
    operation: LicenseOperationResult | None
    """For a write: the transaction it made."""
    commitment: str | None = None
    """Hex commitment the department signed (None for a license issued before departments
    signed)."""
    signed_by: Mapping[str, Any] | None = None
    """The registry's check of that signature against the department's key on chain:
    ``verdict`` (VALID, INVALID, UNAVAILABLE), ``uscc``, ``name``, ``detail`` (reads only)."""
    status_changes: tuple[Mapping[str, Any], ...] = ()
    """Its status changes, each signed by the department (action, reason, sequence,
    signature, transaction), oldest first."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LicenseResult:
        """The license from the registry's answer to a license read or write."""
        chain = value.get("chain")
        operation = value.get("operation")
        return cls(
            identifier=value["identifier"],
            id_hash=value["id_hash"],
            department=value["department"],
            recorded_status=value["recorded_status"],
            metadata=value.get("metadata"),
            holder_commitment=value["holder_commitment"],
            metadata_hash=value["metadata_hash"],
            valid_until=int(value["valid_until"]),
            predecessor=value.get("predecessor"),
            successor=value.get("successor"),
            tx_hash=value.get("tx_hash"),
            block_number=value.get("block_number"),
            anchored_at=value.get("anchored_at"),
            chain=None if chain is None else _license_chain_status(chain),
            verify_url=value["verify_url"],
            qr_png_url=value["qr_png_url"],
            qr_svg_url=value["qr_svg_url"],
            operation=None if operation is None else LicenseOperationResult(**operation),
            commitment=value.get("commitment"),
            signed_by=value.get("signed_by"),
            status_changes=tuple(value.get("status_changes") or ()),
        )


@dataclass(frozen=True)
class LicenseToken:
    """A short-lived signed token for a license's dynamic QR code."""

    token: str
    """The token (base64url)."""
    url: str
    """Its verify page."""
    expires_at: str
    """When it stops being accepted (ISO 8601)."""
    qr_svg: str
    """QR code of ``url`` (SVG)."""
    qr_png: bytes
    """QR code of ``url`` (PNG)."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LicenseToken:
        """The token from the registry's answer to ``POST /v1/licenses/{id}/token``."""
        return cls(
            token=value["token"],
            url=value["url"],
            expires_at=value["expires_at"],
            qr_svg=value["qr_svg"],
            qr_png=base64.b64decode(value["qr_png_base64"]),
        )


def _bundle(value: Any) -> ProofBundle | None:
    return None if value is None else ProofBundle.from_json(value)


def _license_status(value: str | None) -> LicenseStatus | None:
    return None if value is None else LicenseStatus[value.upper()]


def _license_chain_status(chain: Mapping[str, Any]) -> LicenseChainStatus:
    return LicenseChainStatus(
        verdict=Verdict(chain["verdict"]),
        status=_license_status(chain.get("status")),
        detail=str(chain.get("detail", "")),
        read_at_block=chain.get("read_at_block"),
        history=tuple(
            LicenseHistoryEntry(
                status=LicenseStatus[entry["status"].upper()],
                reason=int(entry["reason"]),
                reason_text=str(entry.get("reason_text", "")),
                block_number=int(entry["block_number"]),
                by=str(entry["by"]),
            )
            for entry in chain.get("history", ())
        ),
    )
