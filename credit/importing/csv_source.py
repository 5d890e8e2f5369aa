"""Rows of a CSV file, read with the standard library one row at a time, in whatever
encoding departments save them: UTF-8 with or without a BOM, UTF-16 with a BOM, or
GBK/GB18030 (Excel's "CSV" on a Chinese Windows)."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path

from credit.errors import ImportFileError

__all__ = ["ENCODING_SAMPLE_BYTES", "MAX_LINE_CHARS", "detect_encoding", "read_csv_rows"]

ENCODING_SAMPLE_BYTES = 256 * 1024
"""Bytes read from the start of a file without a BOM to tell UTF-8 from GB18030."""

MAX_LINE_CHARS = 4 * 1024 * 1024
"""Longest line read, in characters: a row of the 30 columns of the penalty layout, each at
the csv module's field limit (131,072 characters), fits. A line is held whole before the
csv module sees it, so without this a file of one 1 GiB line held it all (a 300 MB line of
Chinese took the process to 613 MiB before the field limit refused it)."""

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file that starts with ``sample``: from its BOM, else UTF-8 if the
    sample decodes as UTF-8 (a character cut at the end is allowed), else GB18030 (a
    superset of GBK and GB2312)."""
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _dialect(first_line: str) -> str:
    """The delimiter: a tab if the header has more tabs than commas, else a comma."""
    return "\t" if first_line.count("\t") > first_line.count(",") else ","


def _bounded_lines(text: io.TextIOWrapper) -> Iterator[str]:
    """The lines of ``text``, each at most :data:`MAX_LINE_CHARS`; raises
    :class:`ImportFileError` (``bad_csv``) at a longer one."""
    number = 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise ImportFileError(
                "bad_csv", f"line {number} is longer than {MAX_LINE_CHARS:,} characters"
            )
        yield line


def read_csv_rows(path: Path) -> Iterator[list[str]]:
    """The rows of the CSV file at ``path`` as lists of cells, in order, blank lines
    included (as empty lists) so that row numbers match the file. Raises
    :class:`ImportFileError` (``encoding``, ``bad_csv``)."""
    with path.open("rb") as raw:
        encoding = detect_encoding(raw.read(ENCODING_SAMPLE_BYTES))
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            first_line = next(_bounded_lines(text), "")
            text.seek(0)
            reader = csv.reader(_bounded_lines(text), delimiter=_dialect(first_line))
            yield from reader
        except UnicodeDecodeError as error:
            raise ImportFileError(
                "encoding", f"the file is not valid {encoding} at byte {error.start}"
            ) from error
        except csv.Error as error:
            raise ImportFileError("bad_csv", f"not a readable CSV file: {error}") from error
