"""Rows of an XLSX workbook: the one module that touches the XLSX readers.

Two readers give the same rows:

- ``calamine`` (the default): python-calamine, bindings to the Rust ``calamine`` reader,
  about twenty times faster than openpyxl's streaming mode on the 双公示 templates. It
  parses the sheet's cells in Rust; Python objects are made row by row.
- ``openpyxl``: openpyxl in read-only (streaming) mode, kept as the reference the tests
  hold calamine to (and for a machine without the calamine wheel).

Cells come as openpyxl gives them: text, ``int`` for integral numbers, ``float`` otherwise,
``datetime`` for cells formatted as dates (midnight for a date without a time), ``None`` for
an empty cell; calamine's cells are brought to that form (it gives ``""`` for empty cells,
floats for every number and ``date`` for date-only cells). Text cells come without XML
white space (spaces, tabs, line breaks) at either end, and a text cell of nothing else is an
empty cell: calamine trims such white space when the cell's XML lacks
``xml:space="preserve"`` and openpyxl never does, and which writers set it differs (openpyxl
leaves it off for `` \u3000``, whose Python ``strip()`` is empty). Nothing is lost: an
imported value is stripped of white space at both ends anyway, and a cell of blanks means
nothing in a 双公示 sheet. Every row is given, empty ones
included, so that row numbers match the sheet (empty rows after the last row with a value
are left out).

calamine holds the whole sheet as one grid from ``A1`` to its farthest cell, so it is given
only workbooks whose cells lie in :data:`~credit.importing.xlsx_extent.GRID`; a larger sheet
(100,000 rows and more, or one stray cell far away) is read by openpyxl, in flat memory.
That, and how far the file's parts expand, is found first
(:mod:`credit.importing.xlsx_extent`).
"""

from __future__ import annotations

import datetime
import zipfile
from collections.abc import Iterator
from pathlib import Path

from credit.errors import ImportFileError
from credit.importing.xlsx_extent import GRID, fits_grid

__all__ = ["XLSX_READERS", "chosen_reader", "read_xlsx_rows"]

XLSX_READERS = ("calamine", "openpyxl")
"""The readers :func:`read_xlsx_rows` can use."""

_EXACT_INTEGERS = 2**53
"""Beyond this a float no longer stands for one integer: it stays a float."""


def chosen_reader(path: Path) -> str:
    """The reader for the workbook at ``path``: calamine when its cells lie in
    :data:`~credit.importing.xlsx_extent.GRID`, else openpyxl. Raises
    :class:`ImportFileError` as :func:`read_xlsx_rows`."""
    return "calamine" if fits_grid(str(path)) else "openpyxl"


def read_xlsx_rows(
    path: Path, sheet: str | None = None, *, reader: str | None = None
) -> Iterator[list[object]]:
    """The rows of the first (or the named) worksheet of the workbook at ``path``, as lists
    of cell values (see the module's text), empty rows included so that row numbers match
    the sheet. Formulas give their cached values. ``reader`` (None: :func:`chosen_reader`)
    names one of :data:`XLSX_READERS`; calamine is refused a workbook beyond its grid all
    the same. Raises :class:`ImportFileError` (``not_xlsx``) for a file that is not a
    workbook, or whose parts expand beyond :mod:`credit.importing.xlsx_extent`'s bounds."""
    chosen = chosen_reader(path)
    if reader is None:
        reader = chosen
    elif reader == "calamine" and chosen != reader:
        raise ImportFileError(
            "not_xlsx", f"the workbook's cells do not all lie in {GRID}, calamine's grid"
        )
    if reader == "calamine":
        return _without_trailing_empty_rows(_calamine_rows(path, sheet))
    if reader == "openpyxl":
        return _without_trailing_empty_rows(_openpyxl_rows(path, sheet))
    raise ValueError(f"unknown XLSX reader {reader!r}; known: {XLSX_READERS}")


def _calamine_cell(value: object) -> object:
    if value == "":
        return None
    if isinstance(value, float):
        if value.is_integer() and -_EXACT_INTEGERS < value < _EXACT_INTEGERS:
            return int(value)
        return value
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return datetime.datetime(value.year, value.month, value.day)
    return value


_XML_WHITE_SPACE = " \t\r\n"


def _text_trimmed(value: object) -> object:
    if isinstance(value, str):
        return value.strip(_XML_WHITE_SPACE) or None
    return value


def _trimmed(values: list[object]) -> list[object]:
    values = [_text_trimmed(value) for value in values]
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return values[:end]


def _without_trailing_empty_rows(rows: Iterator[list[object]]) -> Iterator[list[object]]:
    """``rows`` (trailing empty cells already cut) without the empty rows after the last
    row with a value: where a sheet ends differs between readers (openpyxl counts rows
    whose cells are styled but empty), and no row number before it changes."""
    empty = 0
    for row in rows:
        if not row:
            empty += 1
            continue
        for _ in range(empty):
            yield []
        empty = 0
        yield row


def _calamine_rows(path: Path, sheet: str | None) -> Iterator[list[object]]:
    import python_calamine

    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except (python_calamine.CalamineError, OSError) as error:
        raise ImportFileError("not_xlsx", f"not a readable XLSX workbook: {error}") from error
    try:
        try:
            worksheet = (
                workbook.get_sheet_by_name(sheet)
                if sheet is not None
                else workbook.get_sheet_by_index(0)
            )
        except (python_calamine.CalamineError, IndexError) as error:
            raise ImportFileError("not_xlsx", f"no worksheet {sheet!r}") from error
        # calamine's rows start at the first used column; the cells to its left are empty.
        _, first_column = worksheet.start or (0, 0)
        padding: list[object] = [None] * first_column
        for values in worksheet.iter_rows():
            yield _trimmed(padding + [_calamine_cell(value) for value in values])
    finally:
        workbook.close()


def _openpyxl_rows(path: Path, sheet: str | None) -> Iterator[list[object]]:
    import openpyxl  # type: ignore[import-untyped]
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    # Given an open file, not its name: openpyxl judges a name by its extension, and the
    # registry spools an upload under a name of its own.
    file = path.open("rb")
    try:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as error:
        file.close()
        raise ImportFileError("not_xlsx", f"not a readable XLSX workbook: {error}") from error
    try:
        try:
            worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        except (KeyError, IndexError) as error:
            raise ImportFileError("not_xlsx", f"no worksheet {sheet!r}") from error
        # The <dimension> a generator writes may be wrong or absent: read every cell there
        # is rather than trust it.
        worksheet.reset_dimensions()
        # In read-only mode openpyxl yields an empty row for each row missing from the
        # sheet's XML, so counting rows keeps the sheet's row numbers.
        for values in worksheet.iter_rows(values_only=True):
            yield _trimmed(list(values))
    finally:
        workbook.close()
        file.close()
