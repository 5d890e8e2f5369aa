"""Lifecycle steps of a record on file, each an event signed by the department: withdraw
(the decision was overturned), stop publishing, list exit, and settling a credit commitment.
Display stops at once where the step says so; the record, its versions and events stay.
Time is a parameter (``Publisher.now``)."""

from __future__ import annotations

import datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from credit.records import CommitmentStatus, LifecycleEventKind, RecordKind
from registry.credit.events import event_values
from registry.credit.models import (
    CreditEventRow,
    CreditListMembership,
    CreditRecordRow,
    CreditRecordVersion,
)
from registry.credit.store import (
    Publisher,
    as_aware,
    display_end,
    require_authority,
    supersede,
    superseded_fields,
    utc,
)
from registry.errors import Conflict, InvalidInput, NotFound
from sdk.commitments import field_hash, fields_root

__all__ = [
    "MAX_REASON",
    "exit_list",
    "load_record",
    "record_event",
    "settle_commitment",
    "stop_publishing",
    "withdraw",
]

MAX_REASON = 2_000
"""Longest reason text."""


def load_record(session: Session, record_id: str) -> CreditRecordRow:
    """The record ``record_id`` (hex identity); raises NotFound."""
    row = session.get(CreditRecordRow, record_id.lower())
    if row is None:
        raise NotFound(f"no credit record {record_id}", code="credit_record_not_found")
    return row


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text or len(text) > MAX_REASON:
        raise InvalidInput(f"give a reason of 1 to {MAX_REASON} characters", code="bad_reason")
    return text


def stop_display_at(row: CreditRecordRow, at: datetime.datetime) -> None:
    """Stop the public display of ``row`` at ``at`` (an earlier stop is kept)."""
    stopped = at if row.stopped_at is None else min(as_aware(row.stopped_at), at)
    row.stopped_at = utc(stopped)
    row.display_end = display_end(row.maximum_end, row.stopped_at)
    row.updated_at = at.astimezone(datetime.UTC)


def record_event(
    session: Session, publisher: Publisher, row: CreditRecordRow, kind: str, reason: str
) -> str:
    """Make an event of ``kind`` on ``row``'s current version at ``publisher.now``, signed
    later by the publisher's key; returns its id."""
    values = event_values(
        client=publisher.client,
        kind=kind,
        digest=bytes.fromhex(row.fields_root),
        at=publisher.now.astimezone(datetime.UTC),
        record_id=row.id,
        version=row.version,
        rule_set_hash=row.rule_set_hash,
        reason=reason,
    )
    session.execute(cast(Table, CreditEventRow.__table__).insert(), [values])
    return str(values["id"])


def _acting(session: Session, publisher: Publisher, record_id: str) -> CreditRecordRow:
    row = load_record(session, record_id)
    require_authority(publisher.client, row.authority_uscc, None)
    return row


def withdraw(session: Session, publisher: Publisher, record_id: str, reason: str) -> str:
    """The decision behind the record was overturned: display stops now, a ``withdraw``
    event is made; returns its id. Raises Conflict if it was withdrawn before."""
    row = _acting(session, publisher, record_id)
    if row.withdrawn:
        raise Conflict("the record is withdrawn already", code="already_withdrawn")
    row.withdrawn = True
    stop_display_at(row, publisher.now)
    text = _reason(reason)
    return record_event(session, publisher, row, LifecycleEventKind.WITHDRAW.value, text)


def stop_publishing(session: Session, publisher: Publisher, record_id: str, reason: str) -> str:
    """The authority stops the record's public display now; returns the event's id.
    Raises Conflict if display had stopped already."""
    row = _acting(session, publisher, record_id)
    end = row.display_end
    if end is not None and as_aware(end) <= publisher.now:
        raise Conflict("the record is not on display", code="not_displayed")
    stop_display_at(row, publisher.now)
    return record_event(
        session, publisher, row, LifecycleEventKind.STOP_PUBLISHING.value, _reason(reason)
    )


def exit_list(
    session: Session,
    publisher: Publisher,
    record_id: str,
    exit_date: datetime.date,
    reason: str,
) -> str:
    """The subject leaves the list of entry ``record_id`` on ``exit_date`` (display of the
    entry stops at that day's start); returns the event's id. Raises
    Conflict for an entry already left, InvalidInput for an exit before the entry."""
    row = _acting(session, publisher, record_id)
    if row.kind != RecordKind.LIST_ENTRY.value:
        raise InvalidInput("the record is not a list entry", code="not_a_list_entry")
    membership = session.get(CreditListMembership, row.id)
    assert membership is not None
    if membership.exit_date is not None:
        raise Conflict("the subject left this list already", code="already_exited")
    if exit_date < membership.entry_date:
        raise InvalidInput("the exit is before the entry", code="date_order")
    text = _reason(reason)
    membership.exit_date = exit_date
    membership.exit_reason = text
    start = datetime.datetime.combine(
        exit_date, datetime.time(0), tzinfo=publisher.rules.utc_offset
    )
    stop_display_at(row, start)
    return record_event(session, publisher, row, LifecycleEventKind.LIST_EXIT.value, text)


def settle_commitment(
    session: Session, publisher: Publisher, record_id: str, status: CommitmentStatus, reason: str
) -> str:
    """A pending credit commitment is fulfilled or broken: a new version whose ``status``
    field changed (its commitment recomputed under the same salt), and a ``correct`` event
    naming it; returns the event's id. Raises Conflict unless it was pending."""
    row = _acting(session, publisher, record_id)
    if row.kind != RecordKind.COMMITMENT.value:
        raise InvalidInput("the record is not a credit commitment", code="not_a_commitment")
    if row.commitment_status != CommitmentStatus.PENDING.value:
        raise Conflict(f"the commitment is {row.commitment_status} already", code="settled")
    if status is CommitmentStatus.PENDING:
        raise InvalidInput("a commitment is settled as fulfilled or broken", code="bad_status")
    salt = publisher.keys.salts(bytes.fromhex(row.id))("status")
    hashes = dict(row.field_hashes)
    hashes["status"] = field_hash("status", status.value, salt).hex()
    root = fields_root([(name, bytes.fromhex(value)) for name, value in hashes.items()])
    now = publisher.now.astimezone(datetime.UTC)
    supersede(session, [superseded_fields(row)])
    row.version += 1
    row.commitment_status = status.value
    row.field_hashes = hashes
    row.fields_root = root.hex()
    # The content hash of a record version comes from the domain record; a settled
    # commitment's is its new fields root (a re-import never carries commitments).
    row.content_hash = root.hex()
    row.public_json = {**row.public_json, "status": status.value}
    row.authority_json = {**row.authority_json, "status": status.value}
    row.updated_at = now
    session.add(
        CreditRecordVersion(
            record_id=row.id,
            version=row.version,
            content_hash=row.content_hash,
            fields_root=row.fields_root,
            created_at=now,
        )
    )
    values = event_values(
        client=publisher.client,
        kind=LifecycleEventKind.CORRECT.value,
        digest=root,
        at=now,
        record_id=row.id,
        version=row.version,
        rule_set_hash=row.rule_set_hash,
        changed_fields=("status",),
        reason=_reason(reason),
    )
    session.execute(cast(Table, CreditEventRow.__table__).insert(), [values])
    return str(values["id"])
