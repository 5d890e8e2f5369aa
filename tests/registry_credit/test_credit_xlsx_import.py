"""XLSX through ``POST /v1/credit/imports``, as a department's SDK sends it: a workbook as
spreadsheet programs write it imports; one with an empty cell far from its table (which
calamine would build a grid of 512 GiB for) imports the same rows, read in flat memory; a
zip bomb is refused with ``not_xlsx`` and stores nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from credit_harness import CreditApp, penalties
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, write_xlsx

from sdk.trust_types import RegistryError

SHEET = "xl/worksheets/sheet1.xml"
FAR_CELL = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t></t></is></c></row>'


def _workbook(tmp_path: Path, count: int) -> Path:
    table = [PENALTY_HEADERS] + [cells(PENALTY_KEYS, row) for row in penalties(count)]
    return write_xlsx(tmp_path / "penalties.xlsx", table)


def _rewritten(source: Path, target: Path, extra: dict[str, bytes], far: bool) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if far and item.filename == SHEET:
                data = data.replace(b"</sheetData>", FAR_CELL + b"</sheetData>")
            new.writestr(item, data)
        for name, data in extra.items():
            new.writestr(name, data)
    return target


def test_a_workbook_imports_and_again_changes_nothing(app: CreditApp, tmp_path: Path) -> None:
    path = _workbook(tmp_path, 30)
    summary = app.sdk.import_file(path)
    assert (summary.published, summary.unchanged) == (30, 0)
    assert app.records() == 30
    assert app.sdk.import_file(path).unchanged == 30


def test_an_empty_cell_far_from_the_table_imports_the_table(app: CreditApp, tmp_path: Path) -> None:
    path = _rewritten(_workbook(tmp_path, 30), tmp_path / "far.xlsx", {}, far=True)
    assert path.stat().st_size < 20_000
    summary = app.sdk.import_file(path)
    assert (summary.published, summary.unchanged) == (30, 0)
    assert app.records() == 30


def test_a_zip_bomb_is_refused_and_stores_nothing(app: CreditApp, tmp_path: Path) -> None:
    path = _rewritten(
        _workbook(tmp_path, 5),
        tmp_path / "bomb.xlsx",
        {"xl/media/padding.bin": bytes(32 * 1024 * 1024)},
        far=False,
    )
    with pytest.raises(RegistryError) as refused:
        app.sdk.import_file(path)
    assert path.stat().st_size < 200_000
    assert (refused.value.status_code, refused.value.code) == (422, "unreadable_file_not_xlsx")
    assert "expand" in refused.value.message
    assert app.records() == 0 and app.events() == 0
