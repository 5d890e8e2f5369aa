"""A 双公示 file (CSV or XLSX) imported into the registry: validated by
:mod:`credit.importing`, stored by :mod:`registry.credit.store`, in ONE transaction.

- all or nothing (the default): a file with any problem imports nothing and the report
  (row, column, value, reason) comes back in :class:`registry.errors.InvalidInput`'s place,
  as :class:`ImportRefused`;
- valid rows: the valid rows are imported, and the report of the rejected ones is
  anchored (an ``import_report`` event whose digest is the SM3 of the report's canonical
  JSON, signed by the department like every event).

Re-importing a file changes nothing (every row is unchanged); a changed row is a
correction with history. Every row's authority (or data source) must be the importing
department, unless it is the credit office; otherwise nothing is imported.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError

from chain.crypto import sm3
from credit.errors import ImportFileError
from credit.importing import ImportedRow, ImportMode, ImportRejected, ImportReport, TableFormat
from credit.importing import import_file as read_import
from credit.validation import Issue
from registry.credit.events import IMPORT_REPORT, event_values
from registry.credit.models import CreditEventRow
from registry.credit.store import (
    PreparedRecord,
    Publisher,
    RecordPreparer,
    StoreOutcome,
    database_kind,
    require_authority,
    store_prepared,
)
from registry.db import Database
from registry.errors import Conflict, InvalidInput
from sdk import canonical

__all__ = [
    "STORE_CHUNK",
    "WORKER_MIN_BYTES",
    "ImportOutcome",
    "ImportRefused",
    "import_bytes",
    "report_json",
]

STORE_CHUNK = 1_000
"""Validated rows stored per round of inserts (all in the import's one transaction)."""

WORKER_MIN_BYTES: dict[TableFormat, int] = {TableFormat.CSV: 8 << 20, TableFormat.XLSX: 3 << 20}
"""Files from this size up (about 28,000 penalty rows as CSV, 26,000 as XLSX) are validated
and prepared on a second core too (:mod:`credit.importing.workers`). The worker costs about
1.5 s of CPU to start (its imports) and 50 us a row to hand rows back: measured quietly, a
30,000-row file was imported 45 % faster with it, a 10,000-row file 20 % slower."""

REPORT_ISSUES_SHOWN = 1_000
"""Most issues an answer lists (the anchored report hash covers them all)."""


class ImportRefused(InvalidInput):
    """An all-or-nothing import refused: nothing was imported; ``report`` says why."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(
            f"import refused: {report['issues_total']} problem(s); nothing was imported",
            code="import_rejected",
        )
        self.report = report


def _issue(issue: Issue) -> dict[str, Any]:
    return {
        "row": issue.row,
        "column": issue.column,
        "value": issue.value,
        "reason": issue.reason.value,
        "detail": issue.detail,
    }


def report_json(report: ImportReport, *, limit: int | None = REPORT_ISSUES_SHOWN) -> dict[str, Any]:
    """The report as JSON (issues listed up to ``limit``; None: all)."""
    issues = report.issues if limit is None else report.issues[:limit]
    return {
        "layout": None if report.layout is None else report.layout.value,
        "header_row": report.header_row,
        "rows_read": report.rows_read,
        "rows_valid": report.rows_valid,
        "rows_rejected": report.rows_rejected,
        "issues_total": report.issues_total,
        "issues": [_issue(issue) for issue in issues],
        "warnings": [_issue(issue) for issue in report.warnings[:REPORT_ISSUES_SHOWN]],
    }


@dataclass
class ImportOutcome:
    """What an import did."""

    report: dict[str, Any]
    """The validation report (JSON)."""
    published: int = 0
    """New records."""
    corrected: int = 0
    """Records corrected (a new version each)."""
    unchanged: int = 0
    """Rows whose content was on file already."""
    report_hash: str | None = None
    """SM3 of the canonical JSON of the full report of rejected rows, when anchored."""
    report_event_id: str | None = None
    """The event anchoring it."""


def import_bytes(
    db: Database,
    publisher: Publisher,
    data: bytes,
    *,
    table_format: TableFormat,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    progress: Callable[[str, int], None] | None = None,
) -> ImportOutcome:
    """Import the file ``data`` for ``publisher`` (see the module's text). Raises
    ImportRefused (all or nothing, with the report), InvalidInput (``unreadable_file``:
    not a table at all), Forbidden (a row of an authority the publisher may not act for:
    nothing is imported), Conflict (a concurrent request stored one of its records)."""
    with tempfile.TemporaryDirectory(prefix="lianxin-credit-") as folder:
        path = Path(folder) / f"upload.{table_format.value}"
        path.write_bytes(data)
        return import_path(
            db, publisher, path, table_format=table_format, mode=mode, progress=progress
        )


def import_path(
    db: Database,
    publisher: Publisher,
    path: Path,
    *,
    table_format: TableFormat,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    progress: Callable[[str, int], None] | None = None,
) -> ImportOutcome:
    """Import the file at ``path`` for ``publisher``, as :func:`import_bytes` does (a table
    streamed to disk by its route is imported from where it was written)."""
    try:
        return _import_in_one_transaction(db, publisher, path, table_format, mode, progress)
    except IntegrityError:
        # Another request stored one of these records between this one's lookup and insert.
        raise Conflict(
            "a concurrent request stored some of these records; import the file again",
            code="concurrent_import",
        ) from None


@contextmanager
def _checkpoint_left_to_schedule(connection: Connection) -> Iterator[None]:
    """On SQLite, no checkpoint in the commit of what runs inside: the import's commit
    syncs its WAL (it is durable then) and returns, and copying the pages into the database
    file is left to the scheduled checkpoints (:func:`registry.housekeeping.run_checkpoints`,
    or the next commit past the threshold on this connection, once its setting is back).
    An import writes about 9 KB a row (records, versions, events and their indexes), so its
    WAL is past the automatic checkpoint's threshold from 9,000 rows; that checkpoint,
    writing every page again and syncing the database file, took a fifth of a 30,000-row
    import's time, inside its request."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    (pages,) = driver.execute("PRAGMA wal_autocheckpoint").fetchone()
    driver.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield
    finally:
        if not (connection.invalidated or connection.closed):
            driver.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")


def _import_in_one_transaction(
    db: Database,
    publisher: Publisher,
    path: Path,
    table_format: TableFormat,
    mode: ImportMode,
    progress: Callable[[str, int], None] | None,
) -> ImportOutcome:
    outcome = ImportOutcome(report={})
    workers = 1 if path.stat().st_size >= WORKER_MIN_BYTES[table_format] else 0
    # The connection is held past the commit, so that its setting is restored before any
    # other session takes it from the pool.
    with (
        db.engine.connect() as connection,
        _checkpoint_left_to_schedule(connection),
        db.sessions(bind=connection) as session,
        session.begin(),
    ):
        buffer: list[PreparedRecord] = []

        def flush() -> None:
            if not buffer:
                return
            for result in store_prepared(session, publisher, buffer):
                if result is StoreOutcome.PUBLISHED:
                    outcome.published += 1
                elif result is StoreOutcome.CORRECTED:
                    outcome.corrected += 1
                else:
                    outcome.unchanged += 1
            buffer.clear()

        def sink(row: ImportedRow) -> None:
            record = row.record
            require_authority(publisher.client, record.authority_uscc, record.data_source_uscc)
            buffer.append(cast(PreparedRecord, row.prepared))
            if len(buffer) >= STORE_CHUNK:
                flush()

        try:
            # All or nothing by the transaction: rows are stored as they validate, and a
            # file with a problem raises ImportRejected, which rolls the session back.
            report = read_import(
                path,
                sink,
                mode=mode,
                table_format=table_format,
                progress=progress,
                prepare=RecordPreparer.of(publisher, database_kind(session)),
                workers=workers,
                sink_undone_on_reject=True,
            )
        except ImportRejected as error:
            raise ImportRefused(report_json(error.report)) from None
        except ImportFileError as error:
            raise InvalidInput(str(error), code=f"unreadable_file_{error.reason}") from None
        flush()
        outcome.report = report_json(report)
        if not report.ok:
            full = report_json(report, limit=None)
            digest = sm3(canonical.canonical_json(full))
            values = event_values(
                client=publisher.client,
                kind=IMPORT_REPORT,
                digest=digest,
                at=publisher.now.astimezone(datetime.UTC),
                reason=f"{report.rows_rejected} rejected row(s)",
            )
            session.execute(cast(Table, CreditEventRow.__table__).insert(), [values])
            outcome.report_hash = digest.hex()
            outcome.report_event_id = str(values["id"])
    return outcome
