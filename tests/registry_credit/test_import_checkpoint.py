"""An import's commit on SQLite syncs its WAL and returns: the pages are copied into the
database file by the scheduled checkpoint, not inside the import's request, whatever the
automatic checkpoint's threshold; the import's rows are committed (another connection reads
them), and the connection it used has its threshold back, whether the import was stored or
refused."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row
from sqlalchemy import func, select

import registry.db
from chain.crypto import PrivateKey
from credit.importing import TableFormat
from credit.rulesets import bundled_rule_set
from registry.cli import add_client
from registry.credit.imports import ImportRefused, import_bytes
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditRecordRow
from registry.credit.store import Publisher
from registry.db import SQLITE_POOL_SIZE, Database
from registry.settings import RegistrySettings

pytestmark = pytest.mark.no_database

KEYS = CreditKeys(b"checkpoint: a fixed master secret")
AT = datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC)
THRESHOLD = 1
"""WAL pages past which a commit checkpoints by itself: any import's commit is past it."""


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setattr(registry.db, "SQLITE_AUTOCHECKPOINT_PAGES", THRESHOLD)
    database = Database.open(RegistrySettings(data_dir=tmp_path / "registry"))
    try:
        yield database
    finally:
        database.close()


def _publisher(db: Database) -> Publisher:
    client = add_client(
        db,
        name="福州市市场监督管理局",
        uscc="11220000013544541J",
        public_key_pem=PrivateKey.generate().public_key.to_pem(),
        roles=["credit"],
    )
    return Publisher(client, KEYS, bundled_rule_set("cn.ndrc.order-58"), AT)


def _csv(rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PENALTY_HEADERS)
    writer.writerows(cells(PENALTY_KEYS, row) for row in rows)
    return buffer.getvalue().encode()


def _rows(count: int) -> list[dict[str, object]]:
    return [penalty_row(decision_number=f"榕市监罚〔2023〕{n}号") for n in range(1, count + 1)]


def _database_file(db: Database) -> Path:
    database = db.engine.url.database
    assert database is not None
    return Path(database)


def _thresholds(db: Database) -> set[int]:
    """The automatic checkpoint threshold of every pooled connection (all checked out at
    once, so the import's is among them)."""
    connections = [db.engine.raw_connection() for _ in range(SQLITE_POOL_SIZE)]
    try:
        found = set()
        for connection in connections:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint")
            found.add(int(cursor.fetchone()[0]))
            cursor.close()
        return found
    finally:
        for connection in connections:
            connection.close()


def _records(db: Database) -> int:
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(CreditRecordRow)) or 0)


def test_the_import_commits_its_wal_and_leaves_the_checkpoint_to_the_schedule(
    db: Database,
) -> None:
    publisher = _publisher(db)
    db.checkpoint()
    size = _database_file(db).stat().st_size
    outcome = import_bytes(db, publisher, _csv(_rows(40)), table_format=TableFormat.CSV)
    assert outcome.published == 40
    # Committed (another connection reads it), and still in the WAL only.
    assert _records(db) == 40
    assert _database_file(db).stat().st_size == size
    assert _thresholds(db) == {THRESHOLD}
    db.checkpoint()
    assert _database_file(db).stat().st_size > size


def test_a_refused_import_gives_its_connection_its_threshold_back(db: Database) -> None:
    publisher = _publisher(db)
    rows = _rows(5)
    rows[3]["decision_date"] = "2023-02-30"
    with pytest.raises(ImportRefused):
        import_bytes(db, publisher, _csv(rows), table_format=TableFormat.CSV)
    assert _records(db) == 0
    assert _thresholds(db) == {THRESHOLD}
