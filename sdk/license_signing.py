"""A department's side of issuing an e-license: build the GB/T 36903 metadata as the
registry will (:mod:`sdk.license_metadata`), salt the holder commitment and the metadata
hash, compute the license's commitment (:func:`license_commitment`) and sign it with the
department's own SM2 key over the same sign-bytes as a notarized record
(:func:`sdk.bundle_links.department_sign_bytes`). The registry recomputes the commitment
from the request and checks the signature; the issuance bundle carries it, so that the
proof shows which department vouched for the license, not only which key anchored it.

The salt (32 bytes) is derived from the department's private key and the request's
Idempotency-Key (HMAC-SM3): a retry of the same request sends the same body, and nobody
without the private key can compute it.
"""

from __future__ import annotations

import base64
import datetime
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain.crypto import PrivateKey, sm3
from chain.primitives import Hash32
from contracts.trust import holder_commitment, license_id_hash
from sdk.bundle_links import department_sign_bytes
from sdk.commitments import DEPARTMENT_KEY_SIZE
from sdk.identifiers import InvalidIdentifier, parse_license_identifier
from sdk.license_metadata import (
    ContentField,
    HolderIdType,
    InvalidMetadata,
    LicenseMetadata,
    chain_valid_until,
    metadata_hash,
)

LICENSE_COMMITMENT_PREFIX = b"lianxin/license/v1\x00"
"""Domain separation of license commitments (a record commitment has its own prefix, so a
signature over one never stands for the other)."""

LICENSE_SALT_SIZE = 32
"""Bytes of a license's salt (holder commitment and metadata hash)."""

LICENSE_SALT_PREFIX = b"lianxin/license-salt/v1\x00"
"""Domain separation of derived license salts."""

NO_PREDECESSOR = Hash32(bytes(32))
"""The predecessor hash of a license issued as a first version."""


def license_commitment(
    department_key: bytes,
    id_hash: bytes,
    holder: bytes,
    metadata: bytes,
    valid_until: int,
    predecessor: bytes = NO_PREDECESSOR,
) -> Hash32:
    """What a department signs for a license: SM3 of the prefix, its public key (65
    bytes), the identifier's hash, the holder commitment, the salted metadata hash (32
    bytes each), ``validUntil`` (8 bytes, big-endian) and the predecessor's identifier hash
    (32 zero bytes for a first version). Fixed widths, so any tool can compute it."""
    if len(department_key) != DEPARTMENT_KEY_SIZE:
        raise ValueError(f"a department key is {DEPARTMENT_KEY_SIZE} bytes")
    if any(len(value) != 32 for value in (id_hash, holder, metadata, predecessor)):
        raise ValueError("hashes and commitments are 32 bytes each")
    if not 0 <= valid_until < 2**64:
        raise ValueError("validUntil out of range")
    return sm3(
        LICENSE_COMMITMENT_PREFIX
        + bytes(department_key)
        + bytes(id_hash)
        + bytes(holder)
        + bytes(metadata)
        + valid_until.to_bytes(8, "big")
        + bytes(predecessor)
    )


@dataclass(frozen=True)
class LicenseTerms:
    """What LicenseRegistry records for a license version, and its commitment's inputs."""

    id_hash: Hash32
    """SM3 of the identifier (its key on chain)."""
    holder_commitment: Hash32
    """Salted commitment to the holder's identifier."""
    metadata_hash: Hash32
    """Salted hash of the metadata."""
    valid_until: int
    """Seconds since the epoch from which it is expired; 0 for no limit."""
    predecessor: Hash32
    """Identifier hash of the version it replaces (NO_PREDECESSOR for a first version)."""

    def commitment(self, department_key: bytes) -> Hash32:
        """:func:`license_commitment` of these terms by ``department_key``."""
        return license_commitment(
            department_key,
            self.id_hash,
            self.holder_commitment,
            self.metadata_hash,
            self.valid_until,
            self.predecessor,
        )


def license_terms(
    metadata: LicenseMetadata, salt: bytes, predecessor: str | None = None
) -> LicenseTerms:
    """The terms of ``metadata`` under ``salt`` (replacing the license ``predecessor``)."""
    return LicenseTerms(
        id_hash=license_id_hash(metadata.identifier),
        holder_commitment=holder_commitment(salt, metadata.holder_id),
        metadata_hash=metadata_hash(metadata, salt),
        valid_until=chain_valid_until(metadata.valid_until),
        predecessor=NO_PREDECESSOR if predecessor is None else license_id_hash(predecessor),
    )


def derive_license_salt(key: PrivateKey, idempotency_key: str) -> bytes:
    """The 32-byte salt of the license issued under ``idempotency_key``: HMAC-SM3 under
    the private key's scalar."""
    message = LICENSE_SALT_PREFIX + idempotency_key.encode()
    return hmac.new(key.to_bytes(), message, "sm3").digest()[:LICENSE_SALT_SIZE]


def _date(field: str, value: Any) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidMetadata(field, "must be a date (or YYYY-MM-DD)")


def license_metadata_of(request: Mapping[str, Any], issuer_name: str) -> LicenseMetadata:
    """The metadata the registry records for a ``POST /v1/licenses`` body: type and issuer
    codes from the identifier, ``issuer_name`` (the department's registered name) unless
    the body names one. Raises InvalidMetadata."""
    identifier = request.get("identifier")
    try:
        parsed = parse_license_identifier(str(identifier))
    except InvalidIdentifier as exc:
        raise InvalidMetadata("identifier", exc.detail) from exc
    until = request.get("valid_until")
    try:
        content = tuple(
            ContentField(str(item["name"]), str(item["value"]))
            for item in request.get("content") or ()
        )
    except (KeyError, TypeError) as exc:
        raise InvalidMetadata("content", "must be a list of {name, value} objects") from exc
    return LicenseMetadata(
        license_name=request.get("license_name"),  # type: ignore[arg-type]
        identifier=str(identifier),
        type_code=parsed.type_code,
        holder_name=request.get("holder_name"),  # type: ignore[arg-type]
        holder_id_type=HolderIdType(str(request.get("holder_id_type"))),
        holder_id=request.get("holder_id"),  # type: ignore[arg-type]
        issuer_name=request.get("issuer_name") or issuer_name,
        issuer_code=parsed.issuer_code,
        issue_date=_date("issue_date", request.get("issue_date")),
        valid_from=_date("valid_from", request.get("valid_from")),
        valid_until=None if until is None else _date("valid_until", until),
        license_number=request.get("license_number"),
        content=content,
    )


@dataclass(frozen=True)
class SignedLicense:
    """A license ready to send: the request body with its salt and signature."""

    body: dict[str, Any]
    """The JSON object of ``POST /v1/licenses`` (or the ``license`` of a change)."""
    terms: LicenseTerms
    """What it commits to."""
    commitment: Hash32
    """The commitment it signed."""


def sign_license(
    key: PrivateKey,
    chain_id: int,
    request: Mapping[str, Any],
    *,
    issuer_name: str,
    idempotency_key: str,
    predecessor: str | None = None,
) -> SignedLicense:
    """Salt, commit and sign the license of ``request`` (JSON values: dates as
    ``YYYY-MM-DD``) for the chain ``chain_id``, as the department registered as
    ``issuer_name`` (replacing ``predecessor``, for a change). Raises InvalidMetadata
    (or ValueError: a holder_id_type that is neither ``uscc`` nor ``resident_id``)."""
    salt = derive_license_salt(key, idempotency_key)
    terms = license_terms(license_metadata_of(request, issuer_name), salt, predecessor)
    commitment = terms.commitment(key.public_key.to_bytes())
    signature = key.sign(department_sign_bytes(chain_id, commitment))
    body = {
        **request,
        "commitment_salt": salt.hex(),
        "department_signature": base64.b64encode(signature).decode("ascii"),
    }
    return SignedLicense(body=body, terms=terms, commitment=commitment)


__all__ = [
    "LICENSE_COMMITMENT_PREFIX",
    "LICENSE_SALT_PREFIX",
    "LICENSE_SALT_SIZE",
    "NO_PREDECESSOR",
    "LicenseTerms",
    "SignedLicense",
    "derive_license_salt",
    "license_commitment",
    "license_metadata_of",
    "license_terms",
    "sign_license",
]
