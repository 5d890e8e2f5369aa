"""Proof bundles of credit records: a record's latest anchored event is a notarized record
of the shared pipeline, so its bundle is the one :mod:`registry.record_bundles` builds and
:func:`sdk.bundle.verify_bundle` verifies offline (the department's signature over the
event's commitment included). The event's digest is the fields root of the record version
it concerns, so the bundle also proves any field a subject discloses with its salt
(:func:`credit.commitments.verify_opening`).

A check asks for its reasons' records each time. Which event of a record is its latest
anchored one is kept per registry process under the credit version it was read at, when
that event is the record's newest event: a newer event makes a credit event (a new
version), and anchoring is final, so under the same version the answer stays the same. A
record whose newest event is not anchored yet is read again every time (its anchoring makes
no credit event). As for the kept list entries (:mod:`registry.credit.check_entries`), only
on SQLite, where credit events commit in the order of their numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select

from registry.caches import KeptPerOwner, LruCache
from registry.chain_gateway import ChainGateway
from registry.credit.credit_version import read_credit_version
from registry.credit.events import SIGNED
from registry.credit.models import CreditEventRow
from registry.db import Database
from registry.models import Batch, Record, RecordStatus
from registry.record_bundles import VerifyCaches, bundle_for, bundle_json

__all__ = ["KEPT_LATEST", "AnchoredEvent", "anchored_event", "kept_latest", "record_bundles"]

AnchoredEvent = dict[str, Any]
"""``{"event_id", "kind", "version", "notary_record_id", "bundle"}`` (bundle JSON)."""

Latest = tuple[str, str, int | None, str]
"""A record's latest anchored event: its id, kind and version, and its notarized record."""


def anchored_event(latest: Latest, bundle: Any) -> AnchoredEvent:
    """What a check answers for a record: its latest anchored event ``latest`` with the
    bundle JSON of its notarized record."""
    event_id, kind, version, notary_id = latest
    return {
        "event_id": event_id,
        "kind": kind,
        "version": version,
        "notary_record_id": notary_id,
        "bundle": bundle,
    }


KEPT_LATEST = 16_384
"""Most records' latest anchored events kept per database per process (a few ids each)."""

_EVENTS = (
    select(
        CreditEventRow.record_id,
        CreditEventRow.id,
        CreditEventRow.kind,
        CreditEventRow.version,
        CreditEventRow.notary_record_id,
        CreditEventRow.state,
    )
    .where(CreditEventRow.record_id.in_(bindparam("record_ids", expanding=True)))
    .order_by(CreditEventRow.seq)
)
"""The events of some credit records, in their order."""

_NOTARIZED = select(Record.id, Record.status, Record.batch_id).where(
    Record.id.in_(bindparam("notary_ids", expanding=True))
)
"""The status and batch of some notarized records."""


_KEPT: KeptPerOwner[tuple[str, int], Latest] = KeptPerOwner(KEPT_LATEST)


def kept_latest(db: Database) -> LruCache[tuple[str, int], Latest]:
    """The latest anchored events kept for ``db`` in this process: (record id, credit
    version) → the event."""
    return _KEPT.of(db)


def _latest_anchored(
    db: Database, record_ids: Sequence[str], credit_version: int | None = None
) -> dict[str, Latest]:
    """Credit record id → its latest signed event whose notarized record is anchored: the
    event's id, kind and version, and the notarized record's id. Kept ones when
    ``credit_version`` (the version the caller read) is given and they were kept under it
    (SQLite); the others read in one read transaction on a connection, through statements
    built once."""
    found: dict[str, Latest] = {}
    if not record_ids:
        return found
    # Without the caller's version nothing kept can answer: nothing is kept either.
    kept = kept_latest(db) if db.is_sqlite and credit_version is not None else None
    missing = list(record_ids)
    if kept is not None and credit_version is not None:
        missing = []
        for record_id in record_ids:
            latest = kept.get((record_id, credit_version))
            if latest is None:
                missing.append(record_id)
            else:
                found[record_id] = latest
        if not missing:
            return found
    # Two lookups by key rather than one join: joined, the planner walked every anchored
    # record (through the status index; each logged check adds one) to find a few events.
    with db.read_connection() as connection:
        read_at = None if kept is None else read_credit_version(connection)
        events = connection.execute(_EVENTS, {"record_ids": missing}).all()
        notary_ids = sorted(
            {
                str(event.notary_record_id)
                for event in events
                if event.state == SIGNED and event.notary_record_id is not None
            }
        )
        anchored = {
            record_id
            for record_id, status, batch_id in connection.execute(
                _NOTARIZED, {"notary_ids": notary_ids}
            )
            if status == RecordStatus.ANCHORED.value and batch_id is not None
        }
    newest: dict[str, str] = {}
    for owner, event_id, kind, version, notary_id, state in events:
        newest[str(owner)] = str(event_id)
        if state == SIGNED and notary_id is not None and notary_id in anchored:
            found[str(owner)] = (str(event_id), str(kind), version, str(notary_id))
    if kept is not None and read_at is not None:
        for record_id in missing:
            latest = found.get(record_id)
            if latest is not None and newest.get(record_id) == latest[0]:
                kept.put((record_id, read_at), latest)
    return found


def _bundles_json(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, notary_ids: set[str]
) -> dict[str, dict[str, Any] | None]:
    """Notarized record id → its bundle's JSON (None while the node cannot provide the chain
    half): from ``caches`` when both the bundle and its JSON are kept there, the records and
    batches of the others read from the database."""
    answers: dict[str, dict[str, Any] | None] = {}
    missing = []
    for notary_id in notary_ids:
        found = caches.bundle_json.get(notary_id)
        if found is not None and caches.bundles.get(notary_id) is not None:
            answers[notary_id] = found
        else:
            missing.append(notary_id)
    if not missing:
        return answers
    with db.read_session() as session:
        rows = session.execute(
            select(Record, Batch)
            .join(Batch, Batch.id == Record.batch_id)
            .where(Record.id.in_(missing))
        ).all()
    for record, batch in rows:
        bundle = bundle_for(db, gateway, caches, record, batch)
        answers[record.id] = None if bundle is None else bundle_json(caches, batch, bundle)
    return answers


def record_bundles(
    db: Database,
    gateway: ChainGateway,
    caches: VerifyCaches,
    record_ids: Sequence[str],
    credit_version: int | None = None,
) -> dict[str, AnchoredEvent | None]:
    """For each record id: its latest anchored event with that event's proof bundle, or
    None while no event of it is anchored (or the node cannot provide the chain half).
    ``credit_version``, the credit version the caller read (a check's), lets the events
    kept under it answer (see the module's docstring)."""
    latest = _latest_anchored(db, record_ids, credit_version)
    bundles = _bundles_json(db, gateway, caches, {found[3] for found in latest.values()})
    answers: dict[str, AnchoredEvent | None] = {}
    for record_id in record_ids:
        found = latest.get(record_id)
        bundle = None if found is None else bundles.get(found[3])
        if found is None or bundle is None:
            answers[record_id] = None
            continue
        answers[record_id] = anchored_event(found, bundle)
    return answers
