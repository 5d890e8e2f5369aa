"""Workbooks that ask too much of their reader: a cell far from the rest (calamine would
build the whole grid up to it: 1.5 KB on disk, 512 GiB in memory, and the process
aborts), cells that do not name their place, namespace prefixes, zip bombs, members that
expand beyond what they declare, and two members of one name. Each is read in flat memory
by openpyxl or refused with ``not_xlsx``; nothing reaches calamine that it would build a
grid beyond :data:`~credit.importing.xlsx_extent.GRID` for.

The reads that a regression would turn into an allocation of gigabytes run in a child
process under an address-space limit, so that such a regression fails the test instead of
taking the test run down with it."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from credit_tables import PENALTY_HEADERS, PENALTY_KEYS, cells, penalty_row, write_xlsx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit.errors import ImportFileError
from credit.importing import ImportedRow, ImportMode, import_file
from credit.importing.xlsx_extent import MAX_EXPANSION, fits_grid
from credit.importing.xlsx_source import chosen_reader, read_xlsx_rows

ROOT = Path(__file__).resolve().parents[2]
SHEET = "xl/worksheets/sheet1.xml"
ADDRESS_SPACE = 3 << 30
"""The child's address-space limit: far above a reading of these files in flat memory,
far below the grid calamine would build for a far cell."""


def _column(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _with_sheet(source: Path, target: Path, edit: object) -> Path:
    """``source`` rewritten to ``target`` with its sheet's XML passed through ``edit``."""
    assert callable(edit)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            new.writestr(item, edit(data) if item.filename == SHEET else data)
    return target


def _with_cells(source: Path, target: Path, xml: str) -> Path:
    """``source`` with ``xml`` (rows) added at the end of its sheet's data."""
    return _with_sheet(
        source, target, lambda data: data.replace(b"</sheetData>", xml.encode() + b"</sheetData>")
    )


def _penalty_book(tmp_path: Path, rows: int = 2) -> Path:
    table = [PENALTY_HEADERS] + [
        cells(PENALTY_KEYS, penalty_row(decision_number=f"榕市监罚〔2023〕{n}号"))
        for n in range(1, rows + 1)
    ]
    return write_xlsx(tmp_path / "penalties.xlsx", table)


def _empty_cell_at(reference: str, row: int) -> str:
    return f'<row r="{row}"><c r="{reference}" t="inlineStr"><is><t></t></is></c></row>'


def _read_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    """Import ``path`` in a child process under :data:`ADDRESS_SPACE`; it prints how many
    rows were imported and the reader chosen."""
    script = (
        "import resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE})); "
        "from pathlib import Path; "
        "from credit.importing import import_file, ImportMode; "
        "from credit.importing.xlsx_source import chosen_reader; "
        "rows = []; "
        "import_file(Path(sys.argv[1]), rows.append, mode=ImportMode.ALL_OR_NOTHING); "
        "print(len(rows), chosen_reader(Path(sys.argv[1])))"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("reference", "row"),
    [("XFD1048576", 1_048_576), ("BA4", 4), ("A100000", 100_000), ("ZZ70000", 70_000)],
)
def test_a_far_empty_cell_is_read_in_flat_memory_and_the_rows_import(
    tmp_path: Path, reference: str, row: int
) -> None:
    """A cell far below or to the right of the table, with nothing in it (a spreadsheet
    program leaves such cells where a value was typed and deleted): the table imports
    whole, read by openpyxl, in a process that could not have built calamine's grid."""
    path = _with_cells(
        _penalty_book(tmp_path), tmp_path / "far.xlsx", _empty_cell_at(reference, row)
    )
    done = _read_in_child(path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "openpyxl"]


def test_cells_at_the_grid_s_far_corner_still_go_to_calamine(tmp_path: Path) -> None:
    path = _with_cells(
        _penalty_book(tmp_path), tmp_path / "corner.xlsx", _empty_cell_at("AZ99999", 99_999)
    )
    assert fits_grid(str(path))
    done = _read_in_child(path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "calamine"]


def _located_otherwise(data: bytes) -> bytes:
    # The last cell's r attribute after another one: its place is not followed.
    head, _, tail = data.rpartition(b'<c r="')
    attributes = re.match(rb'([A-Z]+[0-9]+)"( [^>]*?)(/?>)', tail)
    assert attributes is not None
    rest = tail[attributes.end() :]
    return head + b"<c" + attributes[2] + b' r="' + attributes[1] + b'"' + attributes[3] + rest


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_located_otherwise, id="r-not-first"),
        pytest.param(lambda data: data.replace(b'<c r="A2"', b"<c", 1), id="no-r"),
        pytest.param(lambda data: data.replace(b'<c r="A2"', b'<c  r = "A2"', 1), id="spaced-r"),
        pytest.param(lambda data: data.replace(b'<c r="A2"', b'<c r="a2"', 1), id="lower-case"),
        pytest.param(
            lambda data: data.replace(b"<worksheet ", b'<worksheet xmlns:x="urn:x" ', 1).replace(
                b'<c r="A2"', b'<x:c r="A2"', 1
            ),
            id="prefixed",
        ),
    ],
)
def test_a_cell_that_does_not_name_its_place_plainly_goes_to_openpyxl(
    tmp_path: Path, edit: object
) -> None:
    path = _with_sheet(_penalty_book(tmp_path), tmp_path / "odd.xlsx", edit)
    assert not fits_grid(str(path))
    assert chosen_reader(path) == "openpyxl"
    with pytest.raises(ImportFileError) as refused:
        list(read_xlsx_rows(path, reader="calamine"))
    assert refused.value.reason == "not_xlsx"


def _bomb(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_workbook_that_expands_beyond_its_bound_is_refused_before_it_is_read(
    tmp_path: Path,
) -> None:
    members = _members(_penalty_book(tmp_path))
    members["xl/media/padding.bin"] = bytes(64 * 1024 * 1024)
    data = _bomb(members)
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(data)
    assert MAX_EXPANSION * len(data) < 64 * 1024 * 1024
    for reader in (None, "calamine", "openpyxl"):
        with pytest.raises(ImportFileError) as refused:
            read_xlsx_rows(path, reader=reader)
        assert refused.value.reason == "not_xlsx"
        assert "expand" in str(refused.value)


def _understate(data: bytes, name: str, declared: int) -> bytes:
    """``data`` (a zip) with ``name``'s uncompressed size declared as ``declared``, in its
    local header and in the central directory."""
    patched = bytearray(data)
    encoded = name.encode()
    for signature, size_at, name_length_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),
        (b"PK\x01\x02", 24, 28, 46),
    ):
        start = 0
        while (start := patched.find(signature, start)) >= 0:
            (length,) = struct.unpack(
                "<H", patched[start + name_length_at : start + name_length_at + 2]
            )
            if patched[start + name_at : start + name_at + length] == encoded:
                patched[start + size_at : start + size_at + 4] = struct.pack("<I", declared)
            start += 4
    return bytes(patched)


def test_a_member_that_expands_beyond_what_it_declares_is_refused(tmp_path: Path) -> None:
    """Shared strings that declare 1,000 bytes and hold 20 MB: calamine's zip reader would
    expand them whole before failing; they are refused before it is given the file."""
    members = _members(_penalty_book(tmp_path))
    members["xl/extra.xml"] = b"<x>" + b"a" * (20 * 1024 * 1024) + b"</x>"
    path = tmp_path / "understated.xlsx"
    path.write_bytes(_understate(_bomb(members), "xl/extra.xml", 1_000))
    with pytest.raises(ImportFileError) as refused:
        read_xlsx_rows(path)
    assert refused.value.reason == "not_xlsx"
    assert "xl/extra.xml" in str(refused.value)


def test_a_part_held_whole_is_bounded_whatever_the_file_s_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared strings (both readers hold them whole) over MAX_OTHER_PART_BYTES are refused
    by their declared size, however well the file compresses; a worksheet part of that
    size is not, since it is streamed or scanned."""
    from credit.importing import xlsx_extent

    monkeypatch.setattr(xlsx_extent, "MAX_OTHER_PART_BYTES", 1 << 20)
    members = _members(_penalty_book(tmp_path, 2_000))
    assert len(members[SHEET]) > 1 << 20
    path = tmp_path / "shared.xlsx"
    path.write_bytes(_bomb(members))
    assert len(list(read_xlsx_rows(path))) == 2_001
    # Any member but a worksheet: here one the sheet does not even refer to.
    members["xl/sharedStrings.xml"] = b"<sst>" + b"<si><t>x</t></si>" * 70_000 + b"</sst>"
    path.write_bytes(_bomb(members))
    with pytest.raises(ImportFileError) as refused:
        read_xlsx_rows(path)
    size = len(members["xl/sharedStrings.xml"])
    assert f"xl/sharedStrings.xml would expand to {size:,} bytes (at most 1,048,576)" in str(
        refused.value
    )


def test_two_members_of_one_name_are_refused(tmp_path: Path) -> None:
    source = _penalty_book(tmp_path)
    path = tmp_path / "twice.xlsx"
    far = _empty_cell_at("XFD1048576", 1_048_576).encode()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename != SHEET:
                new.writestr(item, data)
                continue
            # A reader that opens the first of the two would see the far cell.
            new.writestr(SHEET, data.replace(b"</sheetData>", far + b"</sheetData>"))
            with pytest.warns(UserWarning, match="Duplicate name"):
                new.writestr(item, data)
    with pytest.raises(ImportFileError) as refused:
        read_xlsx_rows(path)
    assert refused.value.reason == "not_xlsx"
    assert "two parts named" in str(refused.value)


def test_an_import_of_a_far_cell_workbook_gives_the_rows_of_the_table(tmp_path: Path) -> None:
    path = _with_cells(_penalty_book(tmp_path, 3), tmp_path / "far.xlsx", _empty_cell_at("XFD9", 9))
    rows: list[ImportedRow] = []
    import_file(path, rows.append, mode=ImportMode.ALL_OR_NOTHING)
    assert [row.row for row in rows] == [2, 3, 4]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    places=st.lists(
        st.tuples(st.integers(1, 16_384), st.integers(5, 1_048_576)), min_size=1, max_size=3
    )
)
def test_calamine_is_chosen_exactly_when_every_cell_lies_in_the_grid(
    tmp_path_factory: pytest.TempPathFactory, places: list[tuple[int, int]]
) -> None:
    """Any cells after the table: calamine exactly when all lie in A1:AZ99999, and then it
    reads what openpyxl reads (so the choice changes nothing but speed)."""
    folder = tmp_path_factory.mktemp("grid")
    by_row: dict[int, set[int]] = {}
    for column, row in places:
        by_row.setdefault(row, set()).add(column)
    xml = "".join(
        f'<row r="{row}">'
        + "".join(
            f'<c r="{_column(column)}{row}" t="inlineStr"><is><t>v</t></is></c>'
            for column in sorted(columns)
        )
        + "</row>"
        for row, columns in sorted(by_row.items())
    )
    path = _with_cells(_penalty_book(folder), folder / "cells.xlsx", xml)
    inside = all(column <= 52 and row <= 99_999 for column, row in places)
    assert fits_grid(str(path)) is inside
    if inside:
        assert list(read_xlsx_rows(path, reader="calamine")) == list(
            read_xlsx_rows(path, reader="openpyxl")
        )
