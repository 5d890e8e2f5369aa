"""Notarization use cases: accept a record, report it with its proof bundle, verify a
document. Plain functions over the database and the chain gateway; the routers only
translate HTTP."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from chain.crypto import sm3
from chain.errors import ChainError
from chain.merkle import MerkleProof, MerkleTree, leaf_hash, verify_proof
from chain.primitives import Hash32
from contracts.trust import LeafStatus
from registry.batcher import fetch_evidence
from registry.caches import LruCache, TtlCache
from registry.chain_gateway import ChainGateway, ContractsNotDeployed
from registry.db import Database
from registry.errors import InvalidInput, NotFound
from registry.intake import NewRecord
from registry.models import Batch, Client, Record, RecordStatus
from registry.revocations import RevocationIndex
from registry.schemas import (
    BatchPublic,
    DocumentInput,
    RecordAccepted,
    RecordCreate,
    RecordPublic,
    VerdictPublic,
    VerificationPublic,
    VerifyRequest,
)
from sdk.bundle import (
    BUNDLE_VERSION,
    ProofBundle,
    RecordClaim,
    VerifiedEvidence,
    field_hash,
    metadata_hash,
    record_commitment,
    verify_bundle,
)
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.trust import Verdict

logger = logging.getLogger(__name__)

FIELD_SALT_SIZE = 16
"""Bytes of each field's salt."""

MAX_FIELD_NAME = 100
"""Longest field name."""

MAX_IDEMPOTENCY_KEY = 200
"""Longest idempotency key."""

LIVE_READ_TTL_S = 1.0
"""How long a live chain read (a leaf's status, a department, a key's validity) answers
verifications. A failed read is never kept: an unreachable node gives UNAVAILABLE."""

BUNDLE_CACHE_SIZE = 10_000
"""Proof bundles of anchored records kept in memory (they never change)."""

BATCH_BUNDLE_CACHE_SIZE = 1_024
"""Parsed chain halves of batches kept in memory (a few KB each)."""

TREE_CACHE_SIZE = 8
"""Merkle trees of sealed batches kept in memory (they never change)."""


@dataclass
class VerifyCaches:
    """What record views and verifications reuse, per registry process: values that never
    change once known (Merkle trees of sealed batches, proof bundles of anchored records,
    chain evidence that verified) and live chain reads for ``LIVE_READ_TTL_S``."""

    bundles: LruCache[str, ProofBundle] = field(default_factory=lambda: LruCache(BUNDLE_CACHE_SIZE))
    batch_bundles: LruCache[int, ProofBundle] = field(
        default_factory=lambda: LruCache(BATCH_BUNDLE_CACHE_SIZE)
    )
    """Batch id → one bundle of the batch, whose chain half (anchoring transaction, receipt,
    proofs, header, certificate, validators, issuer key) every record of the batch shares."""
    """Record id → its proof bundle."""
    trees: LruCache[int, MerkleTree] = field(default_factory=lambda: LruCache(TREE_CACHE_SIZE))
    """Batch id → the Merkle tree of its record commitments."""
    anchored: LruCache[tuple[str, str | None], tuple[Record, Batch]] = field(
        default_factory=lambda: LruCache(BUNDLE_CACHE_SIZE)
    )
    """(digest, record id asked for) → the anchored record chosen for it and its batch
    (detached rows: read only). Anchoring is final, so the choice stays a right answer;
    a record not anchored yet is looked up again every time."""
    bundle_json: LruCache[str, dict[str, Any]] = field(
        default_factory=lambda: LruCache(BUNDLE_CACHE_SIZE)
    )
    """Record id → its proof bundle as JSON values (shared: never modify one)."""
    chain_json: LruCache[int, dict[str, Any]] = field(
        default_factory=lambda: LruCache(BATCH_BUNDLE_CACHE_SIZE)
    )
    """Batch id → the chain half of its bundles as JSON values (shared: never modify)."""
    issuance: LruCache[str, VerdictPublic] = field(
        default_factory=lambda: LruCache(BUNDLE_CACHE_SIZE)
    )
    """Record id → its VALID issuance verdict: the bundle, the validator set of its block
    and the chain facts it was checked against never change. Failures are not kept."""
    key_validity_final: LruCache[tuple[str, int, int], bool] = field(
        default_factory=lambda: LruCache(BUNDLE_CACHE_SIZE)
    )
    """(USCC, key id, height) → whether the key was valid at that height, for heights the
    chain had passed when it was read: final (windows never move into the past)."""
    revocations: RevocationIndex | None = None
    """The Notary's revocations followed from its events (see :mod:`registry.revocations`):
    a record's status without a chain call while the index is fresh."""
    evidence: VerifiedEvidence = field(default_factory=VerifiedEvidence)
    """Chain halves of bundles that verified (checked once per batch, not per record)."""
    leaf_status: TtlCache[tuple[str, str], tuple[LeafStatus, int]] = field(
        default_factory=lambda: TtlCache(LIVE_READ_TTL_S)
    )
    """(batch root, commitment) → Notary status and the block it was read at."""
    departments: TtlCache[str, tuple[str, bool]] = field(
        default_factory=lambda: TtlCache(LIVE_READ_TTL_S)
    )
    """USCC → department name and frozen state."""
    key_validity: TtlCache[tuple[str, int, int], bool] = field(
        default_factory=lambda: TtlCache(LIVE_READ_TTL_S)
    )
    """(USCC, key id, height) → whether the key was valid at that height."""


def digest_of(payload: DocumentInput) -> bytes:
    """The SM3 digest a request names: given as hex, or computed from the base64 document."""
    if payload.digest is not None:
        return bytes.fromhex(payload.digest.removeprefix("0x"))
    assert payload.document is not None
    try:
        document = base64.b64decode(payload.document, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("document is not valid base64", code="invalid_document") from None
    return sm3(document)


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
    client: Client, payload: RecordCreate, idempotency_key: str, body: bytes
) -> NewRecord:
    """Validate a notarization request and compute everything its record stores (digest,
    salted field hashes, commitment); raises InvalidInput. Nothing is stored: the group
    committer (:mod:`registry.intake`) stores it with the request's nonce, or answers an
    earlier record stored under the same Idempotency-Key."""
    return _new_record(client, payload, idempotency_key, sm3(body).hex())


def prepare_records(
    client: Client, payloads: Sequence[RecordCreate], idempotency_key: str, body: bytes
) -> list[NewRecord]:
    """:func:`prepare_record` for each record of a bulk request: record ``i`` is keyed
    ``bulk_record_key(idempotency_key, i)`` and all share the request's body hash, so a
    retry of the same request answers the same records and another body under the same
    key is a conflict."""
    request_hash = sm3(body).hex()
    return [
        _new_record(client, payload, bulk_record_key(idempotency_key, index), request_hash)
        for index, payload in enumerate(payloads)
    ]


def _new_record(
    client: Client, payload: RecordCreate, idempotency_key: str, request_hash: str
) -> NewRecord:
    digest = digest_of(payload)
    fields = payload.fields or {}
    for name in fields:
        if not name or len(name) > MAX_FIELD_NAME:
            raise InvalidInput(f"field names are 1 to {MAX_FIELD_NAME} characters")
    salts = {name: os.urandom(FIELD_SALT_SIZE) for name in fields}
    hashes = {name: field_hash(name, value, salts[name]) for name, value in fields.items()}
    record_id = str(uuid.uuid4())
    meta_hash = metadata_hash(payload.metadata)
    commitment = record_commitment(record_id, digest, meta_hash, sorted(hashes.items()))
    field_hashes = {name: value.hex() for name, value in hashes.items()}
    field_salts = {name: salt.hex() for name, salt in salts.items()}
    created_at = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": record_id,
        "client_id": client.id,
        "digest": digest.hex(),
        "metadata_json": payload.metadata,
        "metadata_hash": meta_hash.hex(),
        "field_hashes": field_hashes,
        "field_salts": field_salts,
        "commitment": commitment.hex(),
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "status": RecordStatus.ACCEPTED.value,
        "batch_id": None,
        "leaf_index": None,
        "created_at": created_at,
    }
    accepted = RecordAccepted(
        id=record_id,
        status=RecordStatus.ACCEPTED.value,
        digest=digest.hex(),
        metadata_hash=meta_hash.hex(),
        field_hashes=field_hashes,
        salts=field_salts,
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
) -> RecordPublic:
    """The record ``record_id`` of ``client``, with its proof bundle once anchored (the bundle
    is left out while the node cannot provide its chain half). Raises NotFound."""
    record, batch = _load(db, record_id)
    if record.client_id != client.id:
        raise NotFound(f"no record {record_id}", code="record_not_found")
    bundle = bundle_for(db, gateway, caches, record, batch)
    return RecordPublic(
        id=record.id,
        status=record.status,
        digest=record.digest,
        metadata=dict(record.metadata_json),
        metadata_hash=record.metadata_hash,
        field_hashes=dict(record.field_hashes),
        commitment=record.commitment,
        created_at=record.created_at,
        batch=_batch_public(batch, record),
        bundle=None if bundle is None or batch is None else bundle_json(caches, batch, bundle),
    )


def bundle_json(caches: VerifyCaches, batch: Batch, bundle: ProofBundle) -> dict[str, Any]:
    """``bundle.to_json()`` of an anchored record's bundle, kept per record, its chain half
    encoded once per batch (shared values: never modify the result)."""
    found = caches.bundle_json.get(bundle.record.record_id)
    if found is None:
        chain = caches.chain_json.get(batch.id)
        if chain is None:
            chain = bundle.chain_json()
            caches.chain_json.put(batch.id, chain)
        found = {**bundle.record_json(), **chain}
        caches.bundle_json.put(bundle.record.record_id, found)
    return found


def _batch_public(batch: Batch | None, record: Record) -> BatchPublic | None:
    if batch is None or record.leaf_index is None:
        return None
    return BatchPublic(
        id=batch.id,
        root=batch.root,
        leaf_count=batch.leaf_count,
        leaf_index=record.leaf_index,
        status=batch.status,
        tx_hash=batch.tx_hash,
        block_number=batch.block_number,
        block_hash=batch.block_hash,
    )


def _proof(db: Database, caches: VerifyCaches, record: Record, batch: Batch) -> MerkleProof:
    """The record's inclusion proof in its batch: stored at sealing, or (records sealed by
    an older version) from the batch's rebuilt tree."""
    assert record.leaf_index is not None
    if record.merkle_path is not None:
        return MerkleProof.from_siblings(record.leaf_index, batch.leaf_count, record.merkle_path)
    return _batch_tree(db, caches, batch).prove(record.leaf_index)


def _batch_tree(db: Database, caches: VerifyCaches, batch: Batch) -> MerkleTree:
    tree = caches.trees.get(batch.id)
    if tree is not None:
        return tree
    with db.read_session() as session:
        commitments = session.scalars(
            select(Record.commitment).where(Record.batch_id == batch.id).order_by(Record.leaf_index)
        ).all()
    tree = MerkleTree.build([bytes.fromhex(c) for c in commitments])
    # A sealed batch never changes: its records' batch and leaf index are written once.
    caches.trees.put(batch.id, tree)
    return tree


def bundle_for(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, record: Record, batch: Batch | None
) -> ProofBundle | None:
    """The record's proof bundle: cached, or assembled from its batch's evidence and Merkle
    tree (and cached). None while not anchored or while the evidence cannot be fetched."""
    if record.status != RecordStatus.ANCHORED.value or batch is None:
        return None
    remembered = caches.bundles.get(record.id)
    if remembered is not None:
        return remembered
    bundle = _stored_or_built_bundle(db, gateway, caches, record, batch)
    if bundle is not None:
        caches.bundles.put(record.id, bundle)
    return bundle


def _stored_or_built_bundle(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, record: Record, batch: Batch
) -> ProofBundle | None:
    """The record's bundle: its own part (record claim, stored Merkle proof) on the chain
    half shared by every record of the batch (parsed once per batch from the stored
    evidence). Nothing is written: a bundle is rebuilt this way at any time."""
    assert record.leaf_index is not None
    proof = _proof(db, caches, record, batch)
    claim = RecordClaim(
        record_id=record.id,
        digest=Hash32(bytes.fromhex(record.digest)),
        metadata_hash=Hash32(bytes.fromhex(record.metadata_hash)),
        field_hashes=tuple(
            sorted((name, Hash32(bytes.fromhex(h))) for name, h in record.field_hashes.items())
        ),
    )
    shared = caches.batch_bundles.get(batch.id)
    if shared is not None:
        return dataclasses.replace(
            shared, record=claim, batch=dataclasses.replace(shared.batch, proof=proof)
        )
    if batch.evidence_json is None:
        if not fetch_evidence(db, gateway, batch.id):
            return None
        with db.read_session() as session:
            batch = session.get_one(Batch, batch.id)
    assert batch.evidence_json is not None
    value: dict[str, Any] = json.loads(batch.evidence_json)
    value.update(
        version=BUNDLE_VERSION,
        record={
            "recordId": record.id,
            "digest": "0x" + record.digest,
            "metadataHash": "0x" + record.metadata_hash,
            "fieldHashes": {name: "0x" + h for name, h in record.field_hashes.items()},
        },
        batch={
            "root": "0x" + batch.root,
            "leafCount": batch.leaf_count,
            "metadataHash": "0x" + batch.metadata_hash,
            "proof": "0x" + proof.encode().hex(),
        },
    )
    bundle = ProofBundle.from_json(value)
    caches.batch_bundles.put(batch.id, bundle)
    return bundle


def _v(verdict: Verdict, detail: str) -> VerdictPublic:
    return VerdictPublic(verdict=verdict, detail=detail)


def verify(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, payload: VerifyRequest
) -> VerificationPublic:
    """Separate verdicts on a document or digest: integrity, issuance, status, issuer. A
    chain that cannot be reached makes the chain-dependent verdicts UNAVAILABLE."""
    digest = digest_of(payload).hex()
    remembered = caches.anchored.get((digest, payload.record_id))
    if remembered is not None:
        record, batch = remembered
    else:
        record, batch = _pick_record(db, digest, payload.record_id)
        if (
            record is not None
            and batch is not None
            and record.status == RecordStatus.ANCHORED.value
        ):
            caches.anchored.put((digest, payload.record_id), (record, batch))
    if record is None:
        missing = "no record with this digest was notarized"
        return VerificationPublic(
            found=False,
            record_id=payload.record_id,
            digest=digest,
            integrity=_v(Verdict.INVALID, missing),
            issuance=_v(Verdict.INVALID, missing),
            status=_v(Verdict.INVALID, missing),
            issuer=_v(Verdict.INVALID, missing),
            facts={},
            bundle=None,
        )
    facts: dict[str, Any] = {"record_status": record.status}
    if record.status != RecordStatus.ANCHORED.value or batch is None:
        integrity = _integrity(db, caches, record, batch, digest, None)
        pending = f"record is {record.status}, not anchored yet"
        return VerificationPublic(
            found=True,
            record_id=record.id,
            digest=digest,
            integrity=integrity,
            issuance=_v(Verdict.UNAVAILABLE, pending),
            status=_v(Verdict.UNAVAILABLE, pending),
            issuer=_v(Verdict.UNAVAILABLE, pending),
            facts=facts,
            bundle=None,
        )
    facts.update(anchored_at_block=batch.block_number, batch_root=batch.root)
    bundle = bundle_for(db, gateway, caches, record, batch)
    integrity = _integrity(db, caches, record, batch, digest, bundle)
    issuance = caches.issuance.get(record.id)
    if issuance is None:
        issuance = _issuance(gateway, caches, bundle, digest)
        if issuance.verdict is Verdict.VALID:
            caches.issuance.put(record.id, issuance)
    status = _status(gateway, caches, batch, record, facts)
    issuer = _issuer(gateway, caches, bundle, facts)
    return VerificationPublic(
        found=True,
        record_id=record.id,
        digest=digest,
        integrity=integrity,
        issuance=issuance,
        status=status,
        issuer=issuer,
        facts=facts,
        bundle=None if bundle is None else bundle_json(caches, batch, bundle),
    )


def _pick_record(
    db: Database, digest: str, record_id: str | None
) -> tuple[Record | None, Batch | None]:
    with db.read_session() as session:
        query = (
            select(Record, Batch)
            .outerjoin(Batch, Record.batch_id == Batch.id)
            .where(Record.digest == digest)
        )
        if record_id is not None:
            query = query.where(Record.id == record_id)
        rows = session.execute(query.order_by(Record.seq)).tuples().all()
        if not rows:
            return None, None
        anchored = [row for row in rows if row[0].status == RecordStatus.ANCHORED.value]
        return (anchored or rows)[0]


def _integrity(
    db: Database,
    caches: VerifyCaches,
    record: Record,
    batch: Batch | None,
    digest: str,
    bundle: ProofBundle | None,
) -> VerdictPublic:
    commitment = record_commitment(
        record.id,
        bytes.fromhex(digest),
        bytes.fromhex(record.metadata_hash),
        sorted((name, bytes.fromhex(h)) for name, h in record.field_hashes.items()),
    )
    if commitment.hex() != record.commitment:
        return _v(Verdict.INVALID, "the stored record does not match its commitment")
    if batch is None or record.leaf_index is None:
        return _v(Verdict.VALID, "digest matches a registered record (not sealed yet)")
    # The bundle's Merkle path serves as well as one from the tree: it is checked against
    # the stored root and the recomputed commitment all the same.
    if bundle is not None and bundle.batch.proof.leaf_index == record.leaf_index:
        proof = bundle.batch.proof
    else:
        proof = _proof(db, caches, record, batch)
    try:
        verify_proof(
            bytes.fromhex(batch.root),  # type: ignore[arg-type]
            commitment,
            proof,
            leaf_count=batch.leaf_count,
        )
    except (ChainError, IndexError):
        return _v(Verdict.INVALID, "the record is not in its batch's Merkle root")
    return _v(Verdict.VALID, f"digest matches record leaf {record.leaf_index} of batch {batch.id}")


def _issuance(
    gateway: ChainGateway, caches: VerifyCaches, bundle: ProofBundle | None, digest: str
) -> VerdictPublic:
    if bundle is None:
        return _v(Verdict.UNAVAILABLE, "the proof bundle cannot be assembled: chain unreachable")
    try:
        # The set that ruled the anchoring block certified it; the current one may differ.
        validator_set = gateway.validator_set_at(bundle.header.height)
        chain_id = gateway.chain_id()
        notary = gateway.contracts().notary
    except (ChainUnavailable, RpcCallFailed, ContractsNotDeployed) as exc:
        return _v(Verdict.UNAVAILABLE, f"trusted chain facts unavailable: {exc}")
    verdict = verify_bundle(
        bundle,
        validator_set,
        chain_id=chain_id,
        expected_digest=bytes.fromhex(digest),
        notary=notary,
        verified=caches.evidence,
    )
    if not verdict.valid:
        failed = "; ".join(f"{c.link}: {c.detail}" for c in verdict.failures)
        return _v(Verdict.INVALID, f"proof bundle does not verify: {failed}")
    return _v(Verdict.VALID, f"anchored in block {bundle.header.height}, certified")


def _status(
    gateway: ChainGateway,
    caches: VerifyCaches,
    batch: Batch,
    record: Record,
    facts: dict[str, Any],
) -> VerdictPublic:
    indexed = None
    if caches.revocations is not None and batch.block_number is not None:
        indexed = caches.revocations.status(
            bytes.fromhex(batch.root),
            leaf_hash(bytes.fromhex(record.commitment)),
            batch.block_number,
        )
    try:
        status, height = indexed or caches.leaf_status.get_or_load(
            (batch.root, record.commitment),
            lambda: gateway.leaf_status(
                bytes.fromhex(batch.root), bytes.fromhex(record.commitment)
            ),
        )
    except (ChainUnavailable, RpcCallFailed, ContractsNotDeployed) as exc:
        return _v(Verdict.UNAVAILABLE, f"chain unreachable, status unknown: {exc}")
    facts["status_read_at_block"] = height
    if not status.issued:
        return _v(Verdict.INVALID, "the chain does not know this batch")
    if status.revoked:
        facts.update(revoked_at_block=status.revoked_at_block, revocation_reason=status.reason)
        return _v(Verdict.INVALID, f"revoked at block {status.revoked_at_block}")
    return _v(Verdict.VALID, f"active at block {height}")


def _issuer(
    gateway: ChainGateway,
    caches: VerifyCaches,
    bundle: ProofBundle | None,
    facts: dict[str, Any],
) -> VerdictPublic:
    if bundle is None:
        return _v(Verdict.UNAVAILABLE, "the proof bundle cannot be assembled: chain unreachable")
    key = bundle.issuer_key
    facts.update(issuer_uscc=key.uscc, issuer_key_id=key.key_id)
    try:
        height = bundle.header.height
        name, frozen = caches.departments.get_or_load(
            key.uscc, lambda: gateway.department(key.uscc)
        )
        # IssuerRegistry never moves a key's window into the past, so once the chain is past
        # the anchoring block the key's validity there is final: read it once, keep it.
        # (The revocation index has seen a later block, so the node's newest block is later.)
        window = (key.uscc, key.key_id, height)
        final = caches.revocations is not None and caches.revocations.height > height
        valid = caches.key_validity_final.get(window) if final else None
        if valid is None:
            valid = caches.key_validity.get_or_load(
                window, lambda: gateway.key_valid_at(key.uscc, key.key_id, height)
            )
            if final:
                caches.key_validity_final.put(window, valid)
    except (ChainUnavailable, ContractsNotDeployed) as exc:
        return _v(Verdict.UNAVAILABLE, f"chain unreachable, issuer unknown: {exc}")
    except RpcCallFailed:
        return _v(Verdict.INVALID, f"department {key.uscc} is not registered on chain")
    facts.update(issuer_name=name, issuer_frozen=frozen)
    if not valid:
        return _v(Verdict.INVALID, f"key {key.key_id} was not valid at the anchoring block")
    note = " (frozen now)" if frozen else ""
    return _v(Verdict.VALID, f"{name} ({key.uscc}), key {key.key_id} valid when anchoring{note}")
