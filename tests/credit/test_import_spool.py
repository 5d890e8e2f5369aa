"""The all-or-nothing spool pickles a row's dataclasses as their fields' values alone: a
licensing file's rows (the other record class) come back from it equal to the rows read
straight, of the same classes, with the same attributes, hashing alike; and pickling these
classes anywhere else is left as it was."""

from __future__ import annotations

import pickle
from pathlib import Path

from credit_tables import (
    LICENSING_HEADERS,
    LICENSING_KEYS,
    cells,
    licensing_row,
    natural_person,
    write_csv,
)

from credit.importing import ImportedRow, ImportMode, import_file
from credit.records import LicensingRecord
from credit.subjects import Subject


def test_licensing_rows_come_back_from_the_spool_as_they_were_read(tmp_path: Path) -> None:
    rows = [licensing_row(decision_number=f"榕市监许〔2023〕{n}号") for n in range(25)]
    for row in rows[::4]:
        row.update(natural_person())
    path = write_csv(
        tmp_path / "licensing.csv",
        [LICENSING_HEADERS, *(cells(LICENSING_KEYS, row) for row in rows)],
    )
    spooled: list[ImportedRow] = []
    streamed: list[ImportedRow] = []
    import_file(path, spooled.append, mode=ImportMode.ALL_OR_NOTHING)
    import_file(path, streamed.append, mode=ImportMode.VALID_ROWS)
    assert len(spooled) == 25
    assert spooled == streamed
    for back, read in zip(spooled, streamed, strict=True):
        assert type(back.record) is LicensingRecord and type(back.record.subject) is Subject
        assert vars(back.record) == vars(read.record)
        assert list(vars(back.record)) == list(vars(read.record))
        assert vars(back.record.subject) == vars(read.record.subject)
        assert hash(back.record) == hash(read.record)
        assert back.content_hash == read.content_hash
        # Elsewhere these classes pickle as before, by their fields' names.
        assert b"decision_number" in pickle.dumps(read.record)
