"""``/v1/audit``: what an auditor's tool (the explorer) needs to prove a credit record's
and an archive package's whole history against its own index of the chain.

The chain holds only batch roots; each lifecycle event is a notarized record whose
commitment is a leaf of an anchored batch. These reads hand over, per event, everything
needed to recompute that leaf and walk to the root without trusting the registry: the
digest, the metadata with its salt, the field hashes, the department key and signature,
and the leaf's Merkle path in its batch. The verify role (auditors) is needed; nothing is
written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from registry.archives.models import ArchiveEventRow, ArchivePackageRow
from registry.credit.models import CreditEventRow, CreditRecordRow
from registry.db import Database
from registry.deps import ClientDep, StateDep
from registry.errors import Forbidden, NotFound
from registry.merkle_paths import record_proof
from registry.models import Batch, Record
from registry.threads import run_blocking

router = APIRouter(prefix="/v1/audit", tags=["audit"])

AUDIT_ROLE = "verify"
"""The client role these reads need."""

MAX_EVENTS = 1_000
"""Most events answered for one record or package."""


def _need_auditor(client: Any) -> None:
    if AUDIT_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} lacks the {AUDIT_ROLE} role")


def _record_items(db: Database, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Record id -> its leaf, what the leaf commits, and its path in its batch (if sealed)."""
    ids = sorted({r for r in record_ids if r})
    if not ids:
        return {}
    with db.read_session() as session:
        rows = session.execute(
            select(Record, Batch)
            .outerjoin(Batch, Batch.id == Record.batch_id)
            .where(Record.id.in_(ids))
        ).all()
        found: dict[str, dict[str, Any]] = {}
        for record, batch in rows:
            path = None
            if batch is not None and record.leaf_index is not None:
                proof = record_proof(db, record, batch)
                path = {
                    "root": batch.root,
                    "leafIndex": record.leaf_index,
                    "leafCount": batch.leaf_count,
                    "siblings": b"".join(bytes(s.sibling) for s in proof.path).hex(),
                    "txHash": batch.tx_hash,
                    "blockNumber": batch.block_number,
                }
            found[record.id] = {
                "recordId": record.id,
                "status": record.status,
                "digest": record.digest,
                "metadata": record.metadata_json,
                "metadataHash": record.metadata_hash,
                "fieldHashes": record.field_hashes,
                "departmentKey": record.department_key,
                "departmentSignature": record.department_signature,
                "requestProof": record.department_proof,
                "commitment": record.commitment,
                "batch": path,
            }
    return found


def credit_history(db: Database, authority: str | None, decision: str) -> dict[str, Any]:
    """The credit records under one natural key (or under a decision number of any
    authority), each with its events and their leaves."""
    query = select(CreditRecordRow).where(CreditRecordRow.decision_number == decision)
    if authority is not None:
        query = query.where(CreditRecordRow.authority_uscc == authority)
    with db.read_session() as session:
        records = session.scalars(
            query.order_by(CreditRecordRow.authority_uscc, CreditRecordRow.kind).limit(50)
        ).all()
        if not records:
            raise NotFound(f"no credit record {authority}/{decision}", code="record_not_found")
        events = session.scalars(
            select(CreditEventRow)
            .where(CreditEventRow.record_id.in_([r.id for r in records]))
            .order_by(CreditEventRow.seq)
            .limit(MAX_EVENTS)
        ).all()
        answer_records = [
            {
                "id": r.id,
                "kind": r.kind,
                "authorityUscc": r.authority_uscc,
                "decisionNumber": r.decision_number,
                "subjectName": r.subject_name,
                "version": r.version,
                "fieldsRoot": r.fields_root,
                "withdrawn": r.withdrawn,
                "displayEnd": None if r.display_end is None else r.display_end.isoformat(),
            }
            for r in records
        ]
        answer_events: list[dict[str, Any]] = [
            {
                "recordId": e.record_id,
                "kind": e.kind,
                "version": e.version,
                "at": e.at.isoformat(),
                "changedFields": list(e.changed_fields),
                "state": e.state,
                "metadataSalt": e.metadata_salt,
                "notaryRecordId": e.notary_record_id,
            }
            for e in events
        ]
    items = _record_items(db, [str(e["notaryRecordId"]) for e in answer_events])
    for event in answer_events:
        event["record"] = items.get(str(event.pop("notaryRecordId")))
    return {"records": answer_records, "events": answer_events}


def archive_history(db: Database, archival_code: str) -> dict[str, Any]:
    """The packages stored under one 档号: their versions' root records and their custody
    events, each with its leaf."""
    with db.read_session() as session:
        versions = session.scalars(
            select(ArchivePackageRow)
            .where(ArchivePackageRow.archival_code == archival_code)
            .order_by(ArchivePackageRow.package_id, ArchivePackageRow.version)
        ).all()
        if not versions:
            raise NotFound(f"no archive package {archival_code}", code="package_not_found")
        package_ids = sorted({v.package_id for v in versions})
        events = session.scalars(
            select(ArchiveEventRow)
            .where(ArchiveEventRow.package_id.in_(package_ids))
            .order_by(ArchiveEventRow.package_id, ArchiveEventRow.sequence)
            .limit(MAX_EVENTS)
        ).all()
        answer_versions = [
            {
                "packageId": v.package_id,
                "version": v.version,
                "fonds": v.fonds,
                "archivalCode": v.archival_code,
                "title": v.title,
                "creator": v.creator,
                "retention": v.retention,
                "root": v.root,
                "reportSm3": v.report_sm3,
                "disposedAt": None if v.disposed_at is None else v.disposed_at.isoformat(),
                "metadataSalt": v.root_metadata_salt,
                "recordId": v.root_record_id,
            }
            for v in versions
        ]
        answer_events: list[dict[str, Any]] = [
            {
                "packageId": e.package_id,
                "sequence": e.sequence,
                "eventType": e.event_type,
                "outcome": e.outcome,
                "at": e.at.isoformat(),
                "event": json.loads(e.event_json),
                "eventHash": e.event_hash,
                "metadataSalt": e.metadata_salt,
                "recordId": e.record_id,
            }
            for e in events
        ]
    items = _record_items(db, [str(x["recordId"]) for x in answer_versions + answer_events])
    for entry in answer_versions + answer_events:
        entry["record"] = items.get(str(entry.pop("recordId")))
    return {"versions": answer_versions, "events": answer_events}


@router.get("/credit-records", responses={401: {}, 403: {}, 404: {}, 422: {}})
async def credit_record_history(
    client: ClientDep,
    state: StateDep,
    decision: Annotated[str, Query(min_length=1, max_length=200)],
    authority: Annotated[
        str | None, Query(min_length=18, max_length=18, pattern="^[0-9A-Z]{18}$")
    ] = None,
) -> dict[str, Any]:
    """A credit record's events by its natural key (authority USCC, 决定书文号; the
    decision number alone finds it under any authority), each with the leaf that anchors
    it and that leaf's path in its batch."""
    _need_auditor(client)
    return await run_blocking(credit_history, state.db, authority, decision)


@router.get("/archive-packages", responses={401: {}, 403: {}, 404: {}, 422: {}})
async def archive_package_history(
    client: ClientDep,
    state: StateDep,
    archival_code: Annotated[str, Query(min_length=1, max_length=500)],
) -> dict[str, Any]:
    """An archive package's versions and custody events by its 档号, each with the leaf
    that anchors it and that leaf's path in its batch."""
    _need_auditor(client)
    return await run_blocking(archive_history, state.db, archival_code)


__all__ = ["archive_history", "credit_history", "router"]
