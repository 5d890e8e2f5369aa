"""The data tracker (数据使用记录): what a subject sees of the accesses to its data — who,
what, when, why, under which authorization, allowed or refused, each with the receipt the
registry signed and, once anchored, its proof bundle, in pages
(:mod:`registry.authorizations.paging`). Accesses under an investigation whose
disclosure date has not come are left out, and so is the investigation's authorization;
from that date on they appear whole, their bundles showing the block they were anchored in
at the time.

Citizens reach it through a session the identity provider opens for them: an opaque token
the registry seals (SM4 + HMAC-SM3, :mod:`registry.data_vault`) naming the subject's blind
index and an expiry, so any registry process can open it and nothing about the citizen is
in the link."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import or_, select

from authorizations.terms import SubjectKind, canonical_subject
from registry.authorizations.models import AccessLogRow, AuthorizationRow
from registry.authorizations.paging import (
    DEFAULT_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from registry.authorizations.schemas import AuthorizationPublic
from registry.authorizations.service import Sharing, authorizations_page, record_bundle
from registry.data_vault import VaultError
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.models import Batch, Record

SESSION_LIFETIME_S = 900
"""How long a tracker session the identity provider opened lasts."""

SESSION_PREFIX = "lx-tracker-v1."
"""Marks a tracker session token."""


def anchoring(
    sharing: Sharing, record_id: str
) -> tuple[str | None, int | None, int | None, dict[str, Any] | None]:
    """Of the record a logged entry is anchored as: its path to the signed root (hex, for
    a group signed at once), the block and second it was anchored in, and its proof
    bundle (None for the last three while it is not anchored)."""
    with sharing.db.read_session() as session:
        proof = session.scalar(select(Record.department_proof).where(Record.id == record_id))
        anchored = session.execute(
            select(Batch.block_number, Batch.anchored_at)
            .join(Record, Record.batch_id == Batch.id)
            .where(Record.id == record_id)
        ).one_or_none()
    block_number, anchored_at = (None, None) if anchored is None else anchored
    if block_number is None:
        return proof, None, None, None
    seconds = None
    if anchored_at is not None:
        aware = anchored_at if anchored_at.tzinfo else anchored_at.replace(tzinfo=UTC)
        seconds = int(aware.timestamp())
    return proof, block_number, seconds, record_bundle(sharing, record_id)


def access_json(sharing: Sharing, row: AccessLogRow, chain_id: int) -> dict[str, Any]:
    """One access as the tracker and the gateway show it: what happened, when it was
    anchored, and its receipt in the form ``sdk.data_receipts.AccessReceipt`` reads."""
    proof, block_number, anchored_at, bundle = anchoring(sharing, row.record_id)
    entry = json.loads(row.entry_json)
    return {
        "recordId": row.record_id,
        "authorizationId": row.authorization_id,
        "stream": row.stream,
        "position": row.position,
        "caller": row.caller_uscc,
        "item": entry["item"],
        "purpose": entry["purpose"],
        "outcome": row.outcome,
        "at": row.at,
        "discloseAfter": row.disclose_after,
        "blockNumber": block_number,
        "anchoredAt": anchored_at,
        "receipt": {
            "entry": entry,
            "recordId": row.record_id,
            "registryKey": sharing.signer.public_key.hex(),
            "metadataSalt": row.metadata_salt,
            "registrySignature": row.registry_signature,
            "registryProof": proof,
            "chainId": chain_id,
            "bundle": bundle,
        },
    }


def visible_authorizations(
    sharing: Sharing, subject_index: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> Page[AuthorizationPublic]:
    """One page of the subject's authorizations it may see now (all but investigations
    before their disclosure date), newest first."""
    return authorizations_page(sharing, subject_index=subject_index, limit=limit, after=after)


SUBJECT_ACCESSES = "subject-accesses"
"""The listing of the accesses to one subject's data (its cursors name it)."""
STREAM_ACCESSES = "stream-accesses"
"""The listing of one stream's entries."""


def _page_of(
    sharing: Sharing, rows: Sequence[AccessLogRow], limit: int, listing: str, key: str
) -> Page[dict[str, Any]]:
    chain_id = sharing.signer.chain_id()
    shown = rows[:limit]
    more = len(rows) > limit
    return Page(
        [access_json(sharing, row, chain_id) for row in shown],
        encode_cursor(listing, (getattr(shown[-1], key),)) if more else None,
    )


def subject_accesses(
    sharing: Sharing, subject_index: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> Page[dict[str, Any]]:
    """One page of the accesses to the subject's data it may see now (investigations'
    only from their disclosure date), newest first, each with its receipt and proof."""
    check_limit(limit)
    key = decode_cursor(SUBJECT_ACCESSES, after, (int,))
    now = sharing.now()
    query = (
        select(AccessLogRow)
        .join(AuthorizationRow, AuthorizationRow.id == AccessLogRow.authorization_id)
        .where(
            AuthorizationRow.subject_index == subject_index,
            or_(AccessLogRow.disclose_after.is_(None), AccessLogRow.disclose_after <= now),
        )
    )
    if key is not None:
        query = query.where(AccessLogRow.seq < key[0])
    with sharing.db.read_session() as session:
        rows = session.scalars(query.order_by(AccessLogRow.seq.desc()).limit(limit + 1)).all()
        for row in rows:
            session.expunge(row)
    return _page_of(sharing, rows, limit, SUBJECT_ACCESSES, "seq")


def stream_accesses(
    sharing: Sharing, stream: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> Page[dict[str, Any]]:
    """One page of the entries of one stream (one cited authorization id), in chain
    order."""
    check_limit(limit)
    key = decode_cursor(STREAM_ACCESSES, after, (int,))
    query = select(AccessLogRow).where(AccessLogRow.stream == stream)
    if key is not None:
        query = query.where(AccessLogRow.position > key[0])
    with sharing.db.read_session() as session:
        rows = session.scalars(query.order_by(AccessLogRow.position).limit(limit + 1)).all()
        for row in rows:
            session.expunge(row)
    return _page_of(sharing, rows, limit, STREAM_ACCESSES, "position")


def access_by_record(sharing: Sharing, record_id: str) -> tuple[AccessLogRow, dict[str, Any]]:
    """One access by its record id, with its receipt; raises NotFound."""
    with sharing.db.read_session() as session:
        row = session.scalars(
            select(AccessLogRow).where(AccessLogRow.record_id == record_id)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no access {record_id}", code="access_not_found")
        session.expunge(row)
    return row, access_json(sharing, row, sharing.signer.chain_id())


def subject_index_of_authorization(sharing: Sharing, authorization_id: str) -> str | None:
    """The blind index of an authorization's subject, None if there is none."""
    with sharing.db.read_session() as session:
        row = session.get(AuthorizationRow, authorization_id)
        return None if row is None else row.subject_index


# -- citizen sessions --------------------------------------------------------------------------


def open_citizen_session(sharing: Sharing, resident_id: str) -> tuple[str, int]:
    """A tracker session token for the citizen ``resident_id`` (which the identity provider
    authenticated) and its expiry; raises InvalidInput for a malformed identifier."""
    try:
        identifier = canonical_subject(SubjectKind.CITIZEN, resident_id)
    except Exception as exc:
        raise InvalidInput(str(exc), code="invalid_subject") from None
    expires = sharing.now() + SESSION_LIFETIME_S
    payload = json.dumps(
        {
            "subject": sharing.signer.subject_index(SubjectKind.CITIZEN.value, identifier),
            "expires": expires,
        },
        separators=(",", ":"),
    ).encode()
    sealed = sharing.signer.vault().seal(payload)
    token = SESSION_PREFIX + base64.urlsafe_b64encode(sealed.encode()).decode().rstrip("=")
    return token, expires


def session_subject(sharing: Sharing, token: str) -> str:
    """The subject's blind index of a live session token; raises Forbidden (403)."""
    if not token.startswith(SESSION_PREFIX) or len(token) > 1_000:
        raise Forbidden("not a tracker session", code="invalid_session")
    body = token[len(SESSION_PREFIX) :]
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        value = json.loads(sharing.signer.vault().open(sealed))
        subject, expires = str(value["subject"]), int(value["expires"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError, VaultError):
        raise Forbidden("not a tracker session", code="invalid_session") from None
    if expires <= sharing.now():
        raise Forbidden("the session has expired: sign in again", code="expired_session")
    return subject


__all__ = [
    "SESSION_LIFETIME_S",
    "STREAM_ACCESSES",
    "SUBJECT_ACCESSES",
    "access_by_record",
    "access_json",
    "anchoring",
    "open_citizen_session",
    "session_subject",
    "stream_accesses",
    "subject_accesses",
    "subject_index_of_authorization",
    "visible_authorizations",
]
