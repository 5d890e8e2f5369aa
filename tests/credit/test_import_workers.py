"""An import checked on two cores (a worker process validating and preparing chunks while
the importing process takes the chunks before) hands its sink exactly what one process
does: the same rows, in file order, with what ``prepare`` made of each, and the same report,
duplicates across chunks included. A failing ``prepare`` or a dead worker fails the import
and leaves no process behind. A sink that is undone on rejection gets the rows as they
validate, none after the first problem."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row, write_csv

import credit.importing.engine as engine
import credit.importing.workers as workers
from credit.importing import ImportedRow, ImportMode, ImportRejected, ImportReport, import_file
from credit.importing.workers import ImportWorkerError

CHUNK = 7
"""Rows per chunk in these tests: a 60-row file makes nine chunks, some for the worker."""


def prepared_where(rows: Sequence[ImportedRow]) -> list[tuple[int, str, int]]:
    """What ``prepare`` makes of a row here: its row, content hash and the process."""
    return [(row.row, row.content_hash.hex(), os.getpid()) for row in rows]


def refuse_row_40(rows: Sequence[ImportedRow]) -> list[int]:
    """A ``prepare`` that fails on the chunk holding row 40."""
    if any(row.row == 40 for row in rows):
        raise LookupError("row 40 cannot be prepared")
    return [row.row for row in rows]


def die_on_row_40(rows: Sequence[ImportedRow]) -> list[int]:
    """A ``prepare`` whose process dies on the chunk holding row 40."""
    if any(row.row == 40 and os.getpid() != int(os.environ["IMPORTING_PID"]) for row in rows):
        os._exit(3)
    return [row.row for row in rows]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "CHUNK_ROWS", CHUNK)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """60 rows: row 12 misses its decision date, row 45 repeats row 3's decision number
    (another chunk), the rest are valid."""
    rows = [penalty_row(decision_number=f"榕市监罚〔2023〕{n}号") for n in range(60)]
    rows[10]["decision_date"] = ""
    rows[43]["decision_number"] = "榕市监罚〔2023〕1号"
    return write_csv(tmp_path / "t.csv", [PENALTY_HEADERS, *(cells(PENALTY_KEYS, r) for r in rows)])


def _imported(
    path: Path, processes: int, mode: ImportMode = ImportMode.VALID_ROWS
) -> tuple[list[ImportedRow], ImportReport]:
    handed: list[ImportedRow] = []
    report = import_file(path, handed.append, mode=mode, prepare=prepared_where, workers=processes)
    return handed, report


def _without_process(rows: list[ImportedRow]) -> list[tuple[int, object, bytes, object]]:
    return [
        (row.row, row.record, row.record_id, row.prepared[:2])  # type: ignore[index]
        for row in rows
    ]


def test_two_cores_hand_over_what_one_process_does(
    table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone, alone_report = _imported(table, 0)
    # Chunks are checked here only once the worker is up (it would still be starting when
    # so small a file is done), so that both processes check some.
    monkeypatch.setattr(workers.RowChecker, "_check_here", _wait_for_worker)
    shared, shared_report = _imported(table, 1)
    assert _without_process(shared) == _without_process(alone)
    assert [row.row for row in shared] == sorted(row.row for row in shared)
    assert shared_report == alone_report
    assert [(issue.row, issue.reason) for issue in shared_report.issues] == [
        (12, "missing"),
        (45, "duplicate_key"),
    ]
    assert "row 3" in shared_report.issues[1].detail
    assert shared_report.rows_valid == 58
    # Both processes checked chunks.
    processes = {row.prepared[2] for row in shared}  # type: ignore[index]
    assert os.getpid() in processes and len(processes) == 2


def test_all_or_nothing_on_two_cores_hands_nothing_for_a_bad_file(table: Path) -> None:
    with pytest.raises(ImportRejected) as refused:
        _imported(table, 1, ImportMode.ALL_OR_NOTHING)
    assert refused.value.report.issues_total == 2


def test_a_sink_undone_on_rejection_gets_the_rows_before_the_first_problem(table: Path) -> None:
    handed: list[ImportedRow] = []
    with pytest.raises(ImportRejected) as refused:
        import_file(
            table,
            handed.append,
            prepare=prepared_where,
            workers=1,
            sink_undone_on_reject=True,
        )
    assert [row.row for row in handed] == list(range(2, 12))
    # The whole file was still validated, for the report.
    assert refused.value.report.rows_read == 60
    assert refused.value.report.issues_total == 2


def _children() -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry.name))
    return found


def test_a_failure_where_rows_are_prepared_fails_the_import_and_stops_the_worker(
    table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _children()
    with pytest.raises(LookupError, match="row 40"):
        import_file(
            table, lambda row: None, mode=ImportMode.VALID_ROWS, prepare=refuse_row_40, workers=1
        )
    monkeypatch.setenv("IMPORTING_PID", str(os.getpid()))
    # The first chunk is checked here once the worker is up, and every later one there.
    monkeypatch.setattr(workers.RowChecker, "_check_here", _wait_for_worker)
    monkeypatch.setattr(workers, "IN_FLIGHT", 100)
    monkeypatch.setattr(workers, "MAX_AHEAD", 100)
    with pytest.raises(ImportWorkerError, match="ended"):
        import_file(
            table, lambda row: None, mode=ImportMode.VALID_ROWS, prepare=die_on_row_40, workers=1
        )
    assert _children() == before


_original_check_here = workers.RowChecker._check_here


def _wait_for_worker(
    checker: workers.RowChecker, chunk: workers.Chunk, prepare: bool
) -> workers.CheckedChunk:
    """Check a chunk here only after the worker is up, so that it takes the next ones."""
    worker = checker._worker
    assert worker is not None
    while not worker.is_ready():
        worker.inbox.poll(0.05)
    return _original_check_here(checker, chunk, prepare)
