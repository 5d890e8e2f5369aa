"""The two XLSX readers of credit imports give the same rows: calamine (the default, fast)
is held to openpyxl (the reference) on generated sheets of every cell type at any offset,
and on a department-style penalty sheet (title rows, blank rows, Excel date serials, date
cells, full-width characters, a sheet starting in column C), which then imports."""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

import openpyxl
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from credit.importing import ImportedRow, import_file
from credit.importing.xlsx_source import read_xlsx_rows

_TEXT = st.text(
    alphabet=st.sampled_from("abc XYZ 012 ９０ 　\ufeff福州市监罚〔〕号－；;,.\t"), max_size=12
)
_CELLS = st.one_of(
    st.none(),
    _TEXT,
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.dates(min_value=datetime.date(1900, 3, 1), max_value=datetime.date(2099, 12, 31)),
    st.datetimes(
        min_value=datetime.datetime(1900, 3, 1), max_value=datetime.datetime(2099, 12, 31)
    ).map(lambda moment: moment.replace(microsecond=0)),
)


def _write(path: Path, grid: list[list[object]], top: int, left: int) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            if value is not None:
                sheet.cell(row=top + r, column=left + c, value=value)
    workbook.save(path)
    return path


def _both(path: Path) -> tuple[list[list[object]], list[list[object]]]:
    return (
        list(read_xlsx_rows(path, reader="calamine")),
        list(read_xlsx_rows(path, reader="openpyxl")),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grid=st.lists(st.lists(_CELLS, max_size=6), min_size=1, max_size=6),
    top=st.integers(min_value=1, max_value=4),
    left=st.integers(min_value=1, max_value=4),
)
@example(grid=[[" "], ["\t", "a"], ["\n"]], top=1, left=1)
# openpyxl writes these without xml:space="preserve" (their Python strip() is empty), and
# calamine then trims the ASCII space where openpyxl kept it.
@example(grid=[[" \u3000", "\u3000 "], [" a\t", 1]], top=2, left=2)
def test_calamine_reads_what_openpyxl_reads(grid: list[list[object]], top: int, left: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        fast, reference = _both(_write(Path(folder) / "grid.xlsx", grid, top, left))
    assert fast == reference


def test_a_department_sheet_reads_alike_and_imports(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["福州市市场监督管理局行政处罚信息公示表"],
        [],
        list(PENALTY_HEADERS),
        cells(PENALTY_KEYS, penalty_row(decision_number="榕市监罚〔2023〕1号")),
        [],
        cells(
            PENALTY_KEYS,
            penalty_row(decision_number="榕市监罚〔2023〕2号", decision_date=45047, fine_wan=2.5),
        ),
        cells(
            PENALTY_KEYS,
            penalty_row(
                decision_number="榕市监罚〔2023〕3号",
                decision_date=datetime.datetime(2023, 5, 1),
                fine_wan="２",
            ),
        ),
    ]
    path = _write(tmp_path / "department.xlsx", rows, top=1, left=3)
    fast, reference = _both(path)
    assert fast == reference
    handed: list[ImportedRow] = []
    report = import_file(path, handed.append)
    assert report.ok, report.issues
    assert [row.row for row in handed] == [4, 6, 7]
    decision_dates = {row.record.decision_date for row in handed}  # type: ignore[union-attr]
    assert decision_dates == {datetime.date(2023, 5, 1)}
