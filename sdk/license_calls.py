"""The registry calls of licenses signed by their department: what each sends and how its
answer is read (the clients in :mod:`sdk.trust` do the I/O).

Signing a license needs what the registry records it under: the chain id, and the
department's registered name (the metadata hash covers it). :func:`license_signing_call`
asks the registry once (``GET /v1/licenses/signing``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chain.crypto import PrivateKey
from sdk.license_metadata import InvalidMetadata
from sdk.license_signing import sign_license
from sdk.license_status_signing import StatusAction, sign_status_change
from sdk.trust_core import (
    Call,
    _license_write,
    json_ready,
    json_request,
    license_path,
    new_idempotency_key,
)
from sdk.trust_types import LicenseResult, RegistryUnavailable, Verdict

LICENSE_SIGNING_PATH = "/v1/licenses/signing"
"""What a department signs a license for."""


@dataclass(frozen=True)
class LicenseSigning:
    """What the calling department signs its licenses for (``GET /v1/licenses/signing``)."""

    chain_id: int
    """The chain."""
    issuer_name: str
    """The department's registered name, which the registry records as 证照颁发机构."""
    uscc: str
    """The department's USCC."""
    issuer_codes: tuple[str, ...]
    """The issuer codes its identifiers may carry."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LicenseSigning:
        """From the registry's ``LicenseSigningFacts`` object."""
        return cls(
            chain_id=int(value["chainId"]),
            issuer_name=str(value["issuerName"]),
            uscc=str(value["uscc"]),
            issuer_codes=tuple(str(code) for code in value["issuerCodes"]),
        )


@dataclass(frozen=True)
class DepartmentLicenses:
    """One page of the licenses a department signed (an auditor's listing)."""

    uscc: str
    """The department."""
    licenses: tuple[Mapping[str, Any], ...]
    """Each license's identifier, hash, commitment, key, signature, status and block."""
    next_after: str | None
    """Pass as ``after`` for the next page; None after the last."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> DepartmentLicenses:
        """The page from the registry's ``DepartmentLicensesPublic`` object."""
        return cls(
            uscc=str(value["uscc"]),
            licenses=tuple(value["licenses"]),
            next_after=value.get("next_after"),
        )


def license_signing_call() -> Call[LicenseSigning]:
    """``GET /v1/licenses/signing``."""
    return Call(json_request("GET", LICENSE_SIGNING_PATH), LicenseSigning.from_json)


def _signed_body(
    key: PrivateKey,
    signing: LicenseSigning,
    metadata: Mapping[str, Any],
    idempotency_key: str,
    predecessor: str | None,
) -> dict[str, Any]:
    """``metadata`` salted and signed; metadata the registry will refuse anyway goes as it
    is, for the registry to answer with its typed 422 (or 403 for another issuer)."""
    request = json_ready(metadata)
    try:
        return sign_license(
            key,
            signing.chain_id,
            request,
            issuer_name=signing.issuer_name,
            idempotency_key=idempotency_key,
            predecessor=predecessor,
        ).body
    except (InvalidMetadata, ValueError, TypeError):
        return dict(request)


def signed_issue_license_call(
    key: PrivateKey,
    signing: LicenseSigning,
    metadata: Mapping[str, Any],
    idempotency_key: str | None,
) -> Call[LicenseResult]:
    """``POST /v1/licenses`` with GB/T 36903 ``metadata``, salted and signed (the salt
    derived from the idempotency key: a retry sends the same body)."""
    request_key = new_idempotency_key(idempotency_key)
    body = _signed_body(key, signing, metadata, request_key, None)
    return _license_write("/v1/licenses", body, request_key)


def signed_change_license_call(
    key: PrivateKey,
    signing: LicenseSigning,
    identifier: str,
    metadata: Mapping[str, Any],
    reason: int,
    idempotency_key: str | None,
) -> Call[LicenseResult]:
    """``POST /v1/licenses/{id}/change``: a new version with ``metadata``, salted and
    signed as the successor of ``identifier``."""
    request_key = new_idempotency_key(idempotency_key)
    body = _signed_body(key, signing, metadata, request_key, identifier)
    payload = {"license": body, "reason": int(reason)}
    return _license_write(license_path(identifier, "/change"), payload, request_key)


def status_sequence(current: LicenseResult) -> int:
    """The history position the next status change of ``current`` (a license read now)
    takes: the number of entries its on-chain history has (1 for a license not on chain
    yet, which the registry then refuses with its typed answer). Raises RegistryUnavailable
    when the registry could not read the chain (the position is unknown, so nothing is
    signed)."""
    chain = current.chain
    if chain is None or chain.verdict is Verdict.UNAVAILABLE:
        raise RegistryUnavailable(
            503, "chain_unavailable", "the license's on-chain history could not be read"
        )
    return max(len(chain.history), 1)


def signed_transition_call(
    key: PrivateKey,
    signing: LicenseSigning,
    identifier: str,
    action: str,
    reason: int,
    sequence: int,
    idempotency_key: str | None,
) -> Call[LicenseResult]:
    """``POST /v1/licenses/{id}/{action}`` (suspend, resume, revoke or expire) with
    ``reason``, signed by the department as the change taking history position
    ``sequence`` (:mod:`sdk.license_status_signing`). Raises ValueError for an unknown
    action or a term out of range."""
    status_action = StatusAction.named(action)
    signed = sign_status_change(
        key, signing.chain_id, identifier, status_action, int(reason), sequence
    )
    path = license_path(identifier, f"/{status_action.function}")
    return _license_write(path, signed.body, idempotency_key)


def department_licenses_call(uscc: str, *, after: str, limit: int) -> Call[DepartmentLicenses]:
    """``GET /v1/licenses/by-department/{uscc}``: what the department issued."""
    path = f"/v1/licenses/by-department/{uscc}?after={quote(after, safe='')}&limit={limit}"
    return Call(json_request("GET", path), DepartmentLicenses.from_json)


__all__ = [
    "LICENSE_SIGNING_PATH",
    "DepartmentLicenses",
    "LicenseSigning",
    "department_licenses_call",
    "license_signing_call",
    "signed_change_license_call",
    "signed_issue_license_call",
    "signed_transition_call",
    "status_sequence",
]
