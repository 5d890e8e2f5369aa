"""Import of 双公示 tables (CSV and XLSX in the national column layout) into validated
records, with a report of every rejected row. See :mod:`credit.importing.engine`."""

from credit.importing.engine import (
    MAX_REPORTED_ISSUES,
    ImportedRow,
    ImportMode,
    ImportRejected,
    ImportReport,
    TableFormat,
    import_file,
    validate_file,
)

__all__ = [
    "MAX_REPORTED_ISSUES",
    "ImportMode",
    "ImportRejected",
    "ImportReport",
    "ImportedRow",
    "TableFormat",
    "import_file",
    "validate_file",
]
