"""Proof bundles of credit records: a record's latest anchored event is a notarized record
of the shared pipeline, so its bundle is the one :mod:`registry.record_bundles` builds and
:func:`sdk.bundle.verify_bundle` verifies offline (the department's signature over the
event's commitment included). The event's digest is the fields root of the record version
it concerns, so the bundle also proves any field a subject discloses with its salt
(:func:`credit.commitments.verify_opening`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select

from registry.chain_gateway import ChainGateway
from registry.credit.events import SIGNED
from registry.credit.models import CreditEventRow
from registry.db import Database
from registry.models import Batch, Record, RecordStatus
from registry.record_bundles import VerifyCaches, bundle_for, bundle_json

__all__ = ["AnchoredEvent", "record_bundles"]

AnchoredEvent = dict[str, Any]
"""``{"event_id", "kind", "version", "notary_record_id", "bundle"}`` (bundle JSON)."""


_SIGNED_EVENTS = (
    select(
        CreditEventRow.record_id,
        CreditEventRow.id,
        CreditEventRow.kind,
        CreditEventRow.version,
        CreditEventRow.notary_record_id,
    )
    .where(
        CreditEventRow.record_id.in_(bindparam("record_ids", expanding=True)),
        CreditEventRow.state == SIGNED,
        CreditEventRow.notary_record_id.is_not(None),
    )
    .order_by(CreditEventRow.seq)
)
"""The signed events with a notarized record of some credit records, in their order."""

_NOTARIZED = select(Record.id, Record.status, Record.batch_id).where(
    Record.id.in_(bindparam("notary_ids", expanding=True))
)
"""The status and batch of some notarized records."""


def _latest_anchored(
    db: Database, record_ids: Sequence[str]
) -> dict[str, tuple[str, str, int | None, str]]:
    """Credit record id → its latest signed event whose notarized record is anchored: the
    event's id, kind and version, and the notarized record's id. Read in one read
    transaction on a connection, through statements built once (a check asks for the
    reasons' records each time)."""
    found: dict[str, tuple[str, str, int | None, str]] = {}
    if not record_ids:
        return found
    # Two lookups by key rather than one join: joined, the planner walked every anchored
    # record (through the status index; each logged check adds one) to find a few events.
    with db.read_connection() as connection:
        events = connection.execute(_SIGNED_EVENTS, {"record_ids": list(record_ids)}).all()
        notary_ids = sorted({str(event.notary_record_id) for event in events})
        anchored = {
            record_id
            for record_id, status, batch_id in connection.execute(
                _NOTARIZED, {"notary_ids": notary_ids}
            )
            if status == RecordStatus.ANCHORED.value and batch_id is not None
        }
    for record_id, event_id, kind, version, notary_id in events:
        if notary_id in anchored:
            found[str(record_id)] = (event_id, kind, version, notary_id)
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
    db: Database, gateway: ChainGateway, caches: VerifyCaches, record_ids: Sequence[str]
) -> dict[str, AnchoredEvent | None]:
    """For each record id: its latest anchored event with that event's proof bundle, or
    None while no event of it is anchored (or the node cannot provide the chain half)."""
    latest = _latest_anchored(db, record_ids)
    bundles = _bundles_json(db, gateway, caches, {found[3] for found in latest.values()})
    answers: dict[str, AnchoredEvent | None] = {}
    for record_id in record_ids:
        found = latest.get(record_id)
        bundle = None if found is None else bundles.get(found[3])
        if found is None or bundle is None:
            answers[record_id] = None
            continue
        event_id, kind, version, notary_id = found
        answers[record_id] = {
            "event_id": event_id,
            "kind": kind,
            "version": version,
            "notary_record_id": notary_id,
            "bundle": bundle,
        }
    return answers
