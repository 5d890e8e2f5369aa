"""Credit lifecycle events on their way to the chain. Each event becomes one notarized
record of the shared pipeline (:mod:`registry.intake`, :mod:`registry.batcher`): its
digest is what it vouches for (the fields root of the record version it concerns, a rule
set's content hash, or the hash of an import's report of rejected rows), its metadata says
what happened (kind, record, version, time, rule set, changed fields, SM3 of the reason: no
personal data), and its version 2 commitment is signed by the publishing department's own
key, exactly like a notarized record's (:func:`sdk.bundle_links.department_sign_bytes`).

The registry computes the commitment when the event happens; the department signs it
(``POST /v1/credit/events/signatures``: one signature per event, or one over the Merkle
root of many events' commitments, :mod:`registry.credit.signing`); only then is the event
handed to the anchoring pipeline, so the chain never holds a credit event its department
did not sign.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime
from json.encoder import encode_basestring as _encode_string
from typing import Any, Protocol

from chain.crypto import sm3
from chain.primitives import Hash32
from sdk.commitments import (
    COMMITMENT_SALT_SIZE,
    SALTED_METADATA_PREFIX,
    department_record_commitment,
)

__all__ = [
    "AWAITING_SIGNATURE",
    "EVENT_SCHEMA",
    "IMPORT_REPORT",
    "RULE_SET",
    "SIGNED",
    "EventSigner",
    "event_metadata_hash",
    "event_values",
]

EVENT_SCHEMA = "lianxin.credit.event/v1"
"""The ``schema`` member of every credit event's metadata."""

AWAITING_SIGNATURE = "awaiting_signature"
"""An event whose commitment the department has not signed yet."""

SIGNED = "signed"
"""An event signed and handed to the anchoring pipeline."""

RULE_SET = "rule_set"
"""The kind of the event that anchors a rule set a department applied."""

IMPORT_REPORT = "import_report"
"""The kind of the event that anchors the report of rows an import rejected."""


class EventSigner(Protocol):
    """The department whose key an event's commitment is made under (a
    :class:`registry.models.Client`, or :class:`registry.credit.store.Signer`)."""

    @property
    def id(self) -> str:
        """The client's id."""
        ...

    @property
    def public_key(self) -> str:
        """Its SM2 public key, hex (65 bytes)."""
        ...


_METADATA_KEYS = frozenset(
    ("at", "changed_fields", "kind", "reason_sm3", "record", "rule_set", "schema", "version")
)
"""The members of every event's metadata (:func:`event_values`)."""


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else _encode_string(value)


def _metadata_text(metadata: dict[str, Any]) -> str | None:
    """The RFC 8785 text of metadata made by :func:`event_values` (its eight members, in
    sorted order, strings through the C string encoder), or None for any other shape."""
    if metadata.keys() != _METADATA_KEYS:
        return None
    version, changed = metadata["version"], metadata["changed_fields"]
    texts = (metadata["at"], metadata["kind"], metadata["schema"])
    optional = (metadata["reason_sm3"], metadata["record"], metadata["rule_set"])
    if (
        not (version is None or type(version) is int)
        or type(changed) is not list
        or not all(type(value) is str for value in (*texts, *changed))
        or not all(value is None or type(value) is str for value in optional)
    ):
        return None
    at, kind, schema = (_encode_string(value) for value in texts)
    reason, record, rule_set = (_text_or_null(value) for value in optional)
    names = ",".join(_encode_string(name) for name in changed)
    number = "null" if version is None else str(version)
    return (
        f'{{"at":{at},"changed_fields":[{names}],"kind":{kind},"reason_sm3":{reason},'
        f'"record":{record},"rule_set":{rule_set},"schema":{schema},"version":{number}}}'
    )


def event_metadata_hash(metadata: dict[str, Any], salt: bytes) -> Hash32:
    """:func:`sdk.commitments.salted_metadata_hash` of an event's metadata, whose keys are
    ASCII and whose values are strings, nulls, small integers and lists of strings: for
    those, compact ``json.dumps`` with sorted keys and without ASCII escaping writes exactly
    their RFC 8785 form, through the C encoder (an import makes one event a row); the
    eight members of :func:`event_values` are written out directly, a third of the time."""
    if len(salt) != COMMITMENT_SALT_SIZE:
        raise ValueError(f"a metadata salt is {COMMITMENT_SALT_SIZE} bytes")
    text = _metadata_text(metadata)
    if text is None:
        text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return sm3(SALTED_METADATA_PREFIX + salt + text.encode())


def event_values(
    *,
    client: EventSigner,
    kind: str,
    digest: bytes,
    at: datetime,
    record_id: str | None = None,
    version: int | None = None,
    rule_set_hash: str | None = None,
    changed_fields: tuple[str, ...] = (),
    reason: str = "",
) -> dict[str, Any]:
    """The ``credit_events`` row of a new event by ``client`` (its commitment computed
    under the client's key, awaiting its signature)."""
    if at.tzinfo is None:
        raise ValueError("the time of an event must be timezone-aware")
    metadata: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "kind": kind,
        "record": record_id,
        "version": version,
        "at": at.isoformat(),
        "rule_set": rule_set_hash,
        "changed_fields": list(changed_fields),
        "reason_sm3": sm3(reason.encode()).hex() if reason else None,
    }
    salt = secrets.token_bytes(COMMITMENT_SALT_SIZE)
    commitment = department_record_commitment(
        bytes.fromhex(client.public_key), digest, event_metadata_hash(metadata, salt), []
    )
    return {
        "id": str(uuid.uuid4()),
        "record_id": record_id,
        "rule_set_hash": rule_set_hash,
        "kind": kind,
        "version": version,
        "at": at,
        "changed_fields": list(changed_fields),
        "reason": reason,
        "client_id": client.id,
        "digest": digest.hex(),
        "metadata_json": metadata,
        "metadata_salt": salt.hex(),
        "commitment": commitment.hex(),
        "state": AWAITING_SIGNATURE,
        "notary_record_id": None,
        "created_at": at,
    }
