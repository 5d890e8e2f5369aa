"""Authorizations served: a department asks, the subject consents (the enterprise's own
signature, or an identity provider's attestation), the subject or the department revokes,
and expiry is recorded (:mod:`registry.authorizations.expiry`). Every grant, amendment,
revocation and expiry is an event the registry signs and anchors
(:mod:`registry.authorizations.signing`) in the transaction that makes the change, with
commitments only. Listings come in pages (:mod:`registry.authorizations.paging`)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.orm import Session

from authorizations.access_log import EventKind, authorization_event
from authorizations.catalogue import Catalogue, load_catalogue
from authorizations.consent import ConsentEvidence, verify_consent
from authorizations.errors import AuthorizationError
from authorizations.terms import (
    AuthorizationTerms,
    ConsentMethod,
    LegalBasis,
    SubjectKind,
    canonical_subject,
    consent_method_for,
    subject_commitment,
    terms_hash,
    validate_terms,
)
from chain.primitives import Hash32
from registry.authorizations.models import AuthorizationEventRow, AuthorizationRow
from registry.authorizations.paging import (
    DEFAULT_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from registry.authorizations.schemas import (
    AuthorizationCreate,
    AuthorizationPublic,
    EventPublic,
)
from registry.authorizations.signing import RegistrySigner, b64
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.models import Batch, Client, Record
from registry.notarization import VerifyCaches, bundle_for, bundle_json
from sdk.commitments import canonical_json
from sdk.data_receipts import EVENT_METADATA, SUBJECT_SALT_SIZE, event_hash

DATA_ROLE = "data"
"""Role of a department that asks for authorizations and reads through the gateway."""
IDENTITY_ROLE = "identity"
"""Role of an identity provider, which attests citizens' approvals."""
SUBJECT_ROLE = "subject"
"""Role of an enterprise acting on its own authorizations and access log."""


class Status:
    """An authorization's status as shown."""

    REQUESTED = "requested"
    GRANTED = "granted"
    REVOKED = "revoked"
    AMENDED = "amended"
    EXPIRED = "expired"


class Sharing:
    """What the authorization and gateway services share: the database, the chain, the
    registry's signer, the catalogue, the proof caches and the clock."""

    def __init__(
        self,
        db: Database,
        gateway: ChainGateway,
        caches: VerifyCaches,
        *,
        clock: Callable[[], float] = time.time,
        catalogue: Catalogue | None = None,
    ) -> None:
        """``clock`` gives the time the gateway decides at (Unix seconds)."""
        self.db = db
        self.gateway = gateway
        self.caches = caches
        self.clock = clock
        self.catalogue = catalogue or load_catalogue()
        self.signer = RegistrySigner(db, gateway)

    def now(self) -> int:
        """The current second."""
        return int(self.clock())


def _refuse(exc: AuthorizationError) -> InvalidInput:
    return InvalidInput(str(exc), code=exc.code)


def _subject_of_client(sharing: Sharing, client: Client) -> str:
    """The blind index of an enterprise client as a subject."""
    return sharing.signer.subject_index(SubjectKind.ENTERPRISE.value, client.uscc)


def request_authorization(
    sharing: Sharing,
    client: Client,
    payload: AuthorizationCreate,
    *,
    amends: str | None = None,
) -> AuthorizationPublic:
    """Store a department's request; grant it at once (anchoring the grant) if its legal
    basis needs no consent. With ``amends``, the new terms replace that authorization (of
    the same subject, in force) once granted: the old one then ends with an anchored
    ``amend`` event. Raises Forbidden (not a data client, or neither the controller nor the
    recipient), NotFound (``amends`` unknown to the client), InvalidInput (terms)."""
    if DATA_ROLE not in client.roles:
        raise Forbidden(f"client {client.id} may not ask for authorizations")
    if client.uscc not in (payload.controller, payload.recipient):
        raise Forbidden("only the controller or the recipient may ask for an authorization")
    try:
        kind = SubjectKind(payload.subject_kind)
        identifier = canonical_subject(kind, payload.subject_id)
        if amends is not None:
            _check_amendable(sharing, client, amends, kind, identifier)
        salt = os.urandom(SUBJECT_SALT_SIZE)
        terms = validate_terms(
            AuthorizationTerms(
                subject_kind=kind,
                subject_commitment=subject_commitment(kind, identifier, salt),
                controller=payload.controller,
                recipient=payload.recipient,
                items=tuple(sorted(set(payload.items))),
                purpose=payload.purpose,
                legal_basis=LegalBasis(payload.legal_basis),
                basis_citation=payload.basis_citation,
                valid_from=payload.valid_from,
                valid_until=payload.valid_until,
                max_uses=payload.max_uses,
                disclose_after=payload.disclose_after,
                catalogue_version=sharing.catalogue.version,
                amends=amends,
            ),
            sharing.catalogue,
        )
    except AuthorizationError as exc:
        raise _refuse(exc) from None
    vault = sharing.signer.vault()
    now = sharing.now()
    row = AuthorizationRow(
        id=str(uuid.uuid4()),
        subject_kind=kind.value,
        subject_commitment=terms.subject_commitment.hex(),
        subject_index=sharing.signer.subject_index(kind.value, identifier),
        subject_sealed=vault.seal(identifier.encode()),
        subject_salt_sealed=vault.seal(salt),
        controller=terms.controller,
        recipient=terms.recipient,
        terms_json=canonical_json(terms.to_json()).decode(),
        terms_hash=terms_hash(terms).hex(),
        consent_json=None,
        requested_by=client.id,
        granted_at=None,
        uses_made=0,
        revoked_at=None,
        revoked_by=None,
        created_at=now,
        valid_until=terms.valid_until,
        max_uses=terms.max_uses,
        expired_at=None,
    )
    needs_consent = consent_method_for(terms) is not ConsentMethod.NOT_REQUIRED
    if not needs_consent:
        sharing.signer.ensure_log_client()
    with sharing.db.session() as session:
        session.add(row)
        if not needs_consent:
            row.consent_json = json.dumps(ConsentEvidence(ConsentMethod.NOT_REQUIRED).to_json())
            row.granted_at = now
            session.flush()
            _record_grant(sharing, session, row, terms, client.id, now)
        authorization_id = row.id
    return authorization_view(sharing, authorization_id)


def give_consent(
    sharing: Sharing, client: Client, authorization_id: str, signature_b64: str
) -> AuthorizationPublic:
    """Record the subject's consent, signed by the calling client with its own key: the
    enterprise itself (role ``subject``, its USCC the subject's) or an identity provider
    (role ``identity``) for a citizen. The grant is anchored. Raises NotFound, Forbidden,
    InvalidInput (a signature that does not verify; nothing changes)."""
    row = _row(sharing, authorization_id)
    terms = _terms(row)
    method = consent_method_for(terms)
    if method is ConsentMethod.ENTERPRISE_SIGNATURE:
        allowed = SUBJECT_ROLE in client.roles and _subject_of_client(sharing, client) == (
            row.subject_index
        )
    elif method is ConsentMethod.IDENTITY_PROVIDER:
        allowed = IDENTITY_ROLE in client.roles
    else:
        allowed = False
    if not allowed:
        raise Forbidden(f"client {client.id} cannot give this authorization's consent")
    if row.granted_at is not None:
        raise InvalidInput("consent was given already", code="already_granted")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("signature must be base64", code="consent_invalid") from None
    evidence = ConsentEvidence(method, client.id, bytes.fromhex(client.public_key), signature)
    try:
        verify_consent(terms, evidence, chain_id=sharing.signer.chain_id())
    except AuthorizationError as exc:
        raise _refuse(exc) from None
    sharing.signer.ensure_log_client()
    now = sharing.now()
    with sharing.db.session() as session:
        stored = session.get_one(AuthorizationRow, authorization_id)
        if stored.granted_at is not None:
            raise InvalidInput("consent was given already", code="already_granted")
        stored.consent_json = json.dumps(evidence.to_json())
        stored.granted_at = now
        _record_grant(sharing, session, stored, terms, client.id, now)
    return authorization_view(sharing, authorization_id)


def _check_amendable(
    sharing: Sharing, client: Client, amends: str, kind: SubjectKind, identifier: str
) -> None:
    with sharing.db.read_session() as session:
        old = session.get(AuthorizationRow, amends)
        if old is None or not may_see(sharing, old, client):
            raise NotFound(f"no authorization {amends}", code="authorization_not_found")
        if old.subject_index != sharing.signer.subject_index(kind.value, identifier):
            raise InvalidInput("an amendment keeps the subject", code="invalid_amendment")
        if old.revoked_at is not None or old.granted_at is None:
            raise InvalidInput("only an authorization in force is amended", code="not_in_force")


def _record_grant(
    sharing: Sharing,
    session: Session,
    row: AuthorizationRow,
    terms: AuthorizationTerms,
    actor: str,
    now: int,
) -> None:
    """Anchor the grant of ``row``; if its terms amend another authorization still in
    force, end that one from this second with an anchored ``amend`` event."""
    add_event(sharing, session, row, EventKind.GRANT, actor, now)
    if terms.amends is None:
        return
    old = session.get(AuthorizationRow, terms.amends)
    if old is not None and old.revoked_at is None:
        old.revoked_at = now
        old.revoked_by = f"amended:{row.id}"
        add_event(sharing, session, old, EventKind.AMEND, actor, now)


def revoke(
    sharing: Sharing, authorization_id: str, *, actor: str, subject_index: str | None
) -> AuthorizationPublic:
    """Revoke an authorization from this second on, anchoring the revocation; the very
    next access is refused. ``subject_index`` names the subject acting (it must be the
    authorization's); None lets the departments party to it revoke (the caller checks).
    Revoking twice changes nothing."""
    now = sharing.now()
    sharing.signer.ensure_log_client()
    with sharing.db.session() as session:
        row = session.get(AuthorizationRow, authorization_id)
        if row is None or (subject_index is not None and row.subject_index != subject_index):
            raise NotFound(f"no authorization {authorization_id}", code="authorization_not_found")
        if row.revoked_at is None:
            row.revoked_at = now
            row.revoked_by = actor
            add_event(sharing, session, row, EventKind.REVOKE, actor, now)
    return authorization_view(sharing, authorization_id)


def add_event(
    sharing: Sharing,
    session: Session,
    row: AuthorizationRow,
    kind: EventKind,
    actor: str,
    now: int,
) -> None:
    """Sign ``kind`` of ``row`` at ``now`` by ``actor`` and store it with the record that
    anchors it, in ``session`` (call ``sharing.signer.ensure_log_client()`` first)."""
    event = authorization_event(
        kind=kind,
        authorization_id=row.id,
        terms_digest=Hash32(bytes.fromhex(row.terms_hash)),
        subject_commitment=Hash32(bytes.fromhex(row.subject_commitment)),
        at=now,
        actor=actor,
        salt=os.urandom(16),
    )
    signed = sharing.signer.record(event_hash(event), EVENT_METADATA, sharing.signer.chain_id())
    session.execute(cast(Table, Record.__table__).insert(), [signed.values])
    session.add(
        AuthorizationEventRow(
            authorization_id=row.id,
            kind=kind.value,
            at=now,
            event_json=canonical_json(event).decode(),
            record_id=signed.record_id,
            metadata_salt=signed.metadata_salt.hex(),
            registry_signature=b64(signed.signature),
        )
    )


def _row(sharing: Sharing, authorization_id: str) -> AuthorizationRow:
    with sharing.db.read_session() as session:
        row = session.get(AuthorizationRow, authorization_id)
        if row is None:
            raise NotFound(f"no authorization {authorization_id}", code="authorization_not_found")
        session.expunge(row)
    return row


def _terms(row: AuthorizationRow) -> AuthorizationTerms:
    return AuthorizationTerms.from_json(json.loads(row.terms_json))


def uses_exhausted(row: AuthorizationRow) -> bool:
    """Whether every use the authorization allows was made."""
    return row.max_uses is not None and row.uses_made >= row.max_uses


def status_of(row: AuthorizationRow, now: int) -> str:
    """requested, granted, revoked, amended or expired, at second ``now``: expired once
    its expiry is recorded, its window has ended, or every use was made (the expiry
    worker records the event soon after)."""
    if row.revoked_at is not None:
        amended = (row.revoked_by or "").startswith("amended:")
        return Status.AMENDED if amended else Status.REVOKED
    if row.granted_at is None:
        return Status.REQUESTED
    if row.expired_at is not None or _terms(row).valid_until <= now or uses_exhausted(row):
        return Status.EXPIRED
    return Status.GRANTED


def may_see(sharing: Sharing, row: AuthorizationRow, client: Client) -> bool:
    """Whether ``client`` is party to the authorization: the controller's or the
    recipient's department, or the enterprise it is about (role ``subject``)."""
    if client.uscc in (row.controller, row.recipient) and DATA_ROLE in client.roles:
        return True
    return SUBJECT_ROLE in client.roles and _subject_of_client(sharing, client) == row.subject_index


def authorization_view(sharing: Sharing, authorization_id: str) -> AuthorizationPublic:
    """An authorization with its events, each with its proof bundle once anchored."""
    row = _row(sharing, authorization_id)
    with sharing.db.read_session() as session:
        events = session.scalars(
            select(AuthorizationEventRow)
            .where(AuthorizationEventRow.authorization_id == authorization_id)
            .order_by(AuthorizationEventRow.id)
        ).all()
        for event in events:
            session.expunge(event)
    return AuthorizationPublic(
        id=row.id,
        status=status_of(row, sharing.now()),
        terms=json.loads(row.terms_json),
        terms_hash=row.terms_hash,
        subject_salt=sharing.signer.vault().open(row.subject_salt_sealed).hex(),
        consent=None if row.consent_json is None else json.loads(row.consent_json),
        uses_made=row.uses_made,
        granted_at=row.granted_at,
        revoked_at=row.revoked_at,
        events=[
            EventPublic(
                kind=event.kind,
                at=event.at,
                record_id=event.record_id,
                event=json.loads(event.event_json),
                registry_signature=event.registry_signature,
                metadata_salt=event.metadata_salt,
                bundle=record_bundle(sharing, event.record_id),
            )
            for event in events
        ],
    )


def record_bundle(sharing: Sharing, record_id: str) -> dict[str, Any] | None:
    """The proof bundle of one of the registry's log records, None until anchored (or
    while the node cannot provide its chain half)."""
    with sharing.db.read_session() as session:
        record = session.scalars(select(Record).where(Record.id == record_id)).one()
        batch = None if record.batch_id is None else session.get(Batch, record.batch_id)
        session.expunge(record)
        if batch is not None:
            session.expunge(batch)
    if batch is None or batch.block_number is None:
        return None
    bundle = bundle_for(sharing.db, sharing.gateway, sharing.caches, record, batch)
    return None if bundle is None else bundle_json(sharing.caches, batch, bundle)


DEPARTMENT_LISTING = "department-authorizations"
"""The listing of a department's authorizations (its cursors name it)."""
SUBJECT_LISTING = "subject-authorizations"
"""The listing of a subject's authorizations."""


def _hidden_from_subject(terms_json: str, now: int) -> bool:
    disclose_after = json.loads(terms_json).get("discloseAfter")
    return disclose_after is not None and disclose_after > now


def authorizations_page(
    sharing: Sharing,
    *,
    subject_index: str | None = None,
    department: str | None = None,
    limit: int = DEFAULT_LIMIT,
    after: str | None = None,
) -> Page[AuthorizationPublic]:
    """One page of the authorizations of a subject (by blind index: investigations before
    their disclosure date are left out) or naming ``department`` as controller or
    recipient, newest first (creation second, then id; see
    :mod:`registry.authorizations.paging`). Raises InvalidInput for a bad cursor or
    limit."""
    if (subject_index is None) == (department is None):
        raise ValueError("list the authorizations of a subject or of a department")
    check_limit(limit)
    listing = SUBJECT_LISTING if subject_index is not None else DEPARTMENT_LISTING
    key = decode_cursor(listing, after, (int, str))
    now = sharing.now()
    found: list[tuple[int, str]] = []
    more = False
    with sharing.db.read_session() as session:
        while not more:
            query = select(
                AuthorizationRow.created_at, AuthorizationRow.id, AuthorizationRow.terms_json
            )
            if subject_index is not None:
                query = query.where(AuthorizationRow.subject_index == subject_index)
            else:
                query = query.where(
                    or_(
                        AuthorizationRow.recipient == department,
                        AuthorizationRow.controller == department,
                    )
                )
            if key is not None:
                created, last_id = key
                query = query.where(
                    or_(
                        AuthorizationRow.created_at < created,
                        and_(AuthorizationRow.created_at == created, AuthorizationRow.id < last_id),
                    )
                )
            query = query.order_by(
                AuthorizationRow.created_at.desc(), AuthorizationRow.id.desc()
            ).limit(limit + 1)
            rows = session.execute(query).all()
            for created_at, row_id, terms_json in rows:
                key = (created_at, row_id)
                if subject_index is not None and _hidden_from_subject(terms_json, now):
                    continue
                if len(found) == limit:
                    more = True
                    break
                found.append((created_at, row_id))
            if len(rows) <= limit:
                break
    views = [authorization_view(sharing, row_id) for _, row_id in found]
    return Page(views, encode_cursor(listing, found[-1]) if more else None)


__all__ = [
    "DATA_ROLE",
    "DEPARTMENT_LISTING",
    "IDENTITY_ROLE",
    "SUBJECT_LISTING",
    "SUBJECT_ROLE",
    "Sharing",
    "Status",
    "add_event",
    "authorization_view",
    "authorizations_page",
    "give_consent",
    "may_see",
    "record_bundle",
    "request_authorization",
    "revoke",
    "status_of",
    "uses_exhausted",
]
