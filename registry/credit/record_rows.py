"""A credit record's rows as the database stores them, made without reading the database:
its ``credit_records`` columns (field hashes under their salts, fields root, content hash,
display window), its first version and its publication event, turned into the database
driver's parameters by bulk inserts compiled once per kind of database
(:class:`RecordPreparer`). An import makes them in its worker process
(:mod:`credit.importing.workers`), so everything here pickles and holds no database
object; :mod:`registry.credit.store` stores them.

Time is a parameter (``RecordPreparer.now``): nothing here reads a clock.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import JSON, DateTime, Dialect, Table, make_url
from sqlalchemy.orm import Session

from chain.primitives import Hash32
from credit.display import MASKED_IDENTIFIER_FIELDS, public_fields
from credit.field_hashes import content_hash_of, fields_root_of, text_field_hashes_under
from credit.importing import ImportedRow
from credit.json_encoders import json_encoder
from credit.records import (
    CreditCommitment,
    CreditRecord,
    LicensingRecord,
    LifecycleEventKind,
    ListEntry,
    PenaltyRecord,
    record_fields,
    record_kind,
)
from credit.rulesets import RuleSet
from credit.subjects import mask_identifier
from credit.windows import Window, licensing_window, penalty_window
from registry.credit.events import event_values
from registry.credit.keys import CreditKeys, subject_identifier
from registry.credit.models import CreditEventRow, CreditRecordRow, CreditRecordVersion

if TYPE_CHECKING:
    from registry.credit.store import Publisher

__all__ = [
    "PreparedRecord",
    "RecordPreparer",
    "Signer",
    "as_aware",
    "bulk_inserts",
    "database_kind",
    "display_end",
    "json_text",
    "utc",
    "window_of",
]


def as_aware(moment: datetime.datetime) -> datetime.datetime:
    """A stored time with its zone (SQLite hands back UTC times without it)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    """``moment`` in UTC, as every time the registry stores is (SQLite keeps no zone)."""
    return None if moment is None else moment.astimezone(datetime.UTC)


def _midnight(day: datetime.date, rules: RuleSet) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(0), tzinfo=rules.utc_offset)


def window_of(record: CreditRecord, rules: RuleSet) -> Window:
    """The display window of any record: a penalty's or a licensing decision's under
    ``rules``; a list entry from its entry date to its planned exit; a credit commitment
    from its signature, without end."""
    if isinstance(record, PenaltyRecord):
        return penalty_window(record, rules)
    if isinstance(record, LicensingRecord):
        return licensing_window(record, rules)
    if isinstance(record, ListEntry):
        start = _midnight(record.entry_date, rules)
        planned = record.planned_exit_date
        end = None if planned is None else _midnight(planned, rules)
    else:
        start, end = _midnight(record.signed_on, rules), None
    return Window(start, None, end, None, rules.id, rules.version, rules.content_hash)


def display_end(
    maximum_end: datetime.datetime | None, stopped_at: datetime.datetime | None
) -> datetime.datetime | None:
    """The first instant a record is no longer shown: the earlier of its window's end and
    an early stop (None: shown without end)."""
    ends = [as_aware(end) for end in (maximum_end, stopped_at) if end is not None]
    return utc(min(ends)) if ends else None


def _authority_fields(fields: dict[str, str | None]) -> dict[str, str | None]:
    shown = dict(fields)
    for name in MASKED_IDENTIFIER_FIELDS:
        value = shown.get(name)
        if value:
            shown[name] = mask_identifier(value)
    return shown


def _window_columns(window: Window, stopped_at: datetime.datetime | None) -> dict[str, Any]:
    return {
        "window_start": utc(window.start),
        "minimum_end": utc(window.minimum_end),
        "maximum_end": utc(window.maximum_end),
        "display_end": display_end(window.maximum_end, stopped_at),
        "severity": None if window.severity is None else window.severity.value,
    }


def _membership(identity: str, subject_key: str, entry: ListEntry) -> dict[str, Any]:
    return {
        "record_id": identity,
        "subject_key": subject_key,
        "list_type": entry.list_type.value,
        "list_name": entry.list_name,
        "entry_date": entry.entry_date,
        "planned_exit_date": entry.planned_exit_date,
        "exit_date": None,
        "exit_reason": None,
        "basis_records": [
            f"{key.authority_uscc}/{key.decision_number}" for key in entry.basis_records
        ],
    }


@dataclass(frozen=True)
class Signer:
    """The department whose key an event's commitment is made under: what
    :func:`registry.credit.events.event_values` reads of a client, picklable."""

    id: str
    """The client's id."""
    public_key: str
    """Its SM2 public key, hex (65 bytes)."""


_JSON_TEXT = json_encoder(ensure_ascii=True, separators=(", ", ": "), sort_keys=False)
"""``json.dumps`` with its default settings, by an encoder made once."""


def json_text(value: Any) -> str:
    """``json.dumps(value)``, the JSON column's text as SQLAlchemy writes it by default,
    byte for byte, written by json.dumps's C encoder made once (:data:`_JSON_TEXT`)."""
    return _JSON_TEXT(value)


_TIMES_REMEMBERED = 1_024
"""Most UTC times whose bound form a bulk insert's time column keeps (an import's rows
share their creation instant, and their windows fall on a few days)."""


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` (a time column's bind processor) remembering what it made of UTC times:
    the same instant in another zone is written differently (SQLite keeps the wall time)."""
    made: dict[datetime.datetime, Any] = {}

    def remembered(value: Any) -> Any:
        if type(value) is not datetime.datetime or value.tzinfo is not datetime.UTC:
            return process(value)
        bound = made.get(value)
        if bound is None:
            bound = process(value)
            if len(made) < _TIMES_REMEMBERED:
                made[value] = bound
        return bound

    return remembered


_NOTHING = object()
"""No value yet (:meth:`_BulkInsert.parameters`)."""


def _binds_alike(before: Any, column_type: Any) -> bool:
    """Whether a column of ``column_type`` binds a value as the column before it (of type
    ``before``) does: two JSON columns of one kind and the same null handling."""
    return (
        isinstance(before, JSON)
        and type(before) is type(column_type)
        and before.none_as_null == column_type.none_as_null
    )


class _BulkInsert:
    """A table's INSERT of given columns as the database driver runs it (its SQL and
    parameter order compiled by SQLAlchemy for the dialect), and rows turned into its
    parameters by the columns' own bind processors (JSON text, SQLite time text): an
    import makes them in its worker process, so that storing is the driver's executemany
    alone, without SQLAlchemy's per-row work."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(columns))
        self.sql = compiled.string
        names = compiled.positiontup
        assert names is not None and set(names) == set(columns)
        self._names = tuple(names)
        steps: list[tuple[str, Callable[[Any], Any] | None, bool]] = []
        before: Any = None
        for name in names:
            column_type = table.c[name].type
            process: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
            if process is not None and isinstance(column_type, DateTime):
                process = _remembering(process)
            steps.append((name, process, _binds_alike(before, column_type)))
            before = column_type
        self._steps = tuple(steps)

    def parameters(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """``row`` (column → value) as this statement's parameters. A value that is the
        very object of the column before, bound alike (a record's public and authority
        JSON, one object when they are equal: all but a natural person's), is bound once."""
        bound: list[Any] = []
        last: Any = _NOTHING
        last_bound: Any = None
        for name, process, alike in self._steps:
            value = row[name]
            if process is not None:
                if alike and value is last:
                    value = last_bound
                else:
                    last = value
                    value = last_bound = process(value)
            bound.append(value)
        return tuple(bound)

    def run(self, session: Session, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (made by :meth:`parameters`) in ``session``'s transaction."""
        if rows:
            session.connection().exec_driver_sql(self.sql, rows)


@dataclass(frozen=True)
class _Inserts:
    records: _BulkInsert
    versions: _BulkInsert
    events: _BulkInsert


_VERSION_COLUMNS = ("record_id", "version", "content_hash", "fields_root", "created_at")


@functools.lru_cache(maxsize=4)
def bulk_inserts(database: str) -> _Inserts:
    """The bulk inserts for a database kind (``sqlite+pysqlite``, ``postgresql+psycopg``),
    with positional parameters."""
    url = make_url(f"{database}://")
    positional = "qmark" if url.get_backend_name() == "sqlite" else "format"
    # The JSON columns' text (where the driver takes text: SQLite) as json.dumps writes it.
    dialect = cast(Any, url.get_dialect())(paramstyle=positional, json_serializer=json_text)
    records = cast(Table, CreditRecordRow.__table__)
    events = cast(Table, CreditEventRow.__table__)
    return _Inserts(
        _BulkInsert(records, [column.name for column in records.columns], dialect),
        _BulkInsert(cast(Table, CreditRecordVersion.__table__), _VERSION_COLUMNS, dialect),
        _BulkInsert(
            events, [column.name for column in events.columns if column.name != "seq"], dialect
        ),
    )


def database_kind(session: Session) -> str:
    """The dialect and driver of ``session``'s database, as :class:`RecordPreparer` takes
    them (``sqlite+pysqlite``)."""
    dialect = session.get_bind().dialect
    return f"{dialect.name}+{dialect.driver}"


class PreparedRecord(NamedTuple):
    """A record made ready for storing, with nothing read from the database: its row as a
    new record (version 1), its first version and its publication event, as the driver's
    parameters. Made in an import's worker process (:mod:`credit.importing.workers`) while
    the rows before are stored; :func:`registry.credit.store.store_prepared` then stores
    what applies."""

    identity: str
    """The record's identity, hex."""
    content_hash: str
    """:func:`credit.records.content_hash` of the record, hex."""
    record: CreditRecord
    """The record (a correction is prepared again from it, against the row on file)."""
    row: tuple[Any, ...]
    """Its ``credit_records`` row as a new record."""
    version: tuple[Any, ...]
    """Its first ``credit_record_versions`` row."""
    event: tuple[Any, ...]
    """Its ``publish`` (or ``list_entry``) event."""
    membership: dict[str, Any] | None
    """Its list membership row, for a list entry."""


@dataclass(frozen=True)
class RecordPreparer:
    """Prepares records for one publisher at one instant (:meth:`prepare`), here or in an
    import's worker process: it holds the keys, rule set, instant, department key and kind
    of database it needs, and no database object."""

    signer: Signer
    """The publishing department."""
    keys: CreditKeys
    """The registry's credit keys (salts and subject keys)."""
    rules: RuleSet
    """The rule set in force for windows."""
    now: datetime.datetime
    """The instant of the events (timezone-aware)."""
    database: str
    """The database's dialect and driver (:func:`database_kind`)."""

    @classmethod
    def of(cls, publisher: Publisher, database: str) -> RecordPreparer:
        """The preparer of ``publisher``'s records for a ``database``."""
        client = publisher.client
        signer = Signer(client.id, client.public_key)
        return cls(signer, publisher.keys, publisher.rules, publisher.now, database)

    def columns(self, record: CreditRecord, identity_bytes: Hash32) -> dict[str, Any]:
        """``record``'s ``credit_records`` row as a new record (of identity
        ``identity_bytes``): its field hashes under their salts, fields root, content hash
        and window."""
        kind = record_kind(record)
        fields = record_fields(record)
        hashes = text_field_hashes_under(fields, self.keys.salt_context(identity_bytes))
        subject = record.subject
        now = self.now.astimezone(datetime.UTC)
        authority = _authority_fields(fields)
        public = public_fields(record, fields)
        if public == authority:
            # One object (never changed afterwards): its JSON is written and sent once.
            public = authority
        return {
            "id": identity_bytes.hex(),
            "kind": kind.value,
            "authority_uscc": record.natural_key.authority_uscc,
            "decision_number": record.natural_key.decision_number,
            "client_id": self.signer.id,
            "stopped_at": None,
            "withdrawn": False,
            "created_at": now,
            "subject_key": self.keys.subject_key(subject_identifier(subject)),
            "subject_name": subject.display_name()[:200],
            "subject_code": subject.display_identifier(),
            "subject_category": subject.category.value,
            "version": 1,
            "content_hash": content_hash_of(kind, fields).hex(),
            "public_json": public,
            "authority_json": authority,
            "field_hashes": {name: value.hex() for name, value in hashes.items()},
            "fields_root": fields_root_of(hashes).hex(),
            "rule_set_hash": self.rules.content_hash.hex(),
            "commitment_status": (
                record.status.value if isinstance(record, CreditCommitment) else None
            ),
            "updated_at": now,
            **_window_columns(window_of(record, self.rules), None),
        }

    def prepare(self, record: CreditRecord, identity_bytes: Hash32) -> PreparedRecord:
        """``record`` (of identity ``identity_bytes``) ready to store as a new record."""
        row = self.columns(record, identity_bytes)
        identity = row["id"]
        entry = isinstance(record, ListEntry)
        event = event_values(
            client=self.signer,
            kind=(LifecycleEventKind.LIST_ENTRY if entry else LifecycleEventKind.PUBLISH).value,
            digest=bytes.fromhex(row["fields_root"]),
            at=row["created_at"],
            record_id=identity,
            version=1,
            rule_set_hash=row["rule_set_hash"],
        )
        membership = None
        if isinstance(record, ListEntry):
            membership = _membership(identity, row["subject_key"], record)
        inserts = bulk_inserts(self.database)
        return PreparedRecord(
            identity,
            row["content_hash"],
            record,
            inserts.records.parameters(row),
            inserts.versions.parameters({**row, "record_id": identity}),
            inserts.events.parameters(event),
            membership,
        )

    def __call__(self, rows: Sequence[ImportedRow]) -> list[PreparedRecord]:
        """:meth:`prepare` of each validated row of an import (see
        :func:`credit.importing.import_file`'s ``prepare``)."""
        return [self.prepare(row.record, row.record_id) for row in rows]
