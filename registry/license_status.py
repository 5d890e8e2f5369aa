"""License status changes signed by the issuing department (a part of
:class:`registry.license_service.LicenseService`, held by it as ``status``): suspend,
resume, revoke and expire.

A status change follows the service's one write path, with the department's signature
checked before anything is signed or stored: the license must exist (404) and belong to the
client's department (403); the request must carry the department's signature over the
change's commitment (:func:`sdk.license_status_signing.license_status_commitment`: the
license, the action, the reason, the history position it takes and the chain id), else 422
``department_signature_required``; the signature must verify with the client's key, else
422 ``bad_department_signature``; the history position must be the license's next one on
chain, with no other operation of the license in flight, else 409
``stale_status_sequence`` / ``operation_pending``. The operation row keeps the signature, and
the license's bundle carries each confirmed signed change with the proof of its transaction
(:mod:`sdk.license_status_bundle`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from chain.primitives import Hash32
from chain.types import Header
from registry.chain_gateway import EvidenceNotReady
from registry.department_keys import department_key_claims
from registry.department_signatures import checked_department_signature, client_key_bytes
from registry.errors import Conflict, InvalidInput, ServiceUnavailable
from registry.license_rules import LICENSE_REGISTRY, WriteOutcome, _aware
from registry.license_schemas import SignedLicenseStatusChange, StatusChangePublic
from registry.models import Client, License, LicenseAction, LicenseOperation, OperationState
from sdk.bundle_links import DepartmentClaim
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.license_status_bundle import status_change_json
from sdk.license_status_signing import StatusAction, license_status_commitment

if TYPE_CHECKING:
    from registry.license_service import LicenseService

STATUS_ACTIONS = (
    LicenseAction.SUSPEND,
    LicenseAction.RESUME,
    LicenseAction.REVOKE,
    LicenseAction.EXPIRE,
)
"""The license actions that are status changes."""

_IN_FLIGHT = (OperationState.PENDING.value, OperationState.SENT.value)


@dataclass(frozen=True)
class StatusSignature:
    """A status change's checked signature, as the operation row keeps it."""

    department_key: bytes
    """The signing client's public key (65 bytes)."""
    commitment: Hash32
    """The signed commitment."""
    signature: bytes
    """The department's DER SM2 signature over it."""
    sequence: int
    """The history position the change takes."""


def status_signature(
    client: Client,
    row: License,
    action: LicenseAction,
    payload: SignedLicenseStatusChange,
    chain_id: int,
) -> StatusSignature:
    """The department's signature of ``action`` on the license ``row`` with the request's
    reason and history position, checked against the client's key for ``chain_id``. Raises
    InvalidInput (422): ``department_signature_required``, or ``bad_department_signature``
    naming the commitment the registry computed."""
    if payload.sequence is None or payload.department_signature is None:
        raise InvalidInput(
            "sign the status change with the department's key: sequence (the number of "
            "entries of the license's on-chain history) and department_signature over the "
            "change's commitment (sdk.license_status_signing)",
            code="department_signature_required",
        )
    key_bytes = client_key_bytes(client)
    commitment = license_status_commitment(
        key_bytes,
        chain_id,
        bytes.fromhex(row.id_hash),
        StatusAction.named(action.value),
        payload.reason,
        payload.sequence,
    )
    signature = checked_department_signature(
        key_bytes,
        payload.department_signature,
        commitment,
        chain_id,
        f"the {action.value} commitment",
    )
    return StatusSignature(key_bytes, commitment, signature, payload.sequence)


def status_change_public(row: LicenseOperation) -> StatusChangePublic:
    """A signed status change as a license read (or an auditor's listing) shows it."""
    return StatusChangePublic(
        action=row.action,
        reason=row.reason,
        sequence=row.sequence,
        commitment=row.commitment or "",
        department_key=row.department_key or "",
        department_signature=row.department_signature or "",
        state=row.state,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        created_at=_aware(row.created_at) or row.created_at,
    )


class LicenseStatusChanges:
    """The signed status changes of one license service."""

    def __init__(self, service: LicenseService) -> None:
        """Change the status of the licenses of ``service``."""
        self.service = service
        self.db = service.db
        self.gateway = service.gateway

    def transition(
        self,
        client: Client,
        identifier: str,
        action: LicenseAction,
        payload: SignedLicenseStatusChange,
        idempotency_key: str,
        req_hash: str,
        base_url: str = "",
    ) -> WriteOutcome:
        """Suspend, resume, revoke or expire the license ``identifier``, signed by the
        client's department. Raises NotFound (404), Forbidden (403: another department's
        license), InvalidInput (422: signature missing or wrong), Conflict (409: a stale
        history position, another operation in flight, or a refused transition) or
        ServiceUnavailable (503: the chain cannot be read); nothing is stored then."""
        if action not in STATUS_ACTIONS:
            raise ValueError(f"{action} is not a status change")
        service = self.service
        replay = service._replay(client, idempotency_key, req_hash, base_url)
        if replay is not None:
            return replay
        row = service._owned(client, identifier)
        signed = status_signature(client, row, action, payload, self._chain_id())
        service.drive_pending(identifier)
        if self._in_flight(identifier):
            raise Conflict(
                f"another operation on license {identifier} is not settled yet; retry",
                code="operation_pending",
            )
        length = self._history_length(row.id_hash)
        if signed.sequence != length:
            raise Conflict(
                f"the change was signed for history position {signed.sequence}, but the "
                f"license's next position on chain is {length}; read it and sign again",
                code="stale_status_sequence",
            )
        data = LICENSE_REGISTRY.encode_call(
            action.value, bytes.fromhex(row.id_hash), payload.reason
        )
        return service._write(
            client,
            action,
            row.identifier,
            data,
            payload.reason,
            idempotency_key,
            req_hash,
            base_url,
            new_rows=[],
            signature=signed,
        )

    def _chain_id(self) -> int:
        try:
            return self.gateway.chain_id()
        except (ChainUnavailable, RpcCallFailed) as exc:
            raise ServiceUnavailable(
                f"the chain id is not known yet: {exc}", code="chain_id_unknown"
            ) from None

    def _in_flight(self, identifier: str) -> bool:
        with self.db.read_session() as session:
            found = session.scalars(
                select(LicenseOperation.id)
                .where(
                    or_(
                        LicenseOperation.identifier == identifier,
                        LicenseOperation.new_identifier == identifier,
                    ),
                    LicenseOperation.state.in_(_IN_FLIGHT),
                )
                .limit(1)
            ).first()
        return found is not None

    def _history_length(self, id_hash: str) -> int:
        """The number of entries of the license's on-chain history now (not cached)."""
        reader = self.gateway.reader
        try:
            address = self.service._license_registry()
            output = reader.call(
                address, LICENSE_REGISTRY.encode_call("historyLength", bytes.fromhex(id_hash))
            )
        except (ChainUnavailable, RpcCallFailed) as exc:
            raise ServiceUnavailable(f"the chain cannot be reached: {exc}") from None
        (length,) = LICENSE_REGISTRY.decode_result("historyLength", output)
        return int(length)

    # -- reads ---------------------------------------------------------------------------------

    def _signed_operations(self, identifier: str) -> list[LicenseOperation]:
        with self.db.read_session() as session:
            rows = list(
                session.scalars(
                    select(LicenseOperation)
                    .where(
                        LicenseOperation.identifier == identifier,
                        LicenseOperation.department_signature.is_not(None),
                    )
                    .order_by(LicenseOperation.id)
                ).all()
            )
            session.expunge_all()
        return rows

    def signed_change_at(self, identifier: str, sequence: int) -> LicenseOperation | None:
        """The confirmed signed status change of the license that took history position
        ``sequence``, if the registry made one."""
        with self.db.read_session() as session:
            row = session.scalars(
                select(LicenseOperation).where(
                    LicenseOperation.identifier == identifier,
                    LicenseOperation.sequence == sequence,
                    LicenseOperation.state == OperationState.CONFIRMED.value,
                    LicenseOperation.department_signature.is_not(None),
                )
            ).first()
            if row is not None:
                session.expunge(row)
        return row

    def public(self, identifier: str) -> list[StatusChangePublic]:
        """The license's signed status changes, oldest first, with their signatures."""
        return [status_change_public(row) for row in self._signed_operations(identifier)]

    def bundle_entries(self, identifier: str) -> list[dict[str, Any]]:
        """The ``statusChanges`` of the license's bundle: each confirmed signed change with
        the chain half of its proof and its department's key record at its block. Raises
        ServiceUnavailable (503) while one of them is not certified yet."""
        entries = []
        for row in self._signed_operations(identifier):
            if row.state != OperationState.CONFIRMED.value:
                continue
            evidence = self._evidence(row)
            department_keys = evidence.pop("departmentKeys")
            key_hex = row.department_key or ""
            claim = department_keys.get(key_hex, {"name": "", "key": None})
            department = DepartmentClaim.from_json(
                {
                    "signature": "0x" + (row.department_signature or ""),
                    "name": claim["name"],
                    "key": claim["key"],
                }
            )
            entries.append(
                status_change_json(
                    StatusAction.named(row.action),
                    row.reason,
                    row.sequence or 0,
                    bytes.fromhex(key_hex),
                    department,
                    evidence,
                )
            )
        return entries

    def _evidence(self, row: LicenseOperation) -> dict[str, Any]:
        """The chain half of a confirmed change's proof, fetched once and kept."""
        if row.evidence_json is not None:
            stored: dict[str, Any] = json.loads(row.evidence_json)
            return stored
        try:
            evidence = self.gateway.batch_evidence(bytes.fromhex(row.raw_tx))
        except (EvidenceNotReady, ChainUnavailable, RpcCallFailed) as exc:
            raise ServiceUnavailable(
                f"status change evidence not available yet: {exc}", code="evidence_not_ready"
            ) from None
        anchor = evidence.pop("anchor")
        anchor.pop("notary")
        anchor["licenseRegistry"] = "0x" + self.service._license_registry().hex()
        evidence["anchor"] = anchor
        height = Header.decode(bytes.fromhex(evidence["header"][2:])).height
        evidence["departmentKeys"] = department_key_claims(
            self.gateway, [row.department_key or ""], height
        )
        text = json.dumps(evidence, sort_keys=True)
        with self.db.session() as session:
            session.get_one(LicenseOperation, row.id).evidence_json = text
        loaded: dict[str, Any] = json.loads(text)
        return loaded


__all__ = [
    "STATUS_ACTIONS",
    "LicenseStatusChanges",
    "StatusSignature",
    "status_change_public",
    "status_signature",
]
