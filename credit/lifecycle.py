"""The lifecycle events of a record, built from the domain's own facts: what the registry
anchors, signed by the publishing department, for publish, correct (see
:mod:`credit.corrections`), withdraw, repair, stop publishing, list entry and list exit; and
the transitions of a credit commitment."""

from __future__ import annotations

import dataclasses
import datetime

from credit.errors import CreditError
from credit.records import (
    CommitmentStatus,
    CreditCommitment,
    CreditRecord,
    LifecycleEvent,
    LifecycleEventKind,
    ListEntry,
    ListExit,
    RecordKind,
    record_id,
    record_kind,
)

__all__ = [
    "CommitmentTransitionError",
    "list_entry_event",
    "list_exit_event",
    "publish_event",
    "repair_events",
    "settle_commitment",
    "stop_publishing_event",
    "withdraw_event",
]


class CommitmentTransitionError(CreditError):
    """A commitment moved from a state it cannot leave (only a pending one is settled)."""


def _event(
    kind: LifecycleEventKind, record: CreditRecord, at: datetime.datetime, reason: str
) -> LifecycleEvent:
    if at.tzinfo is None:
        raise ValueError("the time of an event must be timezone-aware")
    identity = record_id(record_kind(record), record.natural_key)
    return LifecycleEvent(kind, identity, at, (), reason)


def publish_event(record: CreditRecord, at: datetime.datetime) -> LifecycleEvent:
    """The event that publishes ``record`` at ``at``."""
    return _event(LifecycleEventKind.PUBLISH, record, at, "")


def withdraw_event(record: CreditRecord, at: datetime.datetime, reason: str) -> LifecycleEvent:
    """The event recording that the decision behind ``record`` was overturned (display
    stops; see :func:`credit.windows.stop_display`)."""
    return _event(LifecycleEventKind.WITHDRAW, record, at, reason)


def stop_publishing_event(
    record: CreditRecord, at: datetime.datetime, reason: str
) -> LifecycleEvent:
    """The event that stops public display of ``record`` at ``at``."""
    return _event(LifecycleEventKind.STOP_PUBLISHING, record, at, reason)


def repair_events(
    record: CreditRecord, approved_at: datetime.datetime, reason: str
) -> tuple[LifecycleEvent, LifecycleEvent]:
    """The two events of an approved repair: the repair itself, and the stop of publishing
    it causes at the same instant (see :func:`credit.windows.approve_repair`, which checks
    the repair may be approved then)."""
    return (
        _event(LifecycleEventKind.REPAIR, record, approved_at, reason),
        _event(LifecycleEventKind.STOP_PUBLISHING, record, approved_at, reason),
    )


def list_entry_event(entry: ListEntry, at: datetime.datetime) -> LifecycleEvent:
    """The event that enters a subject into a list."""
    return _event(LifecycleEventKind.LIST_ENTRY, entry, at, entry.reason)


def list_exit_event(list_exit: ListExit, at: datetime.datetime) -> LifecycleEvent:
    """The event that takes a subject off a list; it names the entry's record."""
    if at.tzinfo is None:
        raise ValueError("the time of an event must be timezone-aware")
    identity = record_id(RecordKind.LIST_ENTRY, list_exit.entry)
    return LifecycleEvent(LifecycleEventKind.LIST_EXIT, identity, at, (), list_exit.reason)


def settle_commitment(commitment: CreditCommitment, status: CommitmentStatus) -> CreditCommitment:
    """``commitment`` fulfilled or broken. Raises :class:`CommitmentTransitionError` if it
    is not pending, or if ``status`` is pending."""
    if commitment.status is not CommitmentStatus.PENDING:
        raise CommitmentTransitionError(f"the commitment is already {commitment.status.value}")
    if status is CommitmentStatus.PENDING:
        raise CommitmentTransitionError("a commitment is settled as fulfilled or broken")
    return dataclasses.replace(commitment, status=status)
