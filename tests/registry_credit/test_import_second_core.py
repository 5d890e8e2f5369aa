"""A registry import whose rows are validated and prepared on a second core (a worker
process) stores what an import in one process stores, byte for byte as SQLAlchemy would have
written the same columns; an all-or-nothing file with a bad row far down stores nothing,
though the rows before it were stored as they validated; the same file again changes
nothing, and a changed row is a correction with history. On SQLite, or PostgreSQL with
LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import csv
import datetime
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, natural_person, penalty_row
from registry_harness import DATABASE_URL_ENV, create_postgres_database, drop_postgres_database
from sqlalchemy import Table, text

import credit.importing.engine as engine
import credit.importing.workers as workers
import registry.credit.imports as imports
from chain.crypto import PrivateKey
from credit.importing import TableFormat
from credit.records import NaturalKey, RecordKind, record_id
from credit.rulesets import bundled_rule_set
from registry.cli import add_client
from registry.credit.imports import ImportRefused, import_bytes
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditRecordRow
from registry.credit.store import Publisher, RecordPreparer, database_kind, store_prepared
from registry.db import Database
from registry.settings import RegistrySettings

KEYS = CreditKeys(b"second core: a fixed master secret")
AT = datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC)
CLIENT_KEY = PrivateKey.generate().public_key.to_pem()
RANDOM_COLUMNS = {"seq", "id", "metadata_salt", "commitment", "client_id"}
"""What differs between two databases given the same rows: each event's salt and id, and
the client's id."""


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[list[Database]]:
    base = os.environ.get(DATABASE_URL_ENV)
    opened: list[tuple[Database, str | None]] = []

    def open_one(name: str) -> Database:
        url = None if base is None else create_postgres_database(base)
        database = Database.open(RegistrySettings(data_dir=tmp_path / name, database_url=url))
        opened.append((database, url))
        return database

    try:
        yield [open_one(name) for name in ("one", "two", "three")]
    finally:
        for database, url in opened:
            database.close()
            if base is not None and url is not None:
                drop_postgres_database(base, url)


@pytest.fixture
def second_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file uses the worker, in chunks of 7 rows, the first checked here only once
    the worker is up (a small file would be done before it starts)."""
    monkeypatch.setattr(imports, "WORKER_MIN_BYTES", dict.fromkeys(TableFormat, 0))
    monkeypatch.setattr(engine, "CHUNK_ROWS", 7)
    checked_here = workers.RowChecker._check_here

    def once_up(
        checker: workers.RowChecker, chunk: workers.Chunk, prepare: bool
    ) -> workers.CheckedChunk:
        worker = checker._worker
        while worker is not None and not worker.is_ready():
            worker.inbox.poll(0.05)
        return checked_here(checker, chunk, prepare)

    monkeypatch.setattr(workers.RowChecker, "_check_here", once_up)


def _publisher(db: Database) -> Publisher:
    client = add_client(
        db,
        name="福州市市场监督管理局",
        uscc="11220000013544541J",
        public_key_pem=CLIENT_KEY,
        roles=["credit"],
    )
    return Publisher(client, KEYS, bundled_rule_set("cn.ndrc.order-58"), AT)


def _rows(count: int) -> list[dict[str, object]]:
    rows = [penalty_row(decision_number=f"榕市监罚〔2023〕{n}号") for n in range(count)]
    for row in rows[::3]:
        row.update(natural_person())
    return rows


def _csv(rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PENALTY_HEADERS)
    writer.writerows(cells(PENALTY_KEYS, row) for row in rows)
    return buffer.getvalue().encode()


def _table(db: Database, name: str, order: str) -> list[dict[str, Any]]:
    """Every row of a table as the driver hands it back (SQLite: the stored text)."""
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"SELECT * FROM {name} ORDER BY {order}")
        return [dict(row._mapping) for row in rows]


def _stored(db: Database) -> dict[str, list[dict[str, Any]]]:
    events = _table(db, "credit_events", "record_id, version")
    return {
        "records": [
            {name: value for name, value in row.items() if name != "client_id"}
            for row in _table(db, "credit_records", "id")
        ],
        "versions": _table(db, "credit_record_versions", "record_id, version"),
        "events": [
            {name: value for name, value in event.items() if name not in RANDOM_COLUMNS}
            for event in events
        ],
    }


def test_two_cores_store_what_one_process_stores_as_sqlalchemy_writes_it(
    databases: list[Database],
    monkeypatch: pytest.MonkeyPatch,
    second_core: None,
    tmp_path: Path,
) -> None:
    shared_db, alone_db, reference_db = databases
    data = _csv(_rows(40))
    outcome = import_bytes(shared_db, _publisher(shared_db), data, table_format=TableFormat.CSV)
    assert outcome.published == 40
    monkeypatch.setattr(imports, "WORKER_MIN_BYTES", dict.fromkeys(TableFormat, 1 << 40))
    import_bytes(alone_db, _publisher(alone_db), data, table_format=TableFormat.CSV)
    assert _stored(shared_db) == _stored(alone_db)
    # The driver was handed what SQLAlchemy's own insert of the same columns writes.
    publisher = _publisher(reference_db)
    handed: list[Any] = []
    table_file = tmp_path / "table.csv"
    table_file.write_bytes(data)
    engine.import_file(table_file, handed.append)
    with reference_db.session() as session:
        preparer = RecordPreparer.of(publisher, database_kind(session))
        columns = [preparer.columns(row.record, row.record_id) for row in handed]
        store_prepared(session, publisher, [])  # the rule set's row
        session.execute(cast(Table, CreditRecordRow.__table__).insert(), columns)
    assert _stored(reference_db)["records"] == _stored(shared_db)["records"]


def _count(db: Database, name: str) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())


def test_a_bad_row_far_down_stores_nothing(databases: list[Database], second_core: None) -> None:
    db = databases[0]
    rows = _rows(40)
    rows[36]["decision_date"] = "2023-13-45"
    with pytest.raises(ImportRefused) as refused:
        import_bytes(db, _publisher(db), _csv(rows), table_format=TableFormat.CSV)
    assert refused.value.report["issues_total"] == 1
    assert refused.value.report["issues"][0]["row"] == 38
    for table in ("credit_records", "credit_record_versions", "credit_events", "credit_rule_sets"):
        assert _count(db, table) == 0


def test_again_nothing_changes_and_a_changed_row_is_a_correction(
    databases: list[Database], second_core: None
) -> None:
    db = databases[0]
    publisher = _publisher(db)
    rows = _rows(30)
    import_bytes(db, publisher, _csv(rows), table_format=TableFormat.CSV)
    again = import_bytes(db, publisher, _csv(rows), table_format=TableFormat.CSV)
    assert (again.published, again.corrected, again.unchanged) == (0, 0, 30)
    rows[20]["fine_wan"] = "3"
    changed = import_bytes(db, publisher, _csv(rows), table_format=TableFormat.CSV)
    assert (changed.published, changed.corrected, changed.unchanged) == (0, 1, 29)
    key = NaturalKey(str(rows[20]["authority_uscc"]), str(rows[20]["decision_number"]))
    identity = record_id(RecordKind.PENALTY, key).hex()
    versions = [row for row in _stored(db)["versions"] if row["record_id"] == identity]
    assert [row["version"] for row in versions] == [1, 2]
    corrections = [event for event in _stored(db)["events"] if event["kind"] == "correct"]
    assert [(event["record_id"], event["version"]) for event in corrections] == [(identity, 2)]
    assert "fine_wan" in str(corrections[0]["changed_fields"])
