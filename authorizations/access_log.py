"""Access log entries and authorization events as JSON values: what the registry signs and
anchors for every access the gateway decides (allowed or refused) and for every change of
an authorization. Personal data never appears: the subject only as its commitment, the
resource only as the SM3 of its identifier. Hashing and chain verification live in
:mod:`sdk.data_receipts`, so that anyone can check them without this package."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from authorizations.errors import RefusalRule
from chain.primitives import Hash32

ENTRY_VERSION = 1
"""Format version of access log entries and authorization events."""

UNKNOWN_AUTHORIZATION = "unknown_authorization"
"""The outcome of an access citing an authorization id the registry does not have."""

ALLOWED = "allowed"
"""The outcome of an allowed access."""


class EventKind(enum.StrEnum):
    """What happened to an authorization; each is anchored."""

    GRANT = "grant"
    AMEND = "amend"
    REVOKE = "revoke"
    EXPIRE = "expire"


@dataclass(frozen=True)
class RequestFacts:
    """The department's signed request, as the log keeps it: enough for anyone holding the
    department's public key to check that the department asked (``sdk.trust``
    ``request_sign_bytes`` over these values)."""

    method: str
    """HTTP method."""
    path: str
    """Path with its query, as signed."""
    client_id: str
    """The department's client id."""
    timestamp: str
    """The signed timestamp."""
    nonce: str
    """The request nonce."""
    body_hash: str
    """Hex SM3 of the body."""
    signature: str
    """The department's SM2 signature, base64."""

    def to_json(self) -> dict[str, str]:
        """As JSON values."""
        return {
            "method": self.method,
            "path": self.path,
            "client": self.client_id,
            "timestamp": self.timestamp,
            "nonce": self.nonce,
            "bodyHash": self.body_hash,
            "signature": self.signature,
        }


def outcome_of(rule: RefusalRule | None) -> str:
    """The ``outcome`` of an entry: ``allowed``, or the refusal rule's code."""
    return ALLOWED if rule is None else rule.value


def access_entry(
    *,
    stream: str,
    position: int,
    previous: Hash32,
    at: int,
    caller: str,
    item: str,
    purpose: str,
    resource_hash: Hash32,
    outcome: str,
    request: RequestFacts,
    salt: bytes,
    disclose_after: int | None = None,
) -> dict[str, Any]:
    """One access log entry: stream ``stream`` (the cited authorization id) at
    ``position``, following the entry with hash ``previous``; ``salt`` (16 random bytes)
    keeps its hash from confirming a guess of its content."""
    if position < 0 or len(salt) != 16 or len(previous) != 32:
        raise ValueError("position ≥ 0, a 16-byte salt and a 32-byte previous hash")
    return {
        "version": ENTRY_VERSION,
        "stream": stream,
        "position": position,
        "previous": bytes(previous).hex(),
        "at": at,
        "caller": caller,
        "item": item,
        "purpose": purpose,
        "resource": bytes(resource_hash).hex(),
        "outcome": outcome,
        "request": request.to_json(),
        "discloseAfter": disclose_after,
        "salt": salt.hex(),
    }


def authorization_event(
    *,
    kind: EventKind,
    authorization_id: str,
    terms_digest: Hash32,
    subject_commitment: Hash32,
    at: int,
    actor: str,
    salt: bytes,
) -> dict[str, Any]:
    """One authorization event (grant, amend, revoke, expire): which terms, about which
    committed subject, when, and who acted (a client id, or ``registry`` for an expiry)."""
    if len(salt) != 16:
        raise ValueError("a 16-byte salt")
    return {
        "version": ENTRY_VERSION,
        "kind": kind.value,
        "authorizationId": authorization_id,
        "termsHash": bytes(terms_digest).hex(),
        "subjectCommitment": bytes(subject_commitment).hex(),
        "at": at,
        "actor": actor,
        "salt": salt.hex(),
    }


__all__ = [
    "ALLOWED",
    "ENTRY_VERSION",
    "UNKNOWN_AUTHORIZATION",
    "EventKind",
    "RequestFacts",
    "access_entry",
    "authorization_event",
    "outcome_of",
]
