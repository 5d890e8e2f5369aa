"""What a verification reads from the database: the record a digest names (a read-only copy
of the columns verification uses, through one SQLAlchemy Core statement built once) and its
batch (kept per process once anchored with its evidence: such a row never changes again).

The ORM read it replaces (``select(Record, Batch)`` through a session) cost about five times
as much per request, most of it building the statement and the ORM objects; the answer is
the same record (tests/registry/test_verify_reads.py checks both against each other)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from registry.caches import LruCache
from registry.db import READ_ONLY_OPTION, Database
from registry.models import Batch, BatchStatus, Record, RecordStatus

BATCH_ROW_CACHE_SIZE = 1_024
"""Anchored batch rows (with their evidence, a few KB each) kept per process."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The columns of a ``records`` row that verification and proof bundles use (the
    attribute names of :class:`registry.models.Record`)."""

    seq: int
    """Acceptance order."""
    id: str
    """The record id."""
    digest: str
    """Hex SM3 digest of the document."""
    status: str
    """A :class:`registry.models.RecordStatus` value."""
    commitment: str
    """Hex commitment (the Merkle leaf)."""
    metadata_hash: str
    """Hex hash of the metadata."""
    field_hashes: dict[str, str]
    """Field name → hex salted hash (never modify: the copy may be shared)."""
    department_key: str | None
    """Hex SM2 public key of the department (version 2 records)."""
    department_signature: str | None
    """Hex DER signature of the department."""
    department_proof: str | None
    """Hex Merkle path to a bulk request's signed root."""
    batch_id: int | None
    """The batch, once sealed."""
    leaf_index: int | None
    """Place in the batch, once sealed."""
    merkle_path: bytes | None
    """Stored siblings of the inclusion proof in the batch."""


RecordRow = Record | StoredRecord
"""A record as an ORM row or as the copy verification reads."""

_COLUMNS = (
    Record.seq,
    Record.id,
    Record.digest,
    Record.status,
    Record.commitment,
    Record.metadata_hash,
    Record.field_hashes,
    Record.department_key,
    Record.department_signature,
    Record.department_proof,
    Record.batch_id,
    Record.leaf_index,
    Record.merkle_path,
)
# Built once: constructing a statement costs more than executing its cached compilation.
_BY_DIGEST = select(*_COLUMNS).where(Record.digest == bindparam("digest")).order_by(Record.seq)
_BY_DIGEST_AND_ID = _BY_DIGEST.where(Record.id == bindparam("record_id"))


def read_records(db: Database, digest: str, record_id: str | None) -> list[StoredRecord]:
    """The records with ``digest`` (and id ``record_id`` if given), in acceptance order."""
    engine = db.engine.execution_options(**{READ_ONLY_OPTION: True})
    with engine.connect() as connection:
        if record_id is None:
            rows = connection.execute(_BY_DIGEST, {"digest": digest}).all()
        else:
            rows = connection.execute(
                _BY_DIGEST_AND_ID, {"digest": digest, "record_id": record_id}
            ).all()
    return [StoredRecord(**row._asdict()) for row in rows]


def read_batch(db: Database, batches: LruCache[int, Batch], batch_id: int) -> Batch | None:
    """The batch row ``batch_id`` (detached: read only), kept in ``batches`` once anchored
    with its evidence stored (nothing of it changes after that)."""
    remembered = batches.get(batch_id)
    if remembered is not None:
        return remembered
    with db.read_session() as session:
        batch = session.get(Batch, batch_id)
    if (
        batch is not None
        and batch.status == BatchStatus.ANCHORED.value
        and batch.evidence_json is not None
    ):
        batches.put(batch_id, batch)
    return batch


def pick_record(
    db: Database, batches: LruCache[int, Batch], digest: str, record_id: str | None
) -> tuple[StoredRecord | None, Batch | None]:
    """The record a verification of ``digest`` (and ``record_id``) is about: the first
    anchored one in acceptance order, else the first one; and its batch."""
    records = read_records(db, digest, record_id)
    if not records:
        return None, None
    anchored = [r for r in records if r.status == RecordStatus.ANCHORED.value]
    record = (anchored or records)[0]
    batch = None if record.batch_id is None else read_batch(db, batches, record.batch_id)
    return record, batch


__all__ = [
    "BATCH_ROW_CACHE_SIZE",
    "RecordRow",
    "StoredRecord",
    "pick_record",
    "read_batch",
    "read_records",
]
