"""The chain of custody of a package, after PREMIS 3 event types: each event names the
package, its place in the package's history (``sequence``), what happened, when, by whom,
the outcome and details, and the hash of the event before it. The event hash is SM3 over
the RFC 8785 JSON of all that, so the history is a hash chain: changing, dropping or
reordering an event breaks every link after it. Each event hash is anchored in a batch like
any record (the registry does that), so the chain cannot be rewritten wholesale either."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from archives.errors import CustodyError
from sdk.archive_bundle import archive_event_hash

GENESIS = "0" * 64
"""The ``previous`` of a package's first event."""

EVENT_PREFIX = "lianxin/archive-event/v1"
"""Domain separation inside every hashed event."""


class EventType(StrEnum):
    """PREMIS event types used here (id.loc.gov/vocabulary/preservation/eventType)."""

    INGESTION = "ingestion"
    VALIDATION = "validation"
    FIXITY_CHECK = "fixity check"
    FORMAT_IDENTIFICATION = "format identification"
    VIRUS_CHECK = "virus check"
    MIGRATION = "migration"
    ACCESS = "access"
    TRANSFER = "transfer"
    DISPOSAL = "deletion"


class Outcome(StrEnum):
    """PREMIS event outcome."""

    SUCCESS = "success"
    FAILURE = "failure"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class CustodyEvent:
    """One event of a package's history."""

    package_id: str
    """The package."""
    sequence: int
    """0 for the first event, then one more each."""
    event_type: EventType
    """What happened."""
    at: datetime
    """When (UTC)."""
    agent: str
    """Who or what did it (a department, a person, the registry, a tool)."""
    outcome: Outcome
    """How it came out."""
    previous: str
    """Hash of the event before (GENESIS for the first)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """What else PREMIS records: version, roots, report hash, failures, approval ..."""

    def to_json(self) -> dict[str, Any]:
        """The event as hashed, stored and exported."""
        return {
            "domain": EVENT_PREFIX,
            "packageId": self.package_id,
            "sequence": self.sequence,
            "eventType": self.event_type.value,
            "at": self.at.astimezone(UTC).isoformat(),
            "agent": self.agent,
            "outcome": self.outcome.value,
            "previous": self.previous,
            "detail": self.detail,
        }

    @property
    def event_hash(self) -> str:
        """SM3 of the RFC 8785 JSON of :meth:`to_json` (hex)."""
        return archive_event_hash(self.to_json())

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> CustodyEvent:
        """Read an event back; raises CustodyError if it is not one."""
        try:
            if value["domain"] != EVENT_PREFIX:
                raise CustodyError("not a custody event")
            return cls(
                package_id=str(value["packageId"]),
                sequence=int(value["sequence"]),
                event_type=EventType(value["eventType"]),
                at=datetime.fromisoformat(str(value["at"])),
                agent=str(value["agent"]),
                outcome=Outcome(value["outcome"]),
                previous=str(value["previous"]),
                detail=dict(value["detail"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CustodyError(f"not a custody event: {exc}") from exc


def next_event(
    history: Sequence[CustodyEvent],
    package_id: str,
    event_type: EventType,
    *,
    at: datetime,
    agent: str,
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> CustodyEvent:
    """The event that follows ``history`` (the package's events so far, in order). Raises
    CustodyError for any event after a disposal, for a disposal without an approval by
    someone other than the agent, and for a first event that is not an ingestion."""
    detail = dict(detail or {})
    if history and history[-1].event_type is EventType.DISPOSAL:
        raise CustodyError(f"package {package_id} was disposed of; nothing can follow")
    if not history and event_type is not EventType.INGESTION:
        raise CustodyError("a package's history starts with its ingestion")
    if event_type is EventType.DISPOSAL:
        approval = detail.get("approval")
        if not isinstance(approval, dict) or not approval.get("approvalId"):
            raise CustodyError("a disposal needs an approval")
        if str(approval.get("approvedBy", "")).strip() in ("", agent.strip()):
            raise CustodyError("a disposal is approved by someone other than who carries it out")
    previous = history[-1] if history else None
    return CustodyEvent(
        package_id=package_id,
        sequence=0 if previous is None else previous.sequence + 1,
        event_type=event_type,
        at=at,
        agent=agent,
        outcome=outcome,
        previous=GENESIS if previous is None else previous.event_hash,
        detail=detail,
    )


def verify_history(events: Sequence[CustodyEvent]) -> None:
    """Raise CustodyError unless ``events`` is one package's unbroken hash chain from its
    ingestion: sequence 0, 1, 2 ..., each ``previous`` the hash of the one before."""
    expected_previous = GENESIS
    for position, event in enumerate(events):
        if event.package_id != events[0].package_id:
            raise CustodyError(f"event {position} belongs to package {event.package_id}")
        if event.sequence != position:
            raise CustodyError(f"event {position} carries sequence {event.sequence}")
        if event.previous != expected_previous:
            raise CustodyError(f"event {position} does not link to the event before it")
        expected_previous = event.event_hash


__all__ = [
    "GENESIS",
    "CustodyEvent",
    "EventType",
    "Outcome",
    "next_event",
    "verify_history",
]
