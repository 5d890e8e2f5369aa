"""The department's signatures over its credit events, and their hand-over to the shared
anchoring pipeline: a signed event becomes a version 2 notarized record (digest, metadata
and salt of the event; no fields), checked and stored by :mod:`registry.notarization` and
:mod:`registry.intake` exactly like a record a department notarizes itself, then sealed
and anchored by the batcher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update

from registry.credit.events import AWAITING_SIGNATURE, SIGNED
from registry.credit.models import CreditEventRow
from registry.db import Database
from registry.errors import Conflict, InvalidInput, NotFound
from registry.intake import NewRecord
from registry.models import Client
from registry.notarization import prepare_record
from registry.record_schemas import SignedRecordCreate

__all__ = [
    "MAX_SIGNATURES",
    "PendingEvent",
    "event_idempotency_key",
    "mark_signed",
    "pending_events",
    "signed_event_records",
]

MAX_SIGNATURES = 1_000
"""Most event signatures in one request."""


@dataclass(frozen=True)
class PendingEvent:
    """An event waiting for the department's signature."""

    id: str
    """The event id."""
    kind: str
    """What happened."""
    record_id: str | None
    """The record it concerns (None for a rule set or an import report)."""
    commitment: str
    """The version 2 commitment (hex) to sign, as for a notarized record."""


def event_idempotency_key(event_id: str) -> str:
    """The Idempotency-Key the event's notarized record is stored under: a retry of the
    signature finds the record stored before."""
    return f"credit-event/{event_id}"


def pending_events(db: Database, client: Client, *, limit: int) -> list[PendingEvent]:
    """The oldest ``limit`` events of ``client`` waiting for its signature."""
    with db.read_session() as session:
        rows = session.scalars(
            select(CreditEventRow)
            .where(
                CreditEventRow.client_id == client.id,
                CreditEventRow.state == AWAITING_SIGNATURE,
            )
            .order_by(CreditEventRow.seq)
            .limit(limit)
        )
        return [PendingEvent(row.id, row.kind, row.record_id, row.commitment) for row in rows]


def signed_event_records(
    db: Database, client: Client, signatures: Mapping[str, str], chain_id: int
) -> list[tuple[str, NewRecord]]:
    """Each signed event as the notarized record to store (event id, record), its
    department signature checked against the event's commitment on ``chain_id``. Raises
    NotFound (an event of another client, or none), Conflict (signed already),
    InvalidInput (``bad_department_signature``, too many)."""
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise InvalidInput(f"give 1 to {MAX_SIGNATURES} signatures", code="bad_signatures")
    with db.read_session() as session:
        rows = {
            row.id: row
            for row in session.scalars(
                select(CreditEventRow).where(CreditEventRow.id.in_(list(signatures)))
            )
        }
    prepared: list[tuple[str, NewRecord]] = []
    for event_id, signature in signatures.items():
        row = rows.get(event_id)
        if row is None or row.client_id != client.id:
            raise NotFound(f"no credit event {event_id} of this client", code="event_not_found")
        if row.state != AWAITING_SIGNATURE:
            raise Conflict(f"credit event {event_id} is signed already", code="event_signed")
        payload = SignedRecordCreate(
            digest=row.digest,
            metadata=row.metadata_json,
            metadata_salt=row.metadata_salt,
            department_signature=signature,
        )
        record = prepare_record(client, payload, event_idempotency_key(event_id), chain_id)
        if record.values["commitment"] != row.commitment:
            raise InvalidInput("the event's commitment changed", code="event_changed")
        prepared.append((event_id, record))
    return prepared


def mark_signed(db: Database, notarized: Mapping[str, str]) -> None:
    """Record that each event (id → notarized record id) is signed and in the pipeline."""
    with db.session() as session:
        for event_id, record_id in notarized.items():
            session.execute(
                update(CreditEventRow)
                .where(CreditEventRow.id == event_id)
                .values(state=SIGNED, notary_record_id=record_id)
            )
