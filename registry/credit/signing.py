"""The department's signatures over its credit events, and their hand-over to the shared
anchoring pipeline: a signed event becomes a version 2 notarized record (digest, metadata
and salt of the event; no fields), checked and stored by :mod:`registry.notarization` and
:mod:`registry.intake` exactly like a record a department notarizes itself, then sealed
and anchored by the batcher.

A department signs its events one by one (:func:`signed_event_records`), or a list of them
at once (:func:`root_signed_event_records`): one SM2 signature over the SM3 Merkle root of
their commitments in the listed order — the scheme of a bulk notarization signed once
(:func:`sdk.bundle_links.department_root_sign_bytes`) — and each event's record keeps that
signature with its path to the root, so its bundle verifies offline as any other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select, update

from registry.credit.events import AWAITING_SIGNATURE, SIGNED
from registry.credit.models import CreditEventRow
from registry.db import Database
from registry.errors import Conflict, InvalidInput, NotFound
from registry.intake import NewRecord
from registry.models import Client
from registry.notarization import prepare_record, prepare_records
from registry.record_schemas import SignedRecordCreate

__all__ = [
    "MAX_ROOT_EVENTS",
    "MAX_SIGNATURES",
    "PendingEvent",
    "event_idempotency_key",
    "mark_signed",
    "pending_events",
    "root_signed_event_records",
    "signed_event_records",
]

MAX_SIGNATURES = 1_000
"""Most event signatures in one request."""

MAX_ROOT_EVENTS = 100_000
"""Most events one signature over their Merkle root covers (a request of that many ids
stays under the default body limit)."""

ROW_CHUNK = 2_000
"""Event ids looked up per query (bound parameters stay well under SQLite's limit)."""

ROOT_REQUEST_KEY = "credit-events"
"""The key :func:`registry.notarization.prepare_records` derives record keys from; each
event's record is then stored under its own :func:`event_idempotency_key` instead."""


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


def pending_events(
    db: Database, client: Client, *, limit: int, after: str | None = None
) -> list[PendingEvent]:
    """The oldest ``limit`` events of ``client`` waiting for its signature (after the
    event ``after``, when given: the next page). Raises NotFound for an ``after`` that is
    no event of the client."""
    with db.read_session() as session:
        query = select(CreditEventRow).where(
            CreditEventRow.client_id == client.id,
            CreditEventRow.state == AWAITING_SIGNATURE,
        )
        if after is not None:
            seq = session.scalar(
                select(CreditEventRow.seq).where(
                    CreditEventRow.id == after, CreditEventRow.client_id == client.id
                )
            )
            if seq is None:
                raise NotFound(f"no credit event {after} of this client", code="event_not_found")
            query = query.where(CreditEventRow.seq > seq)
        rows = session.scalars(query.order_by(CreditEventRow.seq).limit(limit))
        return [PendingEvent(row.id, row.kind, row.record_id, row.commitment) for row in rows]


def _event_rows(db: Database, event_ids: Sequence[str]) -> dict[str, CreditEventRow]:
    ids = list(event_ids)
    rows: dict[str, CreditEventRow] = {}
    with db.read_session() as session:
        for start in range(0, len(ids), ROW_CHUNK):
            chunk = ids[start : start + ROW_CHUNK]
            for row in session.scalars(select(CreditEventRow).where(CreditEventRow.id.in_(chunk))):
                rows[row.id] = row
    return rows


def _awaiting(rows: Mapping[str, CreditEventRow], event_id: str, client: Client) -> CreditEventRow:
    row = rows.get(event_id)
    if row is None or row.client_id != client.id:
        raise NotFound(f"no credit event {event_id} of this client", code="event_not_found")
    if row.state != AWAITING_SIGNATURE:
        raise Conflict(f"credit event {event_id} is signed already", code="event_signed")
    return row


def _payload(row: CreditEventRow, signature: str | None) -> SignedRecordCreate:
    return SignedRecordCreate(
        digest=row.digest,
        metadata=row.metadata_json,
        metadata_salt=row.metadata_salt,
        department_signature=signature,
    )


def signed_event_records(
    db: Database, client: Client, signatures: Mapping[str, str], chain_id: int
) -> list[tuple[str, NewRecord]]:
    """Each signed event as the notarized record to store (event id, record), its
    department signature checked against the event's commitment on ``chain_id``. Raises
    NotFound (an event of another client, or none), Conflict (signed already),
    InvalidInput (``bad_department_signature``, too many)."""
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise InvalidInput(f"give 1 to {MAX_SIGNATURES} signatures", code="bad_signatures")
    rows = _event_rows(db, list(signatures))
    prepared: list[tuple[str, NewRecord]] = []
    for event_id, signature in signatures.items():
        row = _awaiting(rows, event_id, client)
        payload = _payload(row, signature)
        record = prepare_record(client, payload, event_idempotency_key(event_id), chain_id)
        if record.values["commitment"] != row.commitment:
            raise InvalidInput("the event's commitment changed", code="event_changed")
        prepared.append((event_id, record))
    return prepared


def root_signed_event_records(
    db: Database,
    client: Client,
    event_ids: Sequence[str],
    department_signature: str,
    chain_id: int,
) -> list[tuple[str, NewRecord]]:
    """The events ``event_ids`` signed at once, as the notarized records to store (event
    id, record), in the listed order: ``department_signature`` (base64 DER) must be the
    client key's over :func:`sdk.bundle_links.department_root_sign_bytes` of the SM3 Merkle
    root of the events' commitments in that order, on ``chain_id``; each record carries it
    with its path to the root. One SM2 verification for the whole list. Raises NotFound,
    Conflict (an event signed already), InvalidInput (``bad_department_signature``, an
    event listed twice, too many)."""
    if not 1 <= len(event_ids) <= MAX_ROOT_EVENTS:
        raise InvalidInput(f"list 1 to {MAX_ROOT_EVENTS} events", code="bad_signatures")
    if len(set(event_ids)) != len(event_ids):
        raise InvalidInput("an event is listed twice", code="bad_signatures")
    rows = _event_rows(db, event_ids)
    ordered = [_awaiting(rows, event_id, client) for event_id in event_ids]
    records = prepare_records(
        client,
        [_payload(row, None) for row in ordered],
        ROOT_REQUEST_KEY,
        chain_id,
        request_signature=department_signature,
    )
    prepared: list[tuple[str, NewRecord]] = []
    for row, record in zip(ordered, records, strict=True):
        if record.values["commitment"] != row.commitment:
            raise InvalidInput("the event's commitment changed", code="event_changed")
        # Stored under the event's own key, and told apart from another request by its
        # commitment: a retry after a lost answer finds the record, whatever else the
        # retried list holds.
        record.values["idempotency_key"] = event_idempotency_key(row.id)
        record.values["request_hash"] = row.commitment
        prepared.append((row.id, record))
    return prepared


def mark_signed(db: Database, notarized: Mapping[str, str]) -> None:
    """Record that each event (id → notarized record id) is signed and in the pipeline."""
    if not notarized:
        return
    table = cast(Table, CreditEventRow.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("event_id"))
        .values(state=SIGNED, notary_record_id=bindparam("notary_id"))
    )
    with db.session() as session:
        session.execute(
            statement,
            [{"event_id": event, "notary_id": record} for event, record in notarized.items()],
        )
