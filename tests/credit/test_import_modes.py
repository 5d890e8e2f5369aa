"""Both import modes hand over the same rows of a valid file (all-or-nothing replays them
from its spool after validating the whole file), and all-or-nothing hands over nothing when
one row is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from credit_tables import (
    PENALTY_HEADERS,
    PENALTY_KEYS,
    cells,
    natural_person,
    penalty_row,
    write_csv,
)

from credit.importing import ImportedRow, ImportMode, ImportRejected, import_file

"""A valid resident ID (tests/vectors/codes.json)."""

NAMES = ("福州某某贸易有限公司", "福州另一贸易有限公司", "福州第三科技有限公司")
CATEGORIES = ("罚款", "警告;罚款", "警告")


def _table(count: int, **wrong: object) -> list[list[object]]:
    rows = [
        penalty_row(
            decision_number=f"榕市监罚〔2023〕{n}号",
            name=NAMES[n % 3],
            categories=CATEGORIES[n % 3],
            # Rows of different shapes (with and without a fine) pickle different objects.
            fine_wan="" if n % 3 == 2 else str(n % 7 + 1),
            decision_date=("2023-05-01", "2023/5/2", "2023年5月3日")[n % 3],
            publication_deadline="2024-05-01",
            # A text met twice in a row is one object in its pickle: vary it by row.
            authority=f"福州市第{n}市场监督管理局",
            data_source=f"福州市第{n}市场监督管理局",
        )
        for n in range(count)
    ]
    for row in rows[::5]:
        # Natural persons: a subject of another shape than an organisation's.
        row.update(natural_person())
    rows[-1].update(wrong)
    return [PENALTY_HEADERS, *(cells(PENALTY_KEYS, row) for row in rows)]


def test_all_or_nothing_hands_over_what_valid_rows_does(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "penalties.csv", _table(1_203))
    spooled: list[ImportedRow] = []
    streamed: list[ImportedRow] = []
    first = import_file(path, spooled.append, mode=ImportMode.ALL_OR_NOTHING)
    second = import_file(path, streamed.append, mode=ImportMode.VALID_ROWS)
    assert spooled == streamed
    assert [row.content_hash for row in spooled] == [row.content_hash for row in streamed]
    assert first == second
    assert first.rows_valid == 1_203


def test_all_or_nothing_hands_over_nothing_when_a_row_is_wrong(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "penalties.csv", _table(50, decision_date="2023-13-01"))
    handed: list[ImportedRow] = []
    with pytest.raises(ImportRejected) as refused:
        import_file(path, handed.append, mode=ImportMode.ALL_OR_NOTHING)
    assert handed == []
    assert refused.value.report.rows_rejected == 1
