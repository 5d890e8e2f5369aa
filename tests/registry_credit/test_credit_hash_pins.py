"""What an import stores is pinned byte for byte: the identities, content hashes, salted
field hashes, fields roots and subject keys of a few known rows under a fixed master
secret, so that no change to the speed of validation, hashing or storing can change a
commitment a subject already holds an opening of."""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import pytest
from credit_tables import (
    BLACK,
    LICENSING_HEADERS,
    LICENSING_KEYS,
    PENALTY,
    PENALTY_HEADERS,
    PENALTY_KEYS,
    RED,
    cells,
    licensing_row,
    penalty_row,
)
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from chain.crypto import PrivateKey, sm3
from credit.field_hashes import content_hash_of, fields_root_of, text_field_hash, text_field_hashes
from credit.importing import TableFormat
from credit.records import CreditRecord, content_hash, record_fields, record_kind
from credit.rulesets import bundled_rule_set
from registry.cli import add_client
from registry.credit.imports import import_bytes
from registry.credit.keys import CreditKeys
from registry.credit.models import CreditRecordRow, CreditRecordVersion
from registry.credit.store import Publisher
from registry.db import Database
from registry.settings import RegistrySettings
from sdk.commitments import field_hash

pytestmark = pytest.mark.no_database

MASTER = b"pinned: a fixed master secret.."

PENALTY_ROWS = [
    penalty_row(),
    penalty_row(
        name="张三",
        category="自然人",
        code_1="",
        legal_representative="",
        id_type="身份证",
        id_number="11010519491231002X",
        decision_number="榕市监罚〔2023〕13号",
        categories="警告;罚款",
        fine_wan="1,234.5",
        decision_date="2023年5月1日",
    ),
    penalty_row(decision_number="榕市监罚〔2023〕14号", decision_date=45047, content='含"引号"\\'),
]

STORED_PENALTIES = "ae341a34c9fe60ad93dc759c04e8e7782d9b1c5267af5cc847d531fece4d4a99"
"""SM3 (hex) of what is stored for :data:`PENALTY_ROWS` (see :func:`_stored`)."""
STORED_LICENSING = "2d09eb22c307cb5e9df746c534732e7f0e8400521508bdfadeb8fac69f04172e"
"""The same for one licensing row."""


def _csv(headers: list[str], keys: list[str], rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(cells(keys, row) for row in rows)
    return buffer.getvalue().encode()


def _stored(tmp_path: Path, data: bytes) -> tuple[str, list[dict[str, object]]]:
    db = Database.open(RegistrySettings(data_dir=tmp_path / "registry"))
    try:
        client = add_client(
            db,
            name="福州市市场监督管理局",
            uscc="11220000013544541J",
            public_key_pem=PrivateKey.generate().public_key.to_pem(),
            roles=["credit"],
        )
        publisher = Publisher(
            client,
            CreditKeys(MASTER),
            bundled_rule_set("cn.ndrc.order-58"),
            datetime.datetime(2023, 6, 1, tzinfo=datetime.UTC),
        )
        import_bytes(db, publisher, data, table_format=TableFormat.CSV)
        with db.read_session() as session:
            records = session.scalars(select(CreditRecordRow).order_by(CreditRecordRow.id)).all()
            versions = {row.record_id: row for row in session.scalars(select(CreditRecordVersion))}
            stored: list[dict[str, object]] = []
            for row in records:
                version = versions[row.id]
                # The current version's fields are the record row's, stored once.
                assert version.field_hashes is None
                assert version.public_json is None
                assert version.authority_json is None
                assert version.fields_root == row.fields_root
                assert version.content_hash == row.content_hash
                stored.append(
                    {
                        "id": row.id,
                        "content_hash": row.content_hash,
                        "field_hashes": row.field_hashes,
                        "fields_root": row.fields_root,
                        "subject_key": row.subject_key,
                        "public_json": row.public_json,
                        "authority_json": row.authority_json,
                        "window": [
                            str(row.window_start),
                            str(row.minimum_end),
                            str(row.maximum_end),
                            str(row.display_end),
                            row.severity,
                        ],
                    }
                )
    finally:
        db.close()
    text = json.dumps(stored, ensure_ascii=False, sort_keys=True)
    return sm3(text.encode()).hex(), stored


def test_stored_penalties_are_pinned(tmp_path: Path) -> None:
    digest, stored = _stored(tmp_path, _csv(PENALTY_HEADERS, PENALTY_KEYS, PENALTY_ROWS))
    assert len(stored) == 3
    assert digest == STORED_PENALTIES, digest


def test_stored_licensing_is_pinned(tmp_path: Path) -> None:
    digest, stored = _stored(tmp_path, _csv(LICENSING_HEADERS, LICENSING_KEYS, [licensing_row()]))
    assert len(stored) == 1
    assert digest == STORED_LICENSING, digest


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "subject.name",
            "福州某某贸易有限公司",
            "b9cb9ce9a5a574f2fdc5359d1a435022c012fe007f392860712ad2e079cb0178",
        ),
        (
            "content",
            'a "quoted"\\ value\n\t\u2028',
            "78fe45f8284b29a0035d0a0647dae52064d625e11e2d19637939707d1ab8280d",
        ),
        ("fine_wan", None, "08421e9854aaca5fb4b3b29f9f546df95b255a872f1c6b2de29a03e61f618680"),
        ("x" * 60, "y" * 70, "9a833c0c33511a7bdaa251ddcf4456fec1090b173ee60e8c9c9958771ef7886e"),
    ],
)
def test_text_field_hashes_are_pinned(name: str, value: str | None, expected: str) -> None:
    salt = bytes(range(16))
    assert text_field_hash(name, value, salt).hex() == expected
    (hashed,) = text_field_hashes({name: value}, lambda _: salt).values()
    assert hashed.hex() == expected


def test_salts_and_fields_root_are_pinned() -> None:
    salts = CreditKeys(MASTER).salts(bytes(32))
    names = ["subject.name", "decision_date", "content"]
    assert [salts(name).hex() for name in names] == [
        "d2193c25cc3b1f04db6ef4ddf5845aec",
        "f8518ee7960f71e24c6f00cf2ae89b53",
        "3f823dc2e75c412450e347deddcf20d4",
    ]
    assert fields_root_of({name: sm3(name.encode()) for name in names}).hex() == (
        "649510f34cd98b0e62b709b539b233a088bea86e3bf34accd66af2c177c9e6c9"
    )


@given(
    fields=st.dictionaries(
        st.text(min_size=1, max_size=80), st.none() | st.text(max_size=300), max_size=12
    ),
    salt=st.binary(min_size=1, max_size=70),
)
def test_bulk_field_hashes_are_the_sdks_field_hash(
    fields: dict[str, str | None], salt: bytes
) -> None:
    hashes = text_field_hashes(fields, lambda name: salt + name.encode()[:3])
    assert hashes == {
        name: field_hash(name, value, salt + name.encode()[:3]) for name, value in fields.items()
    }


@pytest.mark.parametrize("record", [PENALTY, BLACK, RED], ids=["penalty", "black", "red"])
def test_content_hash_of_the_fields_is_the_records_content_hash(record: CreditRecord) -> None:
    assert content_hash_of(record_kind(record), record_fields(record)) == content_hash(record)
