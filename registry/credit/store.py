"""Publishing and correcting credit records in the database, with their windows, history
and lifecycle events (the events wait for the department's signature, see
:mod:`registry.credit.events`).

A record is keyed by its identity (kind + authority USCC + decision number). Storing the
same content again changes nothing; different content under the same key is a correction:
a new version in ``credit_record_versions`` (the old one stays), and a ``correct`` event
naming the fields that changed. A record's fields are stored once: in its row while
current, copied into its version's row when a correction supersedes that version. Field
salts depend on the record and the field name only (:mod:`registry.credit.keys`), so a
field that did not change keeps its hash, and the changed fields are those whose hash
changed.

Time is a parameter (``Publisher.now``): nothing here reads a clock.
"""

from __future__ import annotations

import datetime
import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Dialect, Table, bindparam, make_url, select, update
from sqlalchemy.orm import Session

from chain.primitives import Hash32
from credit.display import MASKED_IDENTIFIER_FIELDS, public_fields
from credit.field_hashes import content_hash_of, fields_root_of, text_field_hashes
from credit.importing import ImportedRow
from credit.records import (
    CreditCommitment,
    CreditRecord,
    LicensingRecord,
    LifecycleEventKind,
    ListEntry,
    PenaltyRecord,
    record_fields,
    record_id,
    record_kind,
)
from credit.rulesets import RuleSet
from credit.subjects import mask_identifier
from credit.windows import Window, licensing_window, penalty_window
from registry.credit.events import RULE_SET, event_values
from registry.credit.keys import CreditKeys, subject_identifier
from registry.credit.models import (
    CreditEventRow,
    CreditListMembership,
    CreditRecordRow,
    CreditRecordVersion,
    CreditRuleSetRow,
)
from registry.errors import Forbidden, InvalidInput
from registry.models import Client

__all__ = [
    "CREDIT_OFFICE_ROLE",
    "CREDIT_ROLE",
    "LOOKUP_CHUNK",
    "PreparedRecord",
    "Publisher",
    "RecordPreparer",
    "Signer",
    "StoreOutcome",
    "as_aware",
    "database_kind",
    "display_end",
    "require_authority",
    "store_prepared",
    "store_records",
    "supersede",
    "superseded_fields",
    "utc",
    "window_of",
]

CREDIT_ROLE = "credit"
"""The client role of a department that publishes credit records."""

CREDIT_OFFICE_ROLE = "credit_office"
"""The client role of the credit office (信用办), which publishes, corrects and decides
repairs for any authority (it collects the departments' data)."""

LOOKUP_CHUNK = 500
"""Record identities looked up per query."""


class StoreOutcome(enum.StrEnum):
    """What storing one record did."""

    PUBLISHED = "published"
    """A new record, version 1."""
    CORRECTED = "corrected"
    """A new version of a record on file."""
    UNCHANGED = "unchanged"
    """The content was on file already: nothing changed."""


@dataclass(frozen=True)
class Publisher:
    """Who stores, under which rule set, at which instant."""

    client: Client
    """The department client (its key signs the events)."""
    keys: CreditKeys
    """The registry's credit keys."""
    rules: RuleSet
    """The rule set in force for windows."""
    now: datetime.datetime
    """The instant of the events (timezone-aware)."""


def as_aware(moment: datetime.datetime) -> datetime.datetime:
    """A stored time with its zone (SQLite hands back UTC times without it)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    """``moment`` in UTC, as every time the registry stores is (SQLite keeps no zone)."""
    return None if moment is None else moment.astimezone(datetime.UTC)


def require_authority(client: Client, authority_uscc: str, data_source_uscc: str | None) -> None:
    """Return if ``client`` may publish or act for ``authority_uscc``: it is that authority,
    or the data source that delivers its data, or the credit office. Raises Forbidden."""
    if CREDIT_OFFICE_ROLE in client.roles:
        return
    if CREDIT_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not publish credit records", code="not_credit")
    if client.uscc not in (authority_uscc, data_source_uscc):
        raise Forbidden(
            f"client {client.id} ({client.uscc}) may not publish for authority {authority_uscc}",
            code="not_the_authority",
        )


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


def _ensure_rule_set(session: Session, publisher: Publisher) -> str:
    rules = publisher.rules
    rule_hash = rules.content_hash.hex()
    if session.get(CreditRuleSetRow, rule_hash) is None:
        session.add(
            CreditRuleSetRow(
                hash=rule_hash,
                rule_set_id=rules.id,
                version=rules.version,
                title=rules.title,
                source=rules.source,
                created_at=utc(publisher.now),
            )
        )
        session.flush()
        event = event_values(
            client=publisher.client,
            kind=RULE_SET,
            digest=rules.content_hash,
            at=publisher.now.astimezone(datetime.UTC),
            rule_set_hash=rule_hash,
            reason=f"{rules.id} v{rules.version}",
        )
        session.execute(cast(Table, CreditEventRow.__table__).insert(), [event])
    return rule_hash


@dataclass
class _Rows:
    records: list[tuple[Any, ...]]
    versions: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    memberships: list[dict[str, Any]]
    superseded: list[dict[str, Any]]


_SUPERSEDE = (
    update(cast(Table, CreditRecordVersion.__table__))
    .where(
        CreditRecordVersion.record_id == bindparam("superseded_id"),
        CreditRecordVersion.version == bindparam("superseded_version"),
    )
    .values(
        {
            name: bindparam(f"superseded_{name}", type_=CreditRecordVersion.__table__.c[name].type)
            for name in ("public_json", "authority_json", "field_hashes")
        }
    )
)
"""Fills a version's row with its fields when a new version supersedes it."""


def superseded_fields(row: CreditRecordRow) -> dict[str, Any]:
    """The parameters of :data:`_SUPERSEDE` for ``row``'s current version, read before the
    row takes its next version's values."""
    return {
        "superseded_id": row.id,
        "superseded_version": row.version,
        "superseded_public_json": row.public_json,
        "superseded_authority_json": row.authority_json,
        "superseded_field_hashes": row.field_hashes,
    }


def supersede(session: Session, versions: Sequence[dict[str, Any]]) -> None:
    """Keep the fields of each version in ``versions`` (:func:`superseded_fields`) in its
    own row, as its record moves on to a new version."""
    if versions:
        session.execute(_SUPERSEDE, list(versions))


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


_RECORD_OWN_COLUMNS = frozenset(
    {
        "id",
        "kind",
        "authority_uscc",
        "decision_number",
        "client_id",
        "stopped_at",
        "withdrawn",
        "created_at",
    }
)
"""The columns of a record's row that are the record's own: the others belong to its
current version, and a correction overwrites them."""


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
        self._processors = tuple(
            table.c[name].type._cached_bind_processor(dialect) for name in names
        )

    def parameters(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """``row`` (column → value) as this statement's parameters."""
        return tuple(
            row[name] if process is None else process(row[name])
            for name, process in zip(self._names, self._processors, strict=True)
        )

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
def _inserts(database: str) -> _Inserts:
    """The bulk inserts for a database kind (``sqlite+pysqlite``, ``postgresql+psycopg``),
    with positional parameters."""
    url = make_url(f"{database}://")
    positional = "qmark" if url.get_backend_name() == "sqlite" else "format"
    dialect = cast(Any, url.get_dialect())(paramstyle=positional)
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
    the rows before are stored; :func:`store_prepared` then stores what applies."""

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
        hashes = text_field_hashes(fields, self.keys.salts(identity_bytes))
        subject = record.subject
        now = self.now.astimezone(datetime.UTC)
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
            "public_json": public_fields(record, fields),
            "authority_json": _authority_fields(fields),
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
        inserts = _inserts(self.database)
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


def _store_one(
    preparer: RecordPreparer,
    publisher: Publisher,
    prepared: PreparedRecord,
    existing: CreditRecordRow | None,
    rows: _Rows,
) -> StoreOutcome:
    if existing is not None and existing.content_hash == prepared.content_hash:
        return StoreOutcome.UNCHANGED
    if existing is None:
        rows.records.append(prepared.row)
        rows.versions.append(prepared.version)
        rows.events.append(prepared.event)
        if prepared.membership is not None:
            rows.memberships.append(prepared.membership)
        return StoreOutcome.PUBLISHED
    # A correction (rare in an import): the row's values again, as Python values.
    new = preparer.columns(prepared.record, Hash32(bytes.fromhex(prepared.identity)))
    version = existing.version + 1
    hashes: dict[str, str] = new["field_hashes"]
    changed = sorted(
        name
        for name in set(hashes) | set(existing.field_hashes)
        if hashes.get(name) != existing.field_hashes.get(name)
    )
    columns = {name: value for name, value in new.items() if name not in _RECORD_OWN_COLUMNS}
    columns["version"] = version
    columns["display_end"] = display_end(new["maximum_end"], existing.stopped_at)
    rows.superseded.append(superseded_fields(existing))
    for name, value in columns.items():
        setattr(existing, name, value)
    inserts = _inserts(preparer.database)
    rows.versions.append(
        inserts.versions.parameters(
            {**columns, "record_id": prepared.identity, "created_at": new["created_at"]}
        )
    )
    event = event_values(
        client=publisher.client,
        kind=LifecycleEventKind.CORRECT.value,
        digest=bytes.fromhex(new["fields_root"]),
        at=new["created_at"],
        record_id=prepared.identity,
        version=version,
        rule_set_hash=new["rule_set_hash"],
        changed_fields=tuple(changed),
        reason="corrected by the publishing authority",
    )
    rows.events.append(inserts.events.parameters(event))
    return StoreOutcome.CORRECTED


def existing_rows(session: Session, identities: Sequence[str]) -> dict[str, CreditRecordRow]:
    """The stored records among ``identities`` (hex), by identity."""
    found: dict[str, CreditRecordRow] = {}
    for start in range(0, len(identities), LOOKUP_CHUNK):
        chunk = identities[start : start + LOOKUP_CHUNK]
        for row in session.scalars(select(CreditRecordRow).where(CreditRecordRow.id.in_(chunk))):
            found[row.id] = row
    return found


def store_records(
    session: Session,
    publisher: Publisher,
    records: Sequence[CreditRecord],
    identities: Sequence[Hash32] | None = None,
) -> list[StoreOutcome]:
    """Publish or correct each of ``records`` in ``session`` (one outcome per record, in
    order); nothing for content already on file. ``identities``, when given, are the
    records' :func:`credit.records.record_id` as the importing engine computed them
    (checked here at no cost only by the database's key). The caller checks the publisher
    may act for each record's authority (:func:`require_authority`) and commits the
    session."""
    if identities is None:
        identities = [record_id(record_kind(record), record.natural_key) for record in records]
    elif len(identities) != len(records):
        raise ValueError("one identity per record")
    preparer = RecordPreparer.of(publisher, database_kind(session))
    prepared = [
        preparer.prepare(record, identity)
        for record, identity in zip(records, identities, strict=True)
    ]
    return store_prepared(session, publisher, prepared)


def store_prepared(
    session: Session, publisher: Publisher, prepared: Sequence[PreparedRecord]
) -> list[StoreOutcome]:
    """Publish or correct each record of ``prepared`` (made by :class:`RecordPreparer` for
    ``publisher`` and ``session``'s kind of database) in ``session``, as
    :func:`store_records` does."""
    hex_ids = [record.identity for record in prepared]
    if len(set(hex_ids)) != len(hex_ids):
        raise InvalidInput(
            "two records share a kind, authority and decision number", code="duplicate_key"
        )
    preparer = RecordPreparer.of(publisher, database_kind(session))
    _ensure_rule_set(session, publisher)
    known = existing_rows(session, hex_ids)
    rows = _Rows([], [], [], [], [])
    outcomes = [
        _store_one(preparer, publisher, record, known.get(record.identity), rows)
        for record in prepared
    ]
    inserts = _inserts(preparer.database)
    session.flush()
    inserts.records.run(session, rows.records)
    supersede(session, rows.superseded)
    inserts.versions.run(session, rows.versions)
    if rows.memberships:
        session.execute(cast(Table, CreditListMembership.__table__).insert(), rows.memberships)
    inserts.events.run(session, rows.events)
    return outcomes
