"""Licenses signed by their department: the check of the department's signature over a
license's commitment at issue (the commitment recomputed from the request, as
:mod:`sdk.license_signing` computes it), and the auditor's listing of what a department
signed: its licenses, each with the status changes it signed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from chain.primitives import Hash32
from registry.db import Database
from registry.department_signatures import checked_department_signature, client_key_bytes
from registry.errors import InvalidInput
from registry.license_schemas import (
    DepartmentLicensePublic,
    DepartmentLicensesPublic,
    SignedLicenseCreate,
    StatusChangePublic,
)
from registry.license_status import status_change_public
from registry.models import Client, License, LicenseOperation
from sdk.license_metadata import LicenseMetadata
from sdk.license_signing import LicenseTerms, license_terms


@dataclass(frozen=True)
class SignedTerms:
    """A license's terms, their salt, and the department's checked signature over them."""

    terms: LicenseTerms
    """What LicenseRegistry records."""
    salt: bytes
    """The salt of the holder commitment and metadata hash (the registry seals it)."""
    department_key: bytes
    """The signing client's public key (65 bytes)."""
    commitment: Hash32
    """The signed commitment."""
    signature: bytes
    """The department's DER SM2 signature over it."""


def signed_terms(
    client: Client,
    metadata: LicenseMetadata,
    payload: SignedLicenseCreate,
    chain_id: int,
    predecessor: str | None,
) -> SignedTerms:
    """The terms of ``metadata`` under the request's salt, with the department's signature
    over their commitment checked against the client's key for ``chain_id``. Raises
    InvalidInput (422): ``department_signature_required``, or ``bad_department_signature``
    naming the commitment the registry computed."""
    if payload.commitment_salt is None or payload.department_signature is None:
        raise InvalidInput(
            "salt the license (commitment_salt) and sign its commitment with the "
            "department's key (department_signature; see GET /v1/licenses/signing)",
            code="department_signature_required",
        )
    salt = bytes.fromhex(payload.commitment_salt)
    terms = license_terms(metadata, salt, predecessor)
    key_bytes = client_key_bytes(client)
    commitment = terms.commitment(key_bytes)
    signature = checked_department_signature(
        key_bytes, payload.department_signature, commitment, chain_id, "license commitment"
    )
    return SignedTerms(terms, salt, key_bytes, commitment, signature)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def department_licenses(
    db: Database, uscc: str, *, after: str, limit: int
) -> DepartmentLicensesPublic:
    """One page of the licenses department ``uscc`` signed (any of its clients), by
    identifier after ``after``: what it vouched for, for an auditor."""
    with db.read_session() as session:
        rows = session.scalars(
            select(License)
            .join(Client, License.client_id == Client.id)
            .where(
                Client.uscc == uscc,
                License.department_signature.is_not(None),
                License.identifier > after,
            )
            .order_by(License.identifier)
            .limit(limit + 1)
        ).all()
        identifiers = [row.identifier for row in rows[:limit]]
        changes: dict[str, list[StatusChangePublic]] = {name: [] for name in identifiers}
        for operation in session.scalars(
            select(LicenseOperation)
            .where(
                LicenseOperation.identifier.in_(identifiers),
                LicenseOperation.department_signature.is_not(None),
            )
            .order_by(LicenseOperation.id)
        ):
            changes[operation.identifier].append(status_change_public(operation))
        page = [
            DepartmentLicensePublic(
                identifier=row.identifier,
                id_hash=row.id_hash,
                commitment=row.commitment or "",
                department_key=row.department_key or "",
                department_signature=row.department_signature or "",
                status=row.status,
                predecessor=row.predecessor,
                tx_hash=row.tx_hash,
                block_number=row.block_number,
                created_at=_aware(row.created_at),
                status_changes=changes[row.identifier],
            )
            for row in rows[:limit]
        ]
    return DepartmentLicensesPublic(
        uscc=uscc,
        licenses=page,
        next_after=page[-1].identifier if len(rows) > limit else None,
    )


__all__ = ["SignedTerms", "department_licenses", "signed_terms"]
