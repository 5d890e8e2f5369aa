"""What a verification reads from the database: the record a digest names (a read-only copy
of the columns verification uses, through one SQLAlchemy Core statement built once) and its
batch (kept per process once anchored with its evidence: such a row never changes again).

The ORM read it replaces (``select(Record, Batch)`` through a session) cost about five times
as much per request, most of it building the statement and the ORM objects; the answer is
the same record (tests/registry/test_verify_reads.py checks both against each other).

On the two drivers the registry runs on (pysqlite, psycopg) the statement goes to the
driver's cursor as SQL text compiled once, on a pooled connection: SQLAlchemy's execution
around it (events, the BEGIN of a read transaction, the result object) cost about 115 us of
the 140 us of CPU a read took (a single SELECT is its own consistent snapshot on both)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

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
_FIELD_HASHES = [column.key for column in _COLUMNS].index("field_hashes")
"""Where ``field_hashes`` is in a row of ``_COLUMNS``."""


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled once for one DB-API driver: its SQL text and how it takes its
    parameters."""

    sql: str
    """The SQL text, in the driver's parameter style."""
    positions: tuple[str, ...] | None
    """Parameter names in order for a positional style (``?``); None for a named one."""

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        """``statement`` compiled for ``dialect``."""
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        positions = compiled.positiontup
        return cls(str(compiled), None if positions is None else tuple(positions))

    def parameters(self, values: dict[str, str]) -> tuple[str, ...] | dict[str, str]:
        """``values`` as the driver takes them."""
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


_DRIVER_STATEMENTS: dict[tuple[str, str], tuple[DriverStatement, DriverStatement]] = {
    (dialect.name, dialect.driver): (
        DriverStatement.compile(_BY_DIGEST, dialect),
        DriverStatement.compile(_BY_DIGEST_AND_ID, dialect),
    )
    for dialect in (
        sqlite.pysqlite.dialect(),
        postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
    )
}
"""(dialect, driver) → the statements by digest, and by digest and id, compiled for it."""


def _stored(row: tuple[Any, ...]) -> StoredRecord:
    """A driver's row of ``_COLUMNS`` as a record: JSON stored as text (SQLite) is parsed,
    as SQLAlchemy's JSON type would; psycopg hands it over parsed already."""
    values = list(row)
    if isinstance(values[_FIELD_HASHES], str):
        values[_FIELD_HASHES] = json.loads(values[_FIELD_HASHES])
    return StoredRecord(*values)


def read_records(db: Database, digest: str, record_id: str | None) -> list[StoredRecord]:
    """The records with ``digest`` (and id ``record_id`` if given), in acceptance order."""
    engine = db.engine
    values = {"digest": digest} if record_id is None else {"digest": digest, "record_id": record_id}
    statements = _DRIVER_STATEMENTS.get((engine.dialect.name, engine.dialect.driver))
    if statements is None:
        read_only = engine.execution_options(**{READ_ONLY_OPTION: True})
        with read_only.connect() as connection:
            statement = _BY_DIGEST if record_id is None else _BY_DIGEST_AND_ID
            rows = connection.execute(statement, values).all()
        return [StoredRecord(**row._asdict()) for row in rows]
    driver_statement = statements[0] if record_id is None else statements[1]
    # The pool rolls back whatever the SELECT began when the connection goes back to it.
    pooled = engine.raw_connection()
    try:
        cursor = pooled.cursor()
        try:
            cursor.execute(driver_statement.sql, driver_statement.parameters(values))
            fetched = cursor.fetchall()
        finally:
            cursor.close()
    finally:
        pooled.close()
    return [_stored(row) for row in fetched]


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
    "DriverStatement",
    "RecordRow",
    "StoredRecord",
    "pick_record",
    "read_batch",
    "read_records",
]
