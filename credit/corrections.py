"""Corrections: a new version of a record compared with the one on file. Equal content is
"unchanged" (re-importing a file changes nothing); different content under the same natural
key is a correction event naming the fields that changed, never a second record."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from credit.errors import RecordMismatch
from credit.records import (
    CreditRecord,
    LifecycleEvent,
    LifecycleEventKind,
    record_fields,
    record_id,
    record_kind,
)

__all__ = ["FieldChange", "Unchanged", "compare", "correction_event"]


@dataclass(frozen=True)
class Unchanged:
    """The new version has the same content as the previous one."""


@dataclass(frozen=True)
class FieldChange:
    """One field that a correction changes."""

    name: str
    """The field (as in :func:`credit.records.record_fields`)."""
    previous: str | None
    """Its value before, as text."""
    current: str | None
    """Its value after, as text."""


def compare(previous: CreditRecord, current: CreditRecord) -> Unchanged | tuple[FieldChange, ...]:
    """``Unchanged()`` if ``current`` has the content of ``previous``, else the changed
    fields in field order. Raises :class:`RecordMismatch` if the two are not versions of one
    record (different kind or natural key)."""
    if record_kind(previous) is not record_kind(current):
        raise RecordMismatch("the versions are of different kinds of record")
    if previous.natural_key != current.natural_key:
        raise RecordMismatch("the versions have different natural keys")
    before = record_fields(previous)
    after = record_fields(current)
    changes = tuple(
        FieldChange(name, before.get(name), after.get(name))
        for name in after
        if before.get(name) != after.get(name)
    )
    return changes if changes else Unchanged()


def correction_event(
    previous: CreditRecord, current: CreditRecord, at: datetime.datetime, reason: str
) -> LifecycleEvent | Unchanged:
    """The correction event that takes ``previous`` to ``current`` at ``at``, or
    ``Unchanged()`` when nothing changed. The event names the changed fields, not their
    values (which may be personal data); the versions themselves stay in the record's
    history."""
    if at.tzinfo is None:
        raise ValueError("the time of a correction must be timezone-aware")
    changes = compare(previous, current)
    if isinstance(changes, Unchanged):
        return changes
    return LifecycleEvent(
        kind=LifecycleEventKind.CORRECT,
        record_id=record_id(record_kind(current), current.natural_key),
        at=at,
        changed_fields=tuple(change.name for change in changes),
        reason=reason,
    )
