"""Verification of a document or digest against the registry's records: separate
verdicts on integrity, issuance (the proof bundle verifies, naming the department that
signed), status (active or revoked on the Notary) and issuer identity. A chain that cannot
be reached makes the chain-dependent verdicts UNAVAILABLE, never INVALID."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from pydantic_core import to_json

from chain.crypto import sm3
from chain.errors import ChainError
from chain.merkle import leaf_hash, verify_proof
from registry.chain_gateway import ChainGateway, ContractsNotDeployed
from registry.db import Database
from registry.errors import InvalidInput
from registry.models import Batch, RecordStatus
from registry.record_bundles import (
    VerifyCaches,
    _proof,
    bundle_for,
    bundle_json,
    bundle_json_text,
    record_claim,
)
from registry.schemas import (
    DocumentInput,
    VerdictPublic,
    VerificationPublic,
    VerifyRequest,
)
from registry.verify_reads import RecordRow, StoredRecord, pick_record
from sdk.bundle import (
    ProofBundle,
    verify_bundle,
)
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.trust import Verdict

logger = logging.getLogger(__name__)


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


def _v(verdict: Verdict, detail: str) -> VerdictPublic:
    return VerdictPublic(verdict=verdict, detail=detail)


def verify(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, payload: VerifyRequest
) -> VerificationPublic:
    """Separate verdicts on a document or digest: integrity, issuance, status, issuer. A
    chain that cannot be reached makes the chain-dependent verdicts UNAVAILABLE."""
    answer, proven = _verify(db, gateway, caches, payload)
    if proven is not None:
        answer.bundle = bundle_json(caches, *proven)
    return answer


_NO_BUNDLE = b'"bundle":null}'


def verify_text(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, payload: VerifyRequest
) -> bytes:
    """:func:`verify`'s answer as JSON text, byte for byte ``model_dump_json()`` of it, its
    proof bundle joined as text kept per record and per batch instead of written anew."""
    answer, proven = _verify(db, gateway, caches, payload)
    text = to_json(answer)
    if proven is None:
        return text
    # ``bundle`` is the model's last field, written as null while it is None.
    assert text.endswith(_NO_BUNDLE)
    return text[: -len(_NO_BUNDLE)] + b'"bundle":' + bundle_json_text(caches, *proven) + b"}"


def _verify(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, payload: VerifyRequest
) -> tuple[VerificationPublic, tuple[Batch, ProofBundle] | None]:
    """The answer without its bundle, and the batch and bundle to put in it."""
    digest = digest_of(payload).hex()
    remembered = caches.anchored.get((digest, payload.record_id))
    record: StoredRecord | None
    batch: Batch | None
    if remembered is not None:
        record, batch = remembered
    else:
        record, batch = pick_record(db, caches.batch_rows, digest, payload.record_id)
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
        ), None
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
        ), None
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
    answer = VerificationPublic(
        found=True,
        record_id=record.id,
        digest=digest,
        integrity=integrity,
        issuance=issuance,
        status=status,
        issuer=issuer,
        facts=facts,
        bundle=None,
    )
    return answer, None if bundle is None else (batch, bundle)


def _integrity(
    db: Database,
    caches: VerifyCaches,
    record: RecordRow,
    batch: Batch | None,
    digest: str,
    bundle: ProofBundle | None,
) -> VerdictPublic:
    commitment = record_claim(record).commitment()
    if commitment.hex() != record.commitment or record.digest != digest:
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
    anchored = f"anchored in block {bundle.header.height}, certified"
    signer = verdict.signed_by
    if signer is None:
        return _v(Verdict.VALID, f"{anchored} (notarized before departments signed)")
    return _v(Verdict.VALID, f"signed by {signer.name} ({signer.uscc}); {anchored}")


def _status(
    gateway: ChainGateway,
    caches: VerifyCaches,
    batch: Batch,
    record: RecordRow,
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
    facts.update(anchored_by_uscc=key.uscc)
    if bundle.department is not None:
        # The department that signed the record is its issuer; the registry only anchored.
        if bundle.department.key is None:
            return _v(Verdict.INVALID, "the department's key is not registered in IssuerRegistry")
        key = bundle.department.key
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
