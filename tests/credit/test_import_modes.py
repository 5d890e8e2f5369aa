"""Both import modes hand over the same rows of a valid file (all-or-nothing replays them
from its spool after validating the whole file), and all-or-nothing hands over nothing when
one row is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row, write_csv

from credit.importing import ImportedRow, ImportMode, ImportRejected, import_file


def _table(count: int, **wrong: object) -> list[list[object]]:
    rows = [penalty_row(decision_number=f"榕市监罚〔2023〕{n}号") for n in range(count)]
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
