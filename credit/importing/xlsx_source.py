"""Rows of an XLSX workbook, through openpyxl in read-only (streaming) mode: the one module
that touches openpyxl. Cells come as openpyxl gives them (text, numbers, ``datetime`` for
cells formatted as dates); the validator copes with each."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from credit.errors import ImportFileError

__all__ = ["read_xlsx_rows"]


def read_xlsx_rows(path: Path, sheet: str | None = None) -> Iterator[list[object]]:
    """The rows of the first (or the named) worksheet of the workbook at ``path``, as lists
    of cell values, empty rows included so that row numbers match the sheet. Formulas give
    their cached values. Raises :class:`ImportFileError` (``not_xlsx``)."""
    import openpyxl  # type: ignore[import-untyped]
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as error:
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
            yield list(values)
    finally:
        workbook.close()
