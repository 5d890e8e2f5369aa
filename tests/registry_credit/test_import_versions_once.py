"""A credit record's fields are stored once: the row of its current version keeps no copy of
the record's public and authority JSON and field hashes, a correction (by import, or a
commitment settled) fills them into the row of the version it supersedes, and every reader
of the history sees each version's own fields. The migration that made it so keeps existing
databases readable, both ways. On SQLite, or PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import csv
import datetime
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, SUBJECT, cells, penalty_row
from registry_harness import DATABASE_URL_ENV, create_postgres_database, drop_postgres_database
from sqlalchemy import event, select

from chain.crypto import PrivateKey
from credit.columns import PENALTY_COLUMNS, Layout
from credit.importing import TableFormat
from credit.records import CommitmentStatus, CreditCommitment, CreditRecord
from credit.rulesets import bundled_rule_set
from credit.validation import validate_row
from registry.cli import add_client
from registry.credit.authority_profile import authority_profile
from registry.credit.imports import import_bytes
from registry.credit.keys import CreditKeys
from registry.credit.lifecycle import settle_commitment
from registry.credit.models import CreditRecordRow, CreditRecordVersion
from registry.credit.store import Publisher, StoreOutcome, store_records
from registry.db import MIGRATIONS_DIR, Database
from registry.settings import RegistrySettings

ENTERPRISE = "91350100M000100Y43"
KEYS = CreditKeys(b"versions once: a fixed master secret")
AT = datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    base = os.environ.get(DATABASE_URL_ENV)
    url = None if base is None else create_postgres_database(base)
    database = Database.open(RegistrySettings(data_dir=tmp_path / "registry", database_url=url))
    try:
        yield database
    finally:
        database.close()
        if base is not None and url is not None:
            drop_postgres_database(base, url)


def _publisher(db: Database, roles: list[str]) -> Publisher:
    client = add_client(
        db,
        name="福州市市场监督管理局",
        uscc="11220000013544541J",
        public_key_pem=PrivateKey.generate().public_key.to_pem(),
        roles=roles,
    )
    return Publisher(client, KEYS, bundled_rule_set("cn.ndrc.order-58"), AT)


def _csv(rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PENALTY_HEADERS)
    writer.writerows(cells(PENALTY_KEYS, row) for row in rows)
    return buffer.getvalue().encode()


def _rows(fine: str) -> list[dict[str, object]]:
    return [
        penalty_row(decision_number="榕市监罚〔2023〕1号", fine_wan=fine),
        penalty_row(decision_number="榕市监罚〔2023〕2号"),
    ]


def _import(db: Database, publisher: Publisher, fine: str) -> None:
    import_bytes(db, publisher, _csv(_rows(fine)), table_format=TableFormat.CSV)


def _stored_copies(db: Database) -> dict[tuple[str, int], str | None]:
    """(record id, version) -> the fine as kept in the version's own row (None: no copy)."""
    with db.read_session() as session:
        return {
            (row.record_id, row.version): (
                None if row.authority_json is None else row.authority_json["fine_wan"]
            )
            for row in session.scalars(select(CreditRecordVersion))
        }


def _history(db: Database) -> dict[str, list[tuple[int, str | None, str]]]:
    """decision number -> (version, fine, fine's hash) of each version, as readers see it."""
    profile = authority_profile(db, ENTERPRISE, at=AT, keys=KEYS)
    return {
        str(record.current.fields["decision_number"]): [
            (version.version, version.fields["fine_wan"], version.field_hashes["fine_wan"])
            for version in record.versions
        ]
        for record in profile.records
    }


def _ids(db: Database) -> dict[str, str]:
    with db.read_session() as session:
        return {row.decision_number: row.id for row in session.scalars(select(CreditRecordRow))}


def test_a_new_record_keeps_its_fields_in_its_row_only(db: Database) -> None:
    _import(db, _publisher(db, ["credit"]), "2")
    copies = _stored_copies(db)
    assert len(copies) == 2
    assert set(copies.values()) == {None}
    history = _history(db)
    assert [entry[:2] for entry in history["榕市监罚〔2023〕1号"]] == [(1, "2")]


def test_corrections_keep_every_versions_own_fields(db: Database) -> None:
    publisher = _publisher(db, ["credit"])
    _import(db, publisher, "2")
    _import(db, publisher, "5")
    _import(db, publisher, "5")  # unchanged: nothing moves
    _import(db, publisher, "7")
    ids = _ids(db)
    corrected, untouched = ids["榕市监罚〔2023〕1号"], ids["榕市监罚〔2023〕2号"]
    assert _stored_copies(db) == {
        (corrected, 1): "2",
        (corrected, 2): "5",
        (corrected, 3): None,
        (untouched, 1): None,
    }
    history = _history(db)
    versions = history["榕市监罚〔2023〕1号"]
    assert [entry[:2] for entry in versions] == [(1, "2"), (2, "5"), (3, "7")]
    assert len({entry[2] for entry in versions}) == 3
    assert [entry[:2] for entry in history["榕市监罚〔2023〕2号"]] == [(1, "2")]


def test_a_settled_commitment_keeps_its_pending_version(db: Database) -> None:
    publisher = _publisher(db, ["credit", "credit_office"])
    commitment = CreditCommitment(
        subject=SUBJECT,
        commitment_number="诺〔2024〕1号",
        matter="食品经营许可告知承诺",
        content="三个月内补齐材料",
        signed_on=datetime.date(2024, 1, 5),
        due_on=datetime.date(2024, 4, 5),
        status=CommitmentStatus.PENDING,
        authority="市场监管局",
        authority_uscc="11100000000013338W",
    )
    with db.session() as session:
        store_records(session, publisher, [commitment])
    (record_id,) = _ids(db).values()
    with db.session() as session:
        settle_commitment(session, publisher, record_id, CommitmentStatus.BROKEN, "逾期未补齐")
    profile = authority_profile(db, ENTERPRISE, at=AT, keys=KEYS)
    (record,) = profile.records
    assert [(v.version, v.fields["status"]) for v in record.versions] == [
        (1, "pending"),
        (2, "broken"),
    ]
    before, after = (v.field_hashes for v in record.versions)
    assert before["status"] != after["status"]
    assert before["content"] == after["content"]
    with db.read_session() as session:
        rows = {row.version: row for row in session.scalars(select(CreditRecordVersion))}
    assert rows[1].public_json is not None and rows[1].public_json["status"] == "pending"
    assert rows[2].public_json is None and rows[2].field_hashes is None


def _alembic(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def test_the_migration_keeps_existing_databases_readable_both_ways(db: Database) -> None:
    publisher = _publisher(db, ["credit"])
    _import(db, publisher, "2")
    _import(db, publisher, "5")
    history = _history(db)
    ids = _ids(db)
    corrected, untouched = ids["榕市监罚〔2023〕1号"], ids["榕市监罚〔2023〕2号"]
    config = _alembic(db)

    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0018_credit_decision_index")
    # The layout before: every version's row holds its own copy.
    assert _stored_copies(db) == {
        (corrected, 1): "2",
        (corrected, 2): "5",
        (untouched, 1): "2",
    }
    assert _history(db) == history

    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    assert _stored_copies(db) == {
        (corrected, 1): "2",
        (corrected, 2): None,
        (untouched, 1): None,
    }
    assert _history(db) == history
    _import(db, publisher, "7")
    assert [entry[:2] for entry in _history(db)["榕市监罚〔2023〕1号"]] == [
        (1, "2"),
        (2, "5"),
        (3, "7"),
    ]


def _validated(rows: list[dict[str, object]]) -> list[CreditRecord]:
    headers = {column.key: column.header for column in PENALTY_COLUMNS}
    records: list[CreditRecord] = []
    for number, row in enumerate(rows, start=2):
        record, issues = validate_row(Layout.PENALTY, number, row, headers)
        assert record is not None, issues
        records.append(record)
    return records


def test_storing_loads_the_rows_of_corrected_records_only(db: Database) -> None:
    """An unchanged record is told by its stored content hash alone; only a corrected one's
    row is loaded (and moved on to its next version)."""
    publisher = _publisher(db, ["credit"])
    _import(db, publisher, "2")
    ids = _ids(db)
    loaded: list[str] = []

    def on_load(row: CreditRecordRow, _context: object) -> None:
        loaded.append(row.id)

    event.listen(CreditRecordRow, "load", on_load)
    try:
        for fine, corrected in (("2", []), ("9", [ids["榕市监罚〔2023〕1号"]])):
            loaded.clear()
            with db.session() as session:
                outcomes = store_records(session, publisher, _validated(_rows(fine)))
            assert loaded == corrected
            assert outcomes.count(StoreOutcome.UNCHANGED) == 2 - len(corrected)
            assert outcomes.count(StoreOutcome.CORRECTED) == len(corrected)
    finally:
        event.remove(CreditRecordRow, "load", on_load)
