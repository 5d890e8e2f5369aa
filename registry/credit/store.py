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
changed. A record's rows are made, without reading the database, by
:mod:`registry.credit.record_rows` (re-exported here).

Time is a parameter (``Publisher.now``): nothing here reads a clock.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from chain.primitives import Hash32
from credit.records import (
    CreditRecord,
    LifecycleEventKind,
    record_id,
    record_kind,
)
from credit.rulesets import RuleSet
from registry.credit.events import RULE_SET, event_values
from registry.credit.keys import CreditKeys
from registry.credit.models import (
    CreditEventRow,
    CreditListMembership,
    CreditRecordRow,
    CreditRecordVersion,
    CreditRuleSetRow,
)
from registry.credit.record_rows import (
    PreparedRecord,
    RecordPreparer,
    Signer,
    as_aware,
    bulk_inserts,
    database_kind,
    display_end,
    utc,
    window_of,
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
    inserts = bulk_inserts(preparer.database)
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


def stored_content_hashes(session: Session, identities: Sequence[str]) -> dict[str, str]:
    """The content hash of each stored record among ``identities`` (hex), by identity: two
    columns, without an ORM object per row (a re-imported record that did not change needs
    no more)."""
    found: dict[str, str] = {}
    for start in range(0, len(identities), LOOKUP_CHUNK):
        chunk = identities[start : start + LOOKUP_CHUNK]
        query = select(CreditRecordRow.id, CreditRecordRow.content_hash).where(
            CreditRecordRow.id.in_(chunk)
        )
        found.update((identity, hashed) for identity, hashed in session.execute(query))
    return found


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
    stored = stored_content_hashes(session, hex_ids)
    # Rows are loaded only for the records corrected.
    known = existing_rows(
        session,
        [
            record.identity
            for record in prepared
            if stored.get(record.identity, record.content_hash) != record.content_hash
        ],
    )
    rows = _Rows([], [], [], [], [])
    outcomes = [
        StoreOutcome.UNCHANGED
        if stored.get(record.identity) == record.content_hash
        else _store_one(preparer, publisher, record, known.get(record.identity), rows)
        for record in prepared
    ]
    inserts = bulk_inserts(preparer.database)
    session.flush()
    inserts.records.run(session, rows.records)
    supersede(session, rows.superseded)
    inserts.versions.run(session, rows.versions)
    if rows.memberships:
        session.execute(cast(Table, CreditListMembership.__table__).insert(), rows.memberships)
    inserts.events.run(session, rows.events)
    return outcomes
