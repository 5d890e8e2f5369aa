"""A table's data rows checked a chunk at a time: each row validated into a record (with
its identity) or into the issues that reject it, and the valid rows of the chunk handed to
an optional ``prepare`` that the caller supplies (the registry computes there what it will
store). A chunk is checked the same way in the importing process or in its worker process
(:mod:`credit.importing.workers`); everything here pickles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from chain.primitives import Hash32
from credit.columns import HeaderMapping, Layout
from credit.records import (
    LicensingRecord,
    PenaltyRecord,
    RecordKind,
    content_hash,
    record_id,
)
from credit.validation import Issue, validate_row

__all__ = [
    "CHUNK_ROWS",
    "CheckedChunk",
    "CheckedRow",
    "Chunk",
    "ImportedRow",
    "Prepare",
    "check_chunk",
]

CHUNK_ROWS = 500
"""Data rows checked together (and sent together to a worker process)."""

Chunk = Sequence[tuple[int, Sequence[object]]]
"""Non-blank data rows: (1-based row of the file, its cells)."""


@dataclass(frozen=True)
class ImportedRow:
    """A valid row and the identity of the record it carries."""

    row: int
    """1-based row of the file."""
    record: PenaltyRecord | LicensingRecord
    """The validated record."""
    record_id: Hash32
    """Its identity: the same on every import (kind + natural key)."""
    prepared: object = None
    """What the import's ``prepare`` made of it (None without one)."""

    @property
    def content_hash(self) -> Hash32:
        """The hash of its content: equal iff the content is equal. Computed when asked
        (a quarter of a row's validation time, and the registry hashes what it stores)."""
        return content_hash(self.record)


Prepare = Callable[[Sequence[ImportedRow]], Sequence[object]]
"""Made of a chunk's valid rows, one item per row, in order, where the chunk is checked:
picklable (a module-level function, or an instance of a module-level class) when the
import has a worker process."""


class CheckedRow(NamedTuple):
    """One data row as checked, before the checks that need the rows before it (a
    natural key seen earlier in the file). A tuple: it crosses from the worker process
    with each row, and pickles at a third of a dataclass's cost."""

    row: int
    """1-based row of the file."""
    record: PenaltyRecord | LicensingRecord | None
    """The validated record, or None."""
    record_id: Hash32 | None
    """Its identity, or None."""
    issues: list[Issue]
    """What rejects it (empty for a valid row)."""


@dataclass(frozen=True)
class CheckedChunk:
    """A chunk's rows as checked, and what ``prepare`` made of its valid ones."""

    rows: list[CheckedRow]
    """Every row of the chunk, in order."""
    prepared: Sequence[object] | None
    """One item per valid row, in order; None when the chunk was not prepared."""


def check_chunk(
    mapping: HeaderMapping, chunk: Chunk, prepare: Prepare | None = None
) -> CheckedChunk:
    """Validate every row of ``chunk`` against the file's header ``mapping``; hand the
    valid ones to ``prepare`` if given."""
    kind = RecordKind.PENALTY if mapping.layout is Layout.PENALTY else RecordKind.LICENSING
    checked: list[CheckedRow] = []
    valid: list[ImportedRow] = []
    for number, cells in chunk:
        values = {
            key: cells[position] for position, key in mapping.positions if position < len(cells)
        }
        record, issues = validate_row(mapping.layout, number, values, mapping.headers)
        if record is None:
            checked.append(CheckedRow(number, None, None, issues))
            continue
        identity = record_id(kind, record.natural_key)
        checked.append(CheckedRow(number, record, identity, issues))
        valid.append(ImportedRow(number, record, identity))
    prepared = None if prepare is None else prepare(valid)
    if prepared is not None and len(prepared) != len(valid):
        raise ValueError("prepare must make one item per row")
    return CheckedChunk(checked, prepared)
