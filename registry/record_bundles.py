"""Proof bundles of notarized records as the registry serves them: each record's own part
(its claim, its stored Merkle path, and for version 2 records the department's signature
with its key's IssuerRegistry record at the anchoring block) on the chain half its batch
shares, and the per-process caches that record views and verification reuse."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from chain.merkle import MerkleProof, MerkleTree
from chain.primitives import Hash32
from contracts.trust import LeafStatus
from registry.batcher import fetch_evidence
from registry.caches import LruCache, TtlCache
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.merkle_paths import record_proof
from registry.models import Batch, Record, RecordStatus
from registry.revocations import RevocationIndex
from registry.schemas import (
    BatchPublic,
    VerdictPublic,
)
from registry.verify_reads import BATCH_ROW_CACHE_SIZE, RecordRow, StoredRecord
from sdk.bundle import (
    BUNDLE_VERSION,
    LEGACY_BUNDLE_VERSION,
    DepartmentClaim,
    IssuerKeyClaim,
    ProofBundle,
    RecordClaim,
    VerifiedEvidence,
)
from sdk.bundle_links import _parse_issuer_key

logger = logging.getLogger(__name__)

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
    batch_bundles: LruCache[int, BatchHalf] = field(
        default_factory=lambda: LruCache(BATCH_BUNDLE_CACHE_SIZE)
    )
    """Batch id → one bundle of the batch, whose chain half (anchoring transaction, receipt,
    proofs, header, certificate, validators, issuer key) every record of the batch shares."""
    """Record id → its proof bundle."""
    trees: LruCache[int, MerkleTree] = field(default_factory=lambda: LruCache(TREE_CACHE_SIZE))
    """Batch id → the Merkle tree of its record commitments."""
    anchored: LruCache[tuple[str, str | None], tuple[StoredRecord, Batch]] = field(
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
    batch_rows: LruCache[int, Batch] = field(default_factory=lambda: LruCache(BATCH_ROW_CACHE_SIZE))
    """Batch id → its row once anchored with its evidence (detached: read only)."""
    record_bytes: LruCache[str, bytes] = field(default_factory=lambda: LruCache(BUNDLE_CACHE_SIZE))
    """Record id → the record's own part of its proof bundle as JSON text."""
    chain_bytes: LruCache[int, bytes] = field(
        default_factory=lambda: LruCache(BATCH_BUNDLE_CACHE_SIZE)
    )
    """Batch id → the chain half of its bundles as JSON text."""
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


def _chain_json(caches: VerifyCaches, batch: Batch, bundle: ProofBundle) -> dict[str, Any]:
    chain = caches.chain_json.get(batch.id)
    if chain is None:
        chain = bundle.chain_json()
        caches.chain_json.put(batch.id, chain)
    return chain


def bundle_json(caches: VerifyCaches, batch: Batch, bundle: ProofBundle) -> dict[str, Any]:
    """``bundle.to_json()`` of an anchored record's bundle, kept per record, its chain half
    encoded once per batch (shared values: never modify the result)."""
    found = caches.bundle_json.get(bundle.record.record_id)
    if found is None:
        found = {**bundle.record_json(), **_chain_json(caches, batch, bundle)}
        caches.bundle_json.put(bundle.record.record_id, found)
    return found


def bundle_json_text(caches: VerifyCaches, batch: Batch, bundle: ProofBundle) -> bytes:
    """:func:`bundle_json` as JSON text, byte for byte as pydantic writes it in a response
    model: the record's part kept per record, the chain half (most of the text) written
    once per batch and joined to it."""
    own = caches.record_bytes.get(bundle.record.record_id)
    if own is None:
        own = to_json(bundle.record_json())
        caches.record_bytes.put(bundle.record.record_id, own)
    chain = caches.chain_bytes.get(batch.id)
    if chain is None:
        chain = to_json(_chain_json(caches, batch, bundle))
        caches.chain_bytes.put(batch.id, chain)
    # Two JSON objects with disjoint keys, merged as {**record, **chain} would be.
    return own[:-1] + b"," + chain[1:]


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


def _proof(db: Database, caches: VerifyCaches, record: RecordRow, batch: Batch) -> MerkleProof:
    """The record's inclusion proof in its batch (:func:`record_proof`), rebuilt trees kept
    in ``caches``."""
    return record_proof(db, record, batch, caches.trees)


def bundle_for(
    db: Database,
    gateway: ChainGateway,
    caches: VerifyCaches,
    record: RecordRow,
    batch: Batch | None,
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


@dataclass(frozen=True)
class BatchHalf:
    """What every record bundle of one batch shares, parsed once from the batch's stored
    evidence: the chain half (inside a version 1 bundle of one of its records) and the
    IssuerRegistry records of the department keys that signed its records."""

    bundle: ProofBundle
    """A bundle of the batch; its chain half is everyone's."""
    department_keys: dict[str, tuple[str, IssuerKeyClaim | None]]
    """Hex public key → department name and key record at the anchoring block (None:
    the key was not registered there)."""


def _batch_half(value: dict[str, Any]) -> BatchHalf:
    keys: dict[str, tuple[str, IssuerKeyClaim | None]] = {}
    for key_hex, claim in (value.pop("departmentKeys", None) or {}).items():
        record = claim["key"]
        keys[key_hex] = (str(claim["name"]), None if record is None else _parse_issuer_key(record))
    return BatchHalf(bundle=ProofBundle.from_json(value), department_keys=keys)


def record_claim(record: RecordRow) -> RecordClaim:
    """What a bundle says about ``record``."""
    return RecordClaim(
        record_id=record.id,
        digest=Hash32(bytes.fromhex(record.digest)),
        metadata_hash=Hash32(bytes.fromhex(record.metadata_hash)),
        field_hashes=tuple(
            sorted((name, Hash32(bytes.fromhex(h))) for name, h in record.field_hashes.items())
        ),
        department_key=(
            None if record.department_key is None else bytes.fromhex(record.department_key)
        ),
    )


def _record_bundle(half: BatchHalf, record: RecordRow, proof: MerkleProof) -> ProofBundle:
    """The bundle of ``record`` on its batch's shared half: version 2 with the department's
    signature and key record, or version 1 for a record notarized before."""
    department = None
    if record.department_key is not None:
        name, key = half.department_keys.get(record.department_key, ("", None))
        request_proof = record.department_proof
        department = DepartmentClaim(
            signature=bytes.fromhex(record.department_signature or ""),
            name=name,
            key=key,
            request_proof=(
                None if request_proof is None else MerkleProof.decode(bytes.fromhex(request_proof))
            ),
        )
    shared = half.bundle
    return dataclasses.replace(
        shared,
        version=LEGACY_BUNDLE_VERSION if department is None else BUNDLE_VERSION,
        record=record_claim(record),
        batch=dataclasses.replace(shared.batch, proof=proof),
        department=department,
    )


def _stored_or_built_bundle(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, record: RecordRow, batch: Batch
) -> ProofBundle | None:
    """The record's bundle: its own part (record claim, stored Merkle proof, department's
    signature) on the half shared by every record of the batch (parsed once per batch from
    the stored evidence). Nothing is written: a bundle is rebuilt this way at any time."""
    assert record.leaf_index is not None
    proof = _proof(db, caches, record, batch)
    half = caches.batch_bundles.get(batch.id)
    if half is None:
        if batch.evidence_json is None:
            if not fetch_evidence(db, gateway, batch.id):
                return None
            with db.read_session() as session:
                batch = session.get_one(Batch, batch.id)
        assert batch.evidence_json is not None
        value: dict[str, Any] = json.loads(batch.evidence_json)
        value.update(
            version=LEGACY_BUNDLE_VERSION,
            record={
                "recordId": record.id,
                "digest": "0x" + record.digest,
                "metadataHash": "0x" + record.metadata_hash,
                "fieldHashes": {},
            },
            batch={
                "root": "0x" + batch.root,
                "leafCount": batch.leaf_count,
                "metadataHash": "0x" + batch.metadata_hash,
                "proof": "0x" + proof.encode().hex(),
            },
        )
        half = _batch_half(value)
        caches.batch_bundles.put(batch.id, half)
    return _record_bundle(half, record, proof)
