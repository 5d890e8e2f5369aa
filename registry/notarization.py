"""Notarization use cases: accept a record, report it with its proof bundle, verify a
document. Plain functions over the database and the chain gateway; the routers only
translate HTTP."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from chain.crypto import PublicKey, sm3
from chain.errors import ChainError
from chain.merkle import MerkleTree
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.errors import InvalidInput, NotFound
from registry.intake import NewRecord
from registry.models import (
    Batch,
    Client,
    OperationState,
    Record,
    RecordRevocation,
    RecordStatus,
)
from registry.record_bundles import (
    BATCH_BUNDLE_CACHE_SIZE,
    BUNDLE_CACHE_SIZE,
    LIVE_READ_TTL_S,
    TREE_CACHE_SIZE,
    VerifyCaches,
    _batch_public,
    bundle_for,
    bundle_json,
)
from registry.record_revocation import drive_revocation, revocations_of
from registry.record_schemas import (
    DepartmentRecordPublic,
    DepartmentRecordsPublic,
    RecordEventPublic,
    SignedRecordAccepted,
    SignedRecordCreate,
    SignedRecordPublic,
)
from registry.verification import digest_of, verify
from sdk.bundle import (
    COMMITMENT_SALT_SIZE,
    department_record_commitment,
    department_root_sign_bytes,
    department_sign_bytes,
    field_hash,
    salted_metadata_hash,
)

MAX_FIELD_NAME = 100
"""Longest field name."""

MAX_IDEMPOTENCY_KEY = 200
"""Longest idempotency key."""

logger = logging.getLogger(__name__)


def check_idempotency_key(key: str | None, max_length: int = MAX_IDEMPOTENCY_KEY) -> str:
    """A valid idempotency key (a fresh one if none was given); raises InvalidInput."""
    if key is None:
        return str(uuid.uuid4())
    if not 1 <= len(key) <= max_length or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {max_length} printable characters",
            code="invalid_idempotency_key",
        )
    return key


def bulk_record_key(idempotency_key: str, index: int) -> str:
    """The key record ``index`` of a bulk request is stored under: ``<key>#<index>``."""
    return f"{idempotency_key}#{index}"


def prepare_record(
    client: Client, payload: SignedRecordCreate, idempotency_key: str, chain_id: int
) -> NewRecord:
    """Validate a notarization request and compute everything its record stores (digest,
    salted hashes, the version 2 commitment), checking the department's signature over the
    commitment for ``chain_id``; raises InvalidInput. Nothing is stored: the group committer
    (:mod:`registry.intake`) stores it with the request's nonce, or answers an earlier
    record stored under the same Idempotency-Key."""
    (record,) = prepare_records(client, [payload], idempotency_key, chain_id, bulk=False)
    return record


def prepare_records(
    client: Client,
    payloads: Sequence[SignedRecordCreate],
    idempotency_key: str,
    chain_id: int,
    *,
    bulk: bool = True,
    request_signature: str | None = None,
) -> list[NewRecord]:
    """:func:`prepare_record` for each record of a request: in a bulk request record ``i``
    is keyed ``bulk_record_key(idempotency_key, i)``, and all share the request's hash, so a
    retry of the same request answers the same records and another request under the same
    key is a conflict.

    With ``request_signature`` (base64; a bulk request signed once), no record carries a
    signature of its own: the one signature must verify over the SM3 Merkle root of the
    records' commitments in request order (:func:`sdk.bundle.department_root_sign_bytes`),
    and each record keeps it with its path to that root — one SM2 verification per request
    instead of one per record. Raises InvalidInput."""
    request_hash = _request_hash(payloads)
    department_key = PublicKey.from_bytes(bytes.fromhex(client.public_key))
    keys = [
        bulk_record_key(idempotency_key, index) if bulk else idempotency_key
        for index in range(len(payloads))
    ]
    if request_signature is None:
        return [
            _new_record(client, department_key, payload, key, request_hash, chain_id)
            for payload, key in zip(payloads, keys, strict=True)
        ]
    if any(payload.department_signature is not None for payload in payloads):
        raise InvalidInput(
            "a request signed once carries no signature per record",
            code="bad_department_signature",
        )
    records = [
        _committed_record(client, department_key, payload, key, request_hash)
        for payload, key in zip(payloads, keys, strict=True)
    ]
    tree = MerkleTree.build([bytes.fromhex(record.values["commitment"]) for record in records])
    signature = _checked_signature(
        department_key,
        request_signature,
        department_root_sign_bytes(chain_id, tree.leaf_count, tree.root),
        f"the Merkle root {tree.root.hex()} of the request's {tree.leaf_count} commitments",
        chain_id,
    )
    signature_hex = signature.hex()
    for record, proof in zip(records, tree.encoded_proofs(), strict=True):
        record.values["department_signature"] = signature_hex
        record.values["department_proof"] = proof.hex()
    return records


def _request_hash(payloads: Sequence[SignedRecordCreate]) -> str:
    """What tells a retry from another request under one key: SM3 of the records as
    parsed, without the department's signatures (SM2 signatures are randomised, so a
    retry signed again differs only there)."""
    unsigned = [
        payload.model_dump(mode="json", exclude={"department_signature"}) for payload in payloads
    ]
    return sm3(json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()).hex()


def _salt(text: str | None, what: str) -> bytes:
    if text is None:
        raise InvalidInput(f"{what} is missing", code="invalid_salt")
    try:
        salt = bytes.fromhex(text)
    except ValueError:
        raise InvalidInput(f"{what} is not hex", code="invalid_salt") from None
    if len(salt) != COMMITMENT_SALT_SIZE:
        raise InvalidInput(
            f"{what} must be {COMMITMENT_SALT_SIZE} bytes of randomness", code="invalid_salt"
        )
    return salt


def _new_record(
    client: Client,
    department_key: PublicKey,
    payload: SignedRecordCreate,
    idempotency_key: str,
    request_hash: str,
    chain_id: int,
) -> NewRecord:
    """A record signed alone: its commitment, and the department's signature over it."""
    record = _committed_record(client, department_key, payload, idempotency_key, request_hash)
    if payload.department_signature is None:
        raise InvalidInput(
            "sign the record's commitment with the department's key "
            "(department_signature; see GET /v1/records/signing)",
            code="department_signature_required",
        )
    commitment = bytes.fromhex(record.values["commitment"])
    signature = _checked_signature(
        department_key,
        payload.department_signature,
        department_sign_bytes(chain_id, commitment),
        f"commitment {commitment.hex()}",
        chain_id,
    )
    record.values["department_signature"] = signature.hex()
    return record


def _checked_signature(
    department_key: PublicKey, given: str, message: bytes, what: str, chain_id: int
) -> bytes:
    """The decoded ``given`` signature, if it is the client key's over ``message``;
    raises InvalidInput (``bad_department_signature``) otherwise."""
    try:
        signature = base64.b64decode(given, validate=True)
        department_key.verify(signature, message)
    except (binascii.Error, ValueError, ChainError):
        raise InvalidInput(
            f"department_signature is not the client's signature of {what} on chain {chain_id}",
            code="bad_department_signature",
        ) from None
    return signature


def _committed_record(
    client: Client,
    department_key: PublicKey,
    payload: SignedRecordCreate,
    idempotency_key: str,
    request_hash: str,
) -> NewRecord:
    """The record's row and answer, its commitment computed from the request (the
    department's signature is checked and set by the caller)."""
    digest = digest_of(payload)
    fields = payload.fields or {}
    for name in fields:
        if not name or len(name) > MAX_FIELD_NAME:
            raise InvalidInput(f"field names are 1 to {MAX_FIELD_NAME} characters")
    given_salts = payload.field_salts or {}
    if set(given_salts) != set(fields):
        raise InvalidInput("give exactly one salt per field", code="invalid_salt")
    salts = {name: _salt(given_salts[name], f"salt of field {name!r}") for name in fields}
    meta_hash = salted_metadata_hash(
        payload.metadata, _salt(payload.metadata_salt, "metadata_salt")
    )
    hashes = {name: field_hash(name, value, salts[name]) for name, value in fields.items()}
    key_bytes = department_key.to_bytes()
    commitment = department_record_commitment(key_bytes, digest, meta_hash, sorted(hashes.items()))
    record_id = str(uuid.uuid4())
    field_hashes = {name: value.hex() for name, value in hashes.items()}
    created_at = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": record_id,
        "client_id": client.id,
        "digest": digest.hex(),
        "metadata_json": payload.metadata,
        "metadata_hash": meta_hash.hex(),
        "field_hashes": field_hashes,
        # The salts are the department's: never kept beside the hashes.
        "field_salts": None,
        "department_key": bytes(key_bytes).hex(),
        "department_signature": None,
        "department_proof": None,
        "commitment": commitment.hex(),
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "status": RecordStatus.ACCEPTED.value,
        "batch_id": None,
        "leaf_index": None,
        "created_at": created_at,
    }
    accepted = SignedRecordAccepted(
        id=record_id,
        status=RecordStatus.ACCEPTED.value,
        digest=digest.hex(),
        metadata_hash=meta_hash.hex(),
        field_hashes=field_hashes,
        salts={name: salt.hex() for name, salt in salts.items()},
        metadata_salt=payload.metadata_salt,
        commitment=commitment.hex(),
        created_at=created_at,
    )
    return NewRecord(values=values, accepted=accepted)


def _load(db: Database, record_id: str) -> tuple[Record, Batch | None]:
    with db.read_session() as session:
        record = session.scalars(select(Record).where(Record.id == record_id)).one_or_none()
        if record is None:
            raise NotFound(f"no record {record_id}", code="record_not_found")
        batch = None if record.batch_id is None else session.get(Batch, record.batch_id)
        return record, batch


def record_view(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, client: Client, record_id: str
) -> SignedRecordPublic:
    """The record ``record_id`` of ``client``, with its history (a revocation included) and
    its proof bundle once anchored (left out while the node cannot provide its chain half).
    A pending revocation is driven on. Raises NotFound."""
    record, batch = _load(db, record_id)
    if record.client_id != client.id:
        raise NotFound(f"no record {record_id}", code="record_not_found")
    revocation = revocations_of(db, [record.id]).get(record.id)
    if revocation is not None and revocation.state not in _SETTLED_STATES:
        drive_revocation(db, gateway, revocation.id)
        revocation = revocations_of(db, [record.id])[record.id]
    bundle = bundle_for(db, gateway, caches, record, batch)
    revoked = revocation is not None and revocation.state == OperationState.CONFIRMED.value
    return SignedRecordPublic(
        id=record.id,
        status=RecordStatus.REVOKED.value if revoked else record.status,
        digest=record.digest,
        metadata=dict(record.metadata_json),
        metadata_hash=record.metadata_hash,
        field_hashes=dict(record.field_hashes),
        commitment=record.commitment,
        department_signature=record.department_signature,
        department_proof=record.department_proof,
        created_at=_aware(record.created_at),
        batch=_batch_public(batch, record),
        bundle=None if bundle is None or batch is None else bundle_json(caches, batch, bundle),
        history=_history(record, batch, revocation),
    )


_SETTLED_STATES = (OperationState.CONFIRMED.value, OperationState.REVERTED.value)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back stored UTC times without their zone; give it back."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _history(
    record: Record, batch: Batch | None, revocation: RecordRevocation | None
) -> list[RecordEventPublic]:
    events = [RecordEventPublic(event="accepted", at=_aware(record.created_at))]
    if batch is not None and batch.block_number is not None:
        events.append(
            RecordEventPublic(
                event="anchored",
                at=None if batch.anchored_at is None else _aware(batch.anchored_at),
                block_number=batch.block_number,
                tx_hash=batch.tx_hash,
            )
        )
    if revocation is not None:
        events.append(
            RecordEventPublic(
                event="revocation_requested",
                at=_aware(revocation.created_at),
                reason=revocation.reason,
            )
        )
        if revocation.state == OperationState.CONFIRMED.value:
            events.append(
                RecordEventPublic(
                    event="revoked",
                    at=_aware(revocation.updated_at),
                    block_number=revocation.block_number,
                    reason=revocation.reason,
                    tx_hash=revocation.tx_hash,
                )
            )
        elif revocation.state == OperationState.REVERTED.value:
            events.append(
                RecordEventPublic(event="revocation_refused", at=_aware(revocation.updated_at))
            )
    return events


def department_records(
    db: Database, uscc: str, *, after: int, limit: int
) -> DepartmentRecordsPublic:
    """One page of the records department ``uscc`` signed (any of its clients), in
    acceptance order after ``after`` (a ``seq``): what it vouched for, for an auditor."""
    with db.read_session() as session:
        rows = session.execute(
            select(Record, Batch.root, Batch.block_number)
            .join(Client, Record.client_id == Client.id)
            .outerjoin(Batch, Record.batch_id == Batch.id)
            .where(
                Client.uscc == uscc,
                Record.department_signature.is_not(None),
                Record.seq > after,
            )
            .order_by(Record.seq)
            .limit(limit + 1)
        ).all()
        page = [
            DepartmentRecordPublic(
                seq=record.seq,
                id=record.id,
                digest=record.digest,
                commitment=record.commitment,
                status=record.status,
                department_signature=record.department_signature or "",
                department_proof=record.department_proof,
                batch_root=root,
                block_number=block_number,
                created_at=_aware(record.created_at),
            )
            for record, root, block_number in rows[:limit]
        ]
    revoked = revocations_of(db, [entry.id for entry in page])
    for entry in page:
        found = revoked.get(entry.id)
        if found is not None and found.state == OperationState.CONFIRMED.value:
            entry.status = RecordStatus.REVOKED.value
    return DepartmentRecordsPublic(
        uscc=uscc, records=page, next_after=page[-1].seq if len(rows) > limit else None
    )


__all__ = [
    "BATCH_BUNDLE_CACHE_SIZE",
    "BUNDLE_CACHE_SIZE",
    "LIVE_READ_TTL_S",
    "MAX_FIELD_NAME",
    "MAX_IDEMPOTENCY_KEY",
    "TREE_CACHE_SIZE",
    "VerifyCaches",
    "bulk_record_key",
    "bundle_for",
    "bundle_json",
    "check_idempotency_key",
    "department_records",
    "digest_of",
    "prepare_record",
    "prepare_records",
    "record_view",
    "verify",
]
