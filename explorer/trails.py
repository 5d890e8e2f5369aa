"""Histories from the registry, proven against the index: a credit record's lifecycle
(publish, correct, withdraw, repair, stop publishing, list entry and exit) and an archive
package's versions and custody events (ingest, checks, fixity audits, migration, disposal).

Each event gets the verdict of :func:`explorer.trail_proofs.prove_leaf`, and then the
domain's own binding: the leaf must commit to *this* event — a credit event's metadata
names its kind, record and version; an archive event's digest is the SM3 of the event
itself, in its package's hash chain; a version's root record commits its root. What a page
shows as the event's content comes from what the leaf commits once it is proven; until
then it is the registry's word, marked as unproven.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from explorer.trail_proofs import FAILED, LeafProof, prove_leaf
from sdk.archive_bundle import archive_event_hash, event_record_metadata, root_record_metadata

CREDIT_EVENT_SCHEMA = "lianxin.credit.event/v1"
"""The ``schema`` of a credit event's committed metadata."""

ARCHIVE_GENESIS = "0" * 64
"""The ``previous`` of a package's first custody event."""


@dataclass
class TrailEvent:
    """One event of a history, what it says, and its verdict."""

    kind: str
    at: str
    proof: LeafProof
    detail: dict[str, Any]
    """What the page shows beside the kind (version, changed fields, outcome, …)."""
    subject: str
    """The record id or package id it belongs to."""


def _fail(proof: LeafProof, reason: str) -> LeafProof:
    proof.verdict = FAILED
    proof.reason = reason
    return proof


def _same_instant(left: Any, right: Any) -> bool:
    """Whether two ISO times name one instant (a time without an offset is UTC: the
    registry's SQLite database keeps its UTC times without one)."""
    try:
        moments = [datetime.fromisoformat(str(value)) for value in (left, right)]
    except ValueError:
        return False
    first, second = (m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments)
    return first == second


def _names(value: Any) -> list[str] | None:
    """A list of field names as the registry sends one (absent or null: none); None for a
    value of any other shape, which the caller refuses rather than reads."""
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def credit_trail(c: Connection, answer: dict[str, Any], *, chain_id: int) -> list[TrailEvent]:
    """The proven events of the registry's ``/v1/audit/credit-records`` answer."""
    known = {str(r.get("id")) for r in answer["records"]}
    trail: list[TrailEvent] = []
    for event in answer["events"]:
        record = event.get("record")
        proof = prove_leaf(c, record, chain_id=chain_id, metadata_salt=event.get("metadataSalt"))
        kind, at = str(event.get("kind")), str(event.get("at"))
        changed = _names(event.get("changedFields"))
        if str(event.get("recordId")) not in known:
            _fail(proof, "the event is of a record the answer does not list")
        elif changed is None:
            _fail(proof, "the event's changed fields are not a list of names")
        elif isinstance(record, dict) and proof.verdict != FAILED:
            metadata = record.get("metadata")
            if (
                not isinstance(metadata, dict)
                or metadata.get("schema") != CREDIT_EVENT_SCHEMA
                or metadata.get("kind") != event.get("kind")
                or metadata.get("record") != event.get("recordId")
                or metadata.get("version") != event.get("version")
                or not _same_instant(metadata.get("at"), event.get("at"))
                or _names(metadata.get("changed_fields")) != changed
            ):
                _fail(proof, "the leaf commits another event than the registry describes")
            else:
                kind, at = str(metadata["kind"]), str(metadata["at"])
        trail.append(
            TrailEvent(
                kind=kind,
                at=at,
                proof=proof,
                detail={
                    "version": event.get("version"),
                    "changed_fields": changed or [],
                },
                subject=str(event.get("recordId")),
            )
        )
    return trail


def archive_trail(c: Connection, answer: dict[str, Any], *, chain_id: int) -> list[TrailEvent]:
    """The proven versions and custody events of the registry's
    ``/v1/audit/archive-packages`` answer, versions first, then events in order."""
    trail: list[TrailEvent] = []
    for version in answer["versions"]:
        record = version.get("record")
        package_id = str(version.get("packageId"))
        proof = prove_leaf(c, record, chain_id=chain_id, metadata_salt=version.get("metadataSalt"))
        if isinstance(record, dict) and proof.verdict != FAILED:
            number = version.get("version")
            expected = root_record_metadata(package_id, number) if isinstance(number, int) else None
            if record.get("digest") != version.get("root") or record.get("metadata") != expected:
                _fail(proof, "the leaf does not commit this version's root")
        trail.append(
            TrailEvent(
                kind="archive-version",
                at="",
                proof=proof,
                detail={
                    "version": version.get("version"),
                    "root": version.get("root"),
                    "disposed_at": version.get("disposedAt"),
                },
                subject=package_id,
            )
        )
    previous: dict[str, str] = {}
    for wrapper in answer["events"]:
        record = wrapper.get("record")
        package_id = str(wrapper.get("packageId"))
        proof = prove_leaf(c, record, chain_id=chain_id, metadata_salt=wrapper.get("metadataSalt"))
        event = wrapper.get("event")
        kind, at = str(wrapper.get("eventType")), str(wrapper.get("at"))
        if not isinstance(event, dict):
            _fail(proof, "the custody event is not an object")
        else:
            try:
                digest = archive_event_hash(event)
            except (TypeError, ValueError) as exc:
                digest = ""
                _fail(proof, f"the custody event cannot be hashed: {exc}")
            expected_previous = previous.get(package_id, ARCHIVE_GENESIS)
            previous[package_id] = digest
            if proof.verdict == FAILED:
                pass
            elif (
                event.get("packageId") != package_id
                or event.get("previous") != expected_previous
                or event.get("eventType") != wrapper.get("eventType")
                or wrapper.get("eventHash") != digest
            ):
                _fail(proof, "the custody event does not follow the one before it")
            elif isinstance(record, dict) and (
                record.get("digest") != digest
                or record.get("metadata") != event_record_metadata(package_id)
            ):
                _fail(proof, "the leaf does not commit this custody event")
            elif isinstance(record, dict):
                kind, at = str(event.get("eventType")), str(event.get("at", at))
        trail.append(
            TrailEvent(
                kind=kind,
                at=at,
                proof=proof,
                detail={
                    "sequence": wrapper.get("sequence"),
                    "outcome": wrapper.get("outcome"),
                    "agent": event.get("agent") if isinstance(event, dict) else None,
                },
                subject=package_id,
            )
        )
    return trail


__all__ = ["TrailEvent", "archive_trail", "credit_trail"]
