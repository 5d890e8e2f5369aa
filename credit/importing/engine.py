"""The import engine: a 双公示 table (CSV or XLSX) read row by row, each row validated into a
record or into report entries, and the records handed to a sink.

Two modes. :attr:`ImportMode.ALL_OR_NOTHING` (the default) reads and validates the file
once, spooling its valid rows to a temporary file (about 710 bytes a penalty row: their
values without field names), and hands nothing to the sink unless every row is valid:
otherwise it raises :class:`ImportRejected` with the report of every problem.
:attr:`ImportMode.VALID_ROWS` hands the valid rows to the sink as it reads them, and returns
the report of the rejected ones. Memory stays bounded by the number of distinct natural
keys (kept as 16-byte digests to refuse duplicates within a file) and
:data:`MAX_REPORTED_ISSUES`, not by the file size.

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

from chain.primitives import Hash32
from credit.columns import LAYOUT_COLUMNS, HeaderMapping, Layout, detect_layout, map_header
from credit.errors import CreditError, ImportFileError
from credit.importing.csv_source import read_csv_rows
from credit.importing.xlsx_source import read_xlsx_rows
from credit.normalize import clean_text
from credit.records import (
    LicensingRecord,
    PenaltyRecord,
    RecordKind,
    content_hash,
    record_id,
)
from credit.subjects import Subject
from credit.validation import Issue, IssueReason, validate_row

__all__ = [
    "MAX_REPORTED_ISSUES",
    "MAX_ROWS_BEFORE_HEADER",
    "PROGRESS_EVERY_ROWS",
    "REQUIRED_COLUMNS",
    "ImportMode",
    "ImportRejected",
    "ImportReport",
    "ImportedRow",
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

_KEY_DIGEST_SIZE = 16
"""Bytes of the natural-key digest kept per row to find duplicates in a file."""


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


@dataclass(frozen=True)
class ImportedRow:
    """A valid row and the identity of the record it carries."""

    row: int
    """1-based row of the file."""
    record: PenaltyRecord | LicensingRecord
    """The validated record."""
    record_id: Hash32
    """Its identity: the same on every import (kind + natural key)."""

    @property
    def content_hash(self) -> Hash32:
        """The hash of its content: equal iff the content is equal. Computed when asked
        (a quarter of a row's validation time, and the registry hashes what it stores)."""
        return content_hash(self.record)


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


def _format_of(path: Path, table_format: TableFormat | None) -> TableFormat:
    if table_format is not None:
        return table_format
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return TableFormat.XLSX
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


def _scan(
    path: Path,
    layout: Layout | None,
    table_format: TableFormat | None,
    report: ImportReport,
    progress: Progress | None = None,
    phase: str = "validate",
) -> Iterator[ImportedRow]:
    """Validate the file's rows, filling ``report`` and yielding the valid ones; tell
    ``progress`` every :data:`PROGRESS_EVERY_ROWS` rows and at the end."""
    rows = _rows(path, _format_of(path, table_format))
    mapping: HeaderMapping | None = None
    seen: dict[bytes, int] = {}
    leading = 0
    kind = RecordKind.PENALTY
    for number, cells in enumerate(rows, start=1):
        if _blank(cells):
            continue
        if mapping is None:
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
            if not report.ok:
                return
            kind = RecordKind.PENALTY if mapping.layout is Layout.PENALTY else RecordKind.LICENSING
            continue
        report.rows_read += 1
        if progress is not None and report.rows_read % PROGRESS_EVERY_ROWS == 0:
            progress(phase, report.rows_read)
        values = {
            key: cells[position] for position, key in mapping.positions if position < len(cells)
        }
        record, issues = validate_row(mapping.layout, number, values, mapping.headers)
        if record is not None:
            identity = record_id(kind, record.natural_key)
            digest = bytes(identity[:_KEY_DIGEST_SIZE])
            first = seen.get(digest)
            if first is not None:
                issues = [
                    Issue(
                        number,
                        mapping.headers["decision_number"],
                        record.decision_number,
                        IssueReason.DUPLICATE_KEY,
                        f"same authority and decision number as row {first}",
                    )
                ]
            else:
                seen[digest] = number
        if issues:
            report.rows_rejected += 1
            report.add(issues)
            continue
        assert record is not None
        report.rows_valid += 1
        yield ImportedRow(number, record, identity)
    if progress is not None and mapping is not None:
        progress(phase, report.rows_read)
    if mapping is None:
        raise ImportFileError(
            "unknown_layout",
            f"no header naming 行政处罚决定书文号 or 行政许可决定文书号 in the first "
            f"{MAX_ROWS_BEFORE_HEADER + 1} non-blank rows",
        )


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
) -> ImportReport:
    """Import the file at ``path``: hand each valid row to ``sink``, in file order, and
    return the report. In :attr:`ImportMode.ALL_OR_NOTHING` the file is validated first and
    :class:`ImportRejected` is raised, with the sink never called, if any row (or the
    header) has a problem. Raises :class:`ImportFileError` for a file that cannot be read
    as a table at all."""
    if mode is ImportMode.ALL_OR_NOTHING:
        return _import_all_or_nothing(path, sink, layout, table_format, progress)
    report = ImportReport()
    for row in _scan(path, layout, table_format, report, progress, "import"):
        sink(row)
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
        for row in _scan(path, layout, table_format, report, progress):
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
