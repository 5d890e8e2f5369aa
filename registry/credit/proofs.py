"""Proof bundles of credit records: a record's latest anchored event is a notarized record
of the shared pipeline, so its bundle is the one :mod:`registry.record_bundles` builds and
:func:`sdk.bundle.verify_bundle` verifies offline (the department's signature over the
event's commitment included). The event's digest is the fields root of the record version
it concerns, so the bundle also proves any field a subject discloses with its salt
(:func:`credit.commitments.verify_opening`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from registry.chain_gateway import ChainGateway
from registry.credit.events import SIGNED
from registry.credit.models import CreditEventRow
from registry.db import Database
from registry.models import Batch, Record, RecordStatus
from registry.record_bundles import VerifyCaches, bundle_for, bundle_json

__all__ = ["AnchoredEvent", "record_bundles"]

AnchoredEvent = dict[str, Any]
"""``{"event_id", "kind", "version", "notary_record_id", "bundle"}`` (bundle JSON)."""


def _latest_anchored(
    db: Database, record_ids: Sequence[str]
) -> dict[str, tuple[str, str, int | None, Record, Batch]]:
    found: dict[str, tuple[str, str, int | None, Record, Batch]] = {}
    if not record_ids:
        return found
    with db.read_session() as session:
        rows = session.execute(
            select(
                CreditEventRow.record_id,
                CreditEventRow.id,
                CreditEventRow.kind,
                CreditEventRow.version,
                Record,
                Batch,
            )
            .join(Record, Record.id == CreditEventRow.notary_record_id)
            .join(Batch, Batch.id == Record.batch_id)
            .where(
                CreditEventRow.record_id.in_(list(record_ids)),
                CreditEventRow.state == SIGNED,
                Record.status == RecordStatus.ANCHORED.value,
            )
            .order_by(CreditEventRow.seq)
        ).all()
    for record_id, event_id, kind, version, record, batch in rows:
        found[str(record_id)] = (event_id, kind, version, record, batch)
    return found


def record_bundles(
    db: Database, gateway: ChainGateway, caches: VerifyCaches, record_ids: Sequence[str]
) -> dict[str, AnchoredEvent | None]:
    """For each record id: its latest anchored event with that event's proof bundle, or
    None while no event of it is anchored (or the node cannot provide the chain half)."""
    latest = _latest_anchored(db, record_ids)
    answers: dict[str, AnchoredEvent | None] = {}
    for record_id in record_ids:
        found = latest.get(record_id)
        if found is None:
            answers[record_id] = None
            continue
        event_id, kind, version, record, batch = found
        bundle = bundle_for(db, gateway, caches, record, batch)
        answers[record_id] = (
            None
            if bundle is None
            else {
                "event_id": event_id,
                "kind": kind,
                "version": version,
                "notary_record_id": record.id,
                "bundle": bundle_json(caches, batch, bundle),
            }
        )
    return answers
