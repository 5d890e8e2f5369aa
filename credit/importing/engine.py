"""The import engine: a 双公示 table (CSV or XLSX) read row by row, each row validated into a
record or into report entries, and the records handed to a sink.

Two modes. :attr:`ImportMode.ALL_OR_NOTHING` (the default) reads and validates the file
once, spooling its valid rows to a temporary file (about 710 bytes a penalty row: their
values without field names), and hands nothing to the sink unless every row is valid:
otherwise it raises :class:`ImportRejected` with the report of every problem (a caller
that stores in one transaction takes the rows as they validate instead, and rolls back on
ImportRejected: ``sink_undone_on_reject``). :attr:`ImportMode.VALID_ROWS` hands the valid
rows to the sink as it reads them, and returns the report of the rejected ones. Memory
stays bounded by the number of distinct natural keys (kept as 16-byte digests to refuse
duplicates within a file) and :data:`MAX_REPORTED_ISSUES`, not by the file size. Rows are
validated a chunk at a time (:mod:`credit.importing.rows`), here and, when asked, in a
worker process on another core (:mod:`credit.importing.workers`).

Identities do not depend on the file: a record's id comes from its kind and natural key
(:func:`credit.records.record_id`), so importing the same content again yields the same ids
and the same content hashes, and the caller can tell unchanged rows from corrections
(:func:`credit.corrections.compare`).
"""

from __future__ import annotations

import copyreg
import enum
import operator
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from credit.columns import LAYOUT_COLUMNS, HeaderMapping, Layout, detect_layout, map_header
from credit.errors import CreditError, ImportFileError
from credit.importing.csv_source import read_csv_rows
from credit.importing.rows import CHUNK_ROWS, Chunk, ImportedRow, Prepare
from credit.importing.seen_keys import KEY_SIZE, SeenKeys
from credit.importing.workers import RowChecker
from credit.importing.xlsx_source import read_xlsx_rows
from credit.normalize import clean_text
from credit.records import LicensingRecord, PenaltyRecord
from credit.subjects import Subject
from credit.validation import Issue, IssueReason

__all__ = [
    "MAX_REPORTED_ISSUES",
    "MAX_ROWS_BEFORE_HEADER",
    "PROGRESS_EVERY_ROWS",
    "REQUIRED_COLUMNS",
    "ImportMode",
    "ImportRejected",
    "ImportReport",
    "ImportedRow",
    "Prepare",
    "Progress",
    "TableFormat",
    "import_file",
    "validate_file",
]

MAX_REPORTED_ISSUES = 100_000
"""Most issues a report lists; past it, ``issues_total`` still counts them all."""

REQUIRED_COLUMNS: dict[Layout, tuple[str, ...]] = {
    Layout.PENALTY: (
        "name",
        "category",
        "decision_number",
        "violation_type",
        "violation_facts",
        "legal_basis",
        "categories",
        "content",
        "decision_date",
        "authority",
        "authority_uscc",
        "data_source",
        "data_source_uscc",
    ),
    Layout.LICENSING: (
        "name",
        "category",
        "document_name",
        "decision_number",
        "license_category",
        "content",
        "decision_date",
        "valid_from",
        "valid_to",
        "authority",
        "authority_uscc",
        "status",
        "data_source",
        "data_source_uscc",
    ),
}
"""Columns without which no row of a layout can be valid: a file lacking one is refused
as a whole, at its header."""

MAX_ROWS_BEFORE_HEADER = 10
"""Non-blank rows (titles, notes) skipped above the header before the file is refused."""

PROGRESS_EVERY_ROWS = 1_000
"""Rows between two calls of an import's progress callback."""

Progress = Callable[[str, int], None]
"""Told the phase (``validate`` or ``import``) and the data rows read so far in it."""


class ImportMode(enum.StrEnum):
    """What to do with a file that has invalid rows."""

    ALL_OR_NOTHING = "all_or_nothing"
    """Import nothing and report every problem."""
    VALID_ROWS = "valid_rows"
    """Import the valid rows, and report the rejected ones."""


class TableFormat(enum.StrEnum):
    """File formats read."""

    CSV = "csv"
    """Comma- (or tab-) separated text."""
    XLSX = "xlsx"
    """Office Open XML workbook."""


@dataclass
class ImportReport:
    """What an import found."""

    layout: Layout | None = None
    """The file's layout, once its header is read."""
    header_row: int = 0
    """The row holding the header."""
    rows_read: int = 0
    """Non-blank data rows read."""
    rows_valid: int = 0
    """Rows that validated."""
    rows_rejected: int = 0
    """Rows with at least one issue."""
    issues: list[Issue] = field(default_factory=list)
    """Problems that reject rows (or the whole file, for header problems), in file order;
    at most :data:`MAX_REPORTED_ISSUES`."""
    issues_total: int = 0
    """Every problem found, including those past the list's bound."""
    warnings: list[Issue] = field(default_factory=list)
    """Header remarks that reject nothing: unknown columns (ignored), second columns for a
    field (ignored), absent optional columns."""

    @property
    def ok(self) -> bool:
        """Whether nothing was rejected."""
        return self.issues_total == 0

    def add(self, issues: Sequence[Issue]) -> None:
        """Record ``issues``, keeping at most :data:`MAX_REPORTED_ISSUES`."""
        self.issues_total += len(issues)
        room = MAX_REPORTED_ISSUES - len(self.issues)
        if room > 0:
            self.issues.extend(issues[:room])


class ImportRejected(CreditError):
    """An all-or-nothing import refused: nothing was imported. ``report`` says why."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"import refused: {report.issues_total} problem(s)")
        self.report = report


_ZIP_START = b"PK\x03\x04"
"""How a zip file (an XLSX workbook among them) starts."""
_OLE2_START = bytes.fromhex("d0cf11e0a1b11ae1")
"""How an OLE compound file (an Excel 97-2003 ``.xls`` workbook, a WPS ``.et``) starts."""
_ODS_MIMETYPE = b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"
"""What an OpenDocument spreadsheet holds at its start (its stored ``mimetype`` member)."""
_MARKUP_STARTS = (b"<", b"\xef\xbb\xbf<", b"\xff\xfe<\x00", b"\xfe\xff\x00<")
"""How a web page or an XML file starts (UTF-8, with or without a BOM, or UTF-16): what many
systems' "export to Excel" writes (an HTML table, or Excel 2003's XML Spreadsheet)."""


def _format_of(path: Path, table_format: TableFormat | None) -> TableFormat:
    """The format the file at ``path`` is: its first bytes decide, whatever its name or the
    format declared (a workbook saved with a ``.csv`` name, or sent as CSV, is read as the
    workbook it is); then the format declared, then the name's extension. Raises
    :class:`ImportFileError` (``not_xlsx``) for a spreadsheet of another kind."""
    with path.open("rb") as file:
        head = file.read(128)
    if head.startswith(_OLE2_START):
        raise ImportFileError(
            "not_xlsx",
            "an Excel 97-2003 workbook (.xls) or another OLE compound file: save it as .xlsx "
            "(Excel, WPS) or as CSV",
        )
    if head.lstrip(b" \t\r\n").startswith(_MARKUP_STARTS):
        raise ImportFileError(
            "not_xlsx",
            "a web page or XML file (an export to Excel that writes an HTML table or an XML "
            "Spreadsheet 2003), not a table file: open it in Excel or WPS and save it as "
            ".xlsx or as CSV",
        )
    if head.startswith(_ZIP_START):
        if _ODS_MIMETYPE in head:
            raise ImportFileError(
                "not_xlsx", "an OpenDocument spreadsheet (.ods): save it as .xlsx or as CSV"
            )
        return TableFormat.XLSX
    if table_format is TableFormat.XLSX or path.suffix.lower() in (".xlsx", ".xlsm"):
        raise ImportFileError(
            "not_xlsx", "not an XLSX workbook: the file is not a zip (is it CSV text?)"
        )
    return TableFormat.CSV


def _rows(path: Path, table_format: TableFormat) -> Iterator[Sequence[object]]:
    if table_format is TableFormat.XLSX:
        return read_xlsx_rows(path)
    return read_csv_rows(path)


def _blank(cells: Sequence[object]) -> bool:
    for cell in cells:
        if cell is None:
            continue
        if not isinstance(cell, str) or cell.strip().strip("\ufeff"):
            return False
    return True


def _header_issues(mapping: HeaderMapping, row: int, report: ImportReport) -> None:
    required = set(REQUIRED_COLUMNS[mapping.layout])
    issues: list[Issue] = []
    for column in LAYOUT_COLUMNS[mapping.layout]:
        if column.key in mapping.headers:
            continue
        entry = Issue(
            row,
            column.header,
            None,
            IssueReason.MISSING_COLUMN,
            "required column absent" if column.key in required else "optional column absent",
        )
        (issues if column.key in required else report.warnings).append(entry)
    for _, header in mapping.unknown:
        report.warnings.append(
            Issue(row, header, header, IssueReason.UNKNOWN_COLUMN, "not a template column")
        )
    for _, header in mapping.duplicated:
        report.warnings.append(
            Issue(row, header, header, IssueReason.DUPLICATE_COLUMN, "second column, ignored")
        )
    report.add(issues)


def _header(
    numbered: Iterator[tuple[int, Sequence[object]]],
    layout: Layout | None,
    report: ImportReport,
) -> HeaderMapping | None:
    """Read rows up to the header and map it (noting the rows skipped above it and the
    header's problems in ``report``); None when the file's header has a problem. Raises
    ImportFileError when no header is found."""
    leading = 0
    for number, cells in numbered:
        if _blank(cells):
            continue
        text_cells = [clean_text(cell) for cell in cells]
        if detect_layout(text_cells) is None:
            leading += 1
            if leading > MAX_ROWS_BEFORE_HEADER:
                break
            title = next(cell for cell in text_cells if cell is not None)
            report.warnings.append(
                Issue(number, "", title, IssueReason.SKIPPED_ROW, "above the header")
            )
            continue
        mapping = map_header(text_cells, layout)
        report.layout = mapping.layout
        report.header_row = number
        _header_issues(mapping, number, report)
        return mapping if report.ok else None
    raise ImportFileError(
        "unknown_layout",
        f"no header naming 行政处罚决定书文号 or 行政许可决定文书号 in the first "
        f"{MAX_ROWS_BEFORE_HEADER + 1} non-blank rows",
    )


def _chunks(numbered: Iterator[tuple[int, Sequence[object]]]) -> Iterator[Chunk]:
    """The non-blank data rows, :data:`credit.importing.rows.CHUNK_ROWS` at a time."""
    chunk: list[tuple[int, Sequence[object]]] = []
    for number, cells in numbered:
        if _blank(cells):
            continue
        chunk.append((number, cells))
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _scan(
    path: Path,
    layout: Layout | None,
    table_format: TableFormat | None,
    report: ImportReport,
    progress: Progress | None = None,
    phase: str = "validate",
    *,
    prepare: Prepare | None = None,
    workers: int = 0,
    prepare_while: Callable[[], bool] = lambda: True,
) -> Iterator[ImportedRow]:
    """Validate the file's rows, filling ``report`` and yielding the valid ones (with
    what ``prepare`` made of them, while ``prepare_while()`` holds), checked here and by
    ``workers`` worker processes; tell ``progress`` every :data:`PROGRESS_EVERY_ROWS`
    rows and at the end."""
    numbered = enumerate(_rows(path, _format_of(path, table_format)), start=1)
    mapping = _header(numbered, layout, report)
    if mapping is None:
        return
    seen = SeenKeys()
    with RowChecker(mapping, prepare, workers=workers) as checker:
        for checked in checker.checked(_chunks(numbered), prepare_while):
            prepared = iter(checked.prepared if checked.prepared is not None else ())
            for row in checked.rows:
                report.rows_read += 1
                if progress is not None and report.rows_read % PROGRESS_EVERY_ROWS == 0:
                    progress(phase, report.rows_read)
                issues = row.issues
                if row.record is not None:
                    assert row.record_id is not None
                    item = next(prepared, None)
                    first = seen.first_row(bytes(row.record_id[:KEY_SIZE]), row.row)
                    if first is not None:
                        issues = [
                            Issue(
                                row.row,
                                mapping.headers["decision_number"],
                                row.record.decision_number,
                                IssueReason.DUPLICATE_KEY,
                                f"same authority and decision number as row {first}",
                            )
                        ]
                if issues:
                    report.rows_rejected += 1
                    report.add(issues)
                    continue
                assert row.record is not None and row.record_id is not None
                report.rows_valid += 1
                yield ImportedRow(row.row, row.record, row.record_id, item)
    if progress is not None:
        progress(phase, report.rows_read)


def validate_file(
    path: Path,
    *,
    layout: Layout | None = None,
    table_format: TableFormat | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Read and validate every row of the file at ``path`` without importing anything, and
    return the report. ``layout`` is detected from the header and ``table_format`` from
    the file name when not given; ``progress`` (for a progress bar) is told how far the
    reading is."""
    report = ImportReport()
    for _ in _scan(path, layout, table_format, report, progress):
        pass
    return report


def import_file(
    path: Path,
    sink: Callable[[ImportedRow], None],
    *,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    layout: Layout | None = None,
    table_format: TableFormat | None = None,
    progress: Progress | None = None,
    prepare: Prepare | None = None,
    workers: int = 0,
    sink_undone_on_reject: bool = False,
) -> ImportReport:
    """Import the file at ``path``: hand each valid row to ``sink``, in file order, and
    return the report. In :attr:`ImportMode.ALL_OR_NOTHING` :class:`ImportRejected` is
    raised if any row (or the header) has a problem, and then the file is validated first
    and the sink never called; or, with ``sink_undone_on_reject`` (the caller undoes
    whatever the sink did when ImportRejected is raised: it stores in one database
    transaction), rows are handed over as they validate, none after the first problem.
    Raises :class:`ImportFileError` for a file that cannot be read as a table at all.

    ``prepare``, if given, is handed each chunk of valid rows where they are validated,
    and what it made of a row reaches the sink as :attr:`ImportedRow.prepared`. With
    ``workers=1`` a worker process validates and prepares chunks while this process runs
    the sink on the chunks before (``prepare`` must then pickle,
    :mod:`credit.importing.workers`)."""
    if mode is ImportMode.ALL_OR_NOTHING and not sink_undone_on_reject:
        return _import_all_or_nothing(path, sink, layout, table_format, progress, prepare, workers)
    report = ImportReport()
    if mode is ImportMode.ALL_OR_NOTHING:
        # Past a problem nothing more is stored: the rows are only validated, for the report.
        wanted: Callable[[], bool] = lambda: report.ok  # noqa: E731
    else:
        wanted = lambda: True  # noqa: E731
    rows = _scan(
        path,
        layout,
        table_format,
        report,
        progress,
        "import",
        prepare=prepare,
        workers=workers,
        prepare_while=wanted,
    )
    for row in rows:
        if wanted():
            sink(row)
    if not wanted():
        raise ImportRejected(report)
    return report


def _rebuild(cls: type[object], values: tuple[object, ...]) -> object:
    """A spooled dataclass instance back from its fields' values (:func:`_spooled`)."""
    instance = object.__new__(cls)
    instance.__dict__.update(zip(_SPOOLED_FIELDS[cls], values, strict=True))
    return instance


def _spooled(instance: object) -> tuple[Callable[..., object], tuple[object, ...]]:
    """How a row's dataclasses are pickled to the spool: the class and its fields' values,
    without a field name (written with every row by the default reduction, and then read
    back into a fresh dict: a third of the spool's time and 40 % of its bytes)."""
    cls = type(instance)
    return _rebuild, (cls, _SPOOLED_GETTERS[cls](instance))


_SPOOLED_FIELDS: dict[type[object], tuple[str, ...]] = {
    cls: tuple(item.name for item in fields(cls))
    for cls in (ImportedRow, PenaltyRecord, LicensingRecord, Subject)
}
"""The dataclasses of a spooled row, and their fields in order."""

_SPOOLED_GETTERS = {cls: operator.attrgetter(*names) for cls, names in _SPOOLED_FIELDS.items()}

_SPOOL_DISPATCH: dict[type[object], Callable[[Any], Any]] = {
    **copyreg.dispatch_table,
    **dict.fromkeys(_SPOOLED_FIELDS, _spooled),
}
"""The spool pickler's reductions (see :func:`_spooled`)."""


def _import_all_or_nothing(
    path: Path,
    sink: Callable[[ImportedRow], None],
    layout: Layout | None,
    table_format: TableFormat | None,
    progress: Progress | None,
    prepare: Prepare | None,
    workers: int,
) -> ImportReport:
    """Validate the whole file, keeping its valid rows in a spool file of this process
    (pickled: reading one back costs a tenth of validating it again), then hand them over
    only if nothing was rejected. Memory stays bounded whatever the file's size."""
    report = ImportReport()
    with tempfile.TemporaryFile(prefix="lianxin-import-") as spool:
        # One pickle per row, each with its own memo: a memo kept across rows would keep
        # every row alive; cleared after each row, each is read back by a fresh unpickler.
        pickler = pickle.Pickler(spool, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = _SPOOL_DISPATCH
        rows = _scan(
            path,
            layout,
            table_format,
            report,
            progress,
            prepare=prepare,
            workers=workers,
            prepare_while=lambda: report.ok,
        )
        for row in rows:
            pickler.dump(row)
            pickler.clear_memo()
        if not report.ok:
            raise ImportRejected(report)
        spool.seek(0)
        for handed in range(1, report.rows_valid + 1):
            sink(pickle.load(spool))
            if progress is not None and handed % PROGRESS_EVERY_ROWS == 0:
                progress("import", handed)
    if progress is not None and report.layout is not None:
        progress("import", report.rows_valid)
    return report
