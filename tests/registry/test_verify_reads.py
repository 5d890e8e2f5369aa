"""The record a verification reads through the Core statement (registry.verify_reads) is the
record the ORM read chose before, column for column, for any digest and record id: anchored
records first, then acceptance order; a digest or id that matches nothing finds nothing.
Batch rows are kept only once anchored with their evidence. Runs on SQLite, or on
PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from registry.caches import LruCache
from registry.db import Database
from registry.models import Batch, BatchStatus, Client, Record, RecordStatus
from registry.settings import RegistrySettings
from registry.verify_reads import _COLUMNS, StoredRecord, pick_record, read_batch, read_records

DIGESTS = [f"{n:064x}" for n in (1, 2, 3, 4)]
"""Digests shared by several records (a document notarized more than once)."""
STATUSES = [s.value for s in (RecordStatus.ACCEPTED, RecordStatus.SEALED, RecordStatus.ANCHORED)]


def _orm_pick(db: Database, digest: str, record_id: str | None) -> tuple[Record, Batch] | None:
    """The ORM read verification made before (the reference)."""
    with db.read_session() as session:
        query = (
            select(Record, Batch)
            .outerjoin(Batch, Record.batch_id == Batch.id)
            .where(Record.digest == digest)
        )
        if record_id is not None:
            query = query.where(Record.id == record_id)
        rows = session.execute(query.order_by(Record.seq)).all()
        if not rows:
            return None
        anchored = [row for row in rows if row[0].status == RecordStatus.ANCHORED.value]
        record, batch = (anchored or rows)[0]
        return record, batch


@pytest.fixture
def filled(tmp_path: Path, database_url: str | None) -> Iterator[tuple[Database, list[str]]]:
    """A database with records of every status sharing a few digests, in sealed and
    anchored batches (with and without evidence); and the record ids."""
    db = Database.open(
        RegistrySettings(
            data_dir=tmp_path / "registry",
            database_url=database_url,
            node_url="http://127.0.0.1:9",
        )
    )
    now = datetime.now(UTC)
    ids: list[str] = []
    with db.session() as session:
        session.add(
            Client(
                id="c",
                name="c",
                uscc="11100000000013338W",
                public_key="00",
                roles=[],
                created_at=now,
            )
        )
        batches = []
        for n, (status, evidence) in enumerate(
            [(BatchStatus.ANCHORED, "{}"), (BatchStatus.ANCHORED, None), (BatchStatus.SEALED, None)]
        ):
            batch = Batch(
                root=f"{100 + n:064x}",
                leaf_count=8,
                metadata_hash="00" * 32,
                status=status.value,
                tx_hash=None,
                block_number=10 + n,
                block_hash=None,
                evidence_json=evidence,
                created_at=now,
                anchored_at=None,
            )
            session.add(batch)
            batches.append(batch)
        session.flush()
        for n in range(24):
            status = STATUSES[n % 3]
            batch = None if status == RecordStatus.ACCEPTED.value else batches[n % 2 + (n % 3 == 1)]
            record_id = str(uuid.UUID(int=n + 1))
            ids.append(record_id)
            session.add(
                Record(
                    id=record_id,
                    client_id="c",
                    digest=DIGESTS[n % 4],
                    metadata_json={},
                    metadata_hash=f"{n:064x}",
                    field_hashes={"name": f"{n:064x}"},
                    department_key=None if n % 5 else "04" + "ab" * 64,
                    department_signature=None if n % 5 else "3045",
                    department_proof=None if n % 10 else "c0",
                    commitment=f"{n + 7:064x}",
                    idempotency_key=f"k{n}",
                    request_hash="00" * 32,
                    status=status,
                    batch_id=None if batch is None else batch.id,
                    leaf_index=None if batch is None else n % 8,
                    merkle_path=None if batch is None or n % 2 else bytes(32) * 3,
                    created_at=now,
                )
            )
    try:
        yield db, ids
    finally:
        db.close()


def _same(stored: StoredRecord, orm: Record) -> None:
    for name in StoredRecord.__slots__:
        assert getattr(stored, name) == getattr(orm, name), name


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    digest=st.sampled_from(DIGESTS) | st.just("ff" * 32),
    record_id=st.none() | st.integers(0, 30).map(lambda n: str(uuid.UUID(int=n))),
)
def test_the_core_read_picks_what_the_orm_read_picked(
    filled: tuple[Database, list[str]], digest: str, record_id: str | None
) -> None:
    db, _ = filled
    reference = _orm_pick(db, digest, record_id)
    record, batch = pick_record(db, LruCache(4), digest, record_id)
    if reference is None:
        assert record is None and batch is None
        return
    assert record is not None
    _same(record, reference[0])
    if reference[1] is None:
        assert batch is None
    else:
        assert batch is not None and batch.id == reference[1].id
        assert (batch.root, batch.status, batch.block_number) == (
            reference[1].root,
            reference[1].status,
            reference[1].block_number,
        )


def test_only_anchored_batches_with_evidence_are_kept(filled: tuple[Database, list[str]]) -> None:
    db, _ = filled
    kept: LruCache[int, Batch] = LruCache(8)
    with db.read_session() as session:
        rows = {
            b.evidence_json is not None and b.status == "anchored": b.id
            for b in session.scalars(select(Batch))
        }
    for batch_id in rows.values():
        assert read_batch(db, kept, batch_id) is not None
    assert kept.get(rows[True]) is not None
    assert kept.get(rows[False]) is None, "a batch whose evidence may still come is read again"
    assert read_batch(db, kept, 10_000) is None


def _core_read(db: Database, digest: str, record_id: str | None) -> list[StoredRecord]:
    """The records through SQLAlchemy's own execution of the Core statement (the reference
    of the driver-level read)."""
    query = select(*_COLUMNS).where(Record.digest == digest)
    if record_id is not None:
        query = query.where(Record.id == record_id)
    with db.read_session() as session:
        rows = session.execute(query.order_by(Record.seq)).all()
    return [StoredRecord(**row._asdict()) for row in rows]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    digest=st.sampled_from(DIGESTS) | st.text(max_size=70).filter(lambda t: "\x00" not in t),
    record_id=st.none()
    | st.integers(0, 30).map(lambda n: str(uuid.UUID(int=n)))
    | st.sampled_from(["'", "?", "%s", "%(digest)s", "' OR '1'='1", "记录"]),
)
def test_the_driver_read_is_the_core_read_for_any_text(
    filled: tuple[Database, list[str]], digest: str, record_id: str | None
) -> None:
    db, ids = filled
    assert read_records(db, digest, record_id) == _core_read(db, digest, record_id)
    with db.read_session() as session:
        assert len(session.scalars(select(Record.id)).all()) == len(ids)
