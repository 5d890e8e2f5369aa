"""The tables of data sharing (created by migration ``0011_authorizations``; the columns
the expiry worker reads added by ``0013_authorization_expiry``). Nothing here
holds a subject's identifier in clear: it is sealed (:mod:`registry.data_vault`), found
through a keyed blind index, and committed (salted SM3) wherever it leaves the database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import SEQUENCE_TYPE, Base

OPEN_CONDITION = "expired_at IS NULL AND revoked_at IS NULL AND granted_at IS NOT NULL"
"""Granted, unrevoked authorizations whose expiry is not recorded: the expiry worker's
candidates, indexed partially."""


class AuthorizationRow(Base):
    """One authorization: its terms, consent, and the state the gateway reads."""

    __tablename__ = "authorizations"
    __table_args__ = (
        Index("ix_authorizations_subject_index", "subject_index"),
        Index("ix_authorizations_recipient", "recipient"),
        Index(
            "ix_authorizations_open_until",
            "valid_until",
            sqlite_where=text(OPEN_CONDITION),
            postgresql_where=text(OPEN_CONDITION),
        ),
        Index(
            "ix_authorizations_open_uses",
            "max_uses",
            sqlite_where=text(OPEN_CONDITION),
            postgresql_where=text(OPEN_CONDITION),
        ),
        Index("ix_authorizations_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The authorization id (a UUID) departments cite."""
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_commitment: Mapped[str] = mapped_column(String(64))
    """Hex salted SM3 commitment of the subject (what leaves the database)."""
    subject_index: Mapped[str] = mapped_column(String(64))
    """Keyed SM3 (HMAC, registry data key) of kind and identifier: finds a subject's
    authorizations without keeping the identifier in clear."""
    subject_sealed: Mapped[str] = mapped_column(Text)
    """The subject's identifier, sealed."""
    subject_salt_sealed: Mapped[str] = mapped_column(Text)
    """The commitment's salt, sealed."""
    controller: Mapped[str] = mapped_column(String(18))
    recipient: Mapped[str] = mapped_column(String(18))
    terms_json: Mapped[str] = mapped_column(Text)
    """Canonical JSON of the terms (``AuthorizationTerms.to_json``)."""
    terms_hash: Mapped[str] = mapped_column(String(64))
    consent_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The consent evidence (``ConsentEvidence.to_json``); NULL while awaited."""
    requested_by: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    """The department client that asked for it."""
    granted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Second the grant was recorded (Unix); NULL while the subject's consent is awaited."""
    uses_made: Mapped[int] = mapped_column(Integer, default=0)
    """Reads allowed under it so far."""
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Second of revocation (Unix); NULL while in force."""
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Who revoked it: a client id, or ``citizen`` for the tracker page."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    """Second it was asked for (Unix); with ``id``, the order of listings."""
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The terms' ``validUntil`` (first second after the window), for the expiry worker."""
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The terms' ``maxUses``; NULL: any number within the window."""
    expired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Second its expiry event was recorded; NULL until then (set once, by the worker
    that claims it)."""


class AuthorizationEventRow(Base):
    """A grant, amendment, revocation or expiry, anchored as a record the registry signs."""

    __tablename__ = "authorization_events"

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    authorization_id: Mapped[str] = mapped_column(ForeignKey("authorizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[int] = mapped_column(BigInteger)
    event_json: Mapped[str] = mapped_column(Text)
    """Canonical JSON of the event (``authorizations.access_log.authorization_event``)."""
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), unique=True)
    """The record it is anchored as (its digest is the event's hash)."""
    metadata_salt: Mapped[str] = mapped_column(String(32))
    registry_signature: Mapped[str] = mapped_column(Text)
    """Base64 DER signature of the registry over the record's commitment."""


class AccessStream(Base):
    """The head of one access log stream (one cited authorization id)."""

    __tablename__ = "access_streams"

    stream: Mapped[str] = mapped_column(String(36), primary_key=True)
    length: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))
    """Hex hash of the stream's last entry."""


class AccessLogRow(Base):
    """One access the gateway decided, allowed or refused, signed and anchored."""

    __tablename__ = "access_log"
    __table_args__ = (UniqueConstraint("stream", "position", name="uq_access_log_position"),)

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), unique=True)
    """The record the entry is anchored as; also the entry's id."""
    stream: Mapped[str] = mapped_column(String(36))
    position: Mapped[int] = mapped_column(Integer)
    authorization_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    """The cited authorization, if the registry has it."""
    caller_client: Mapped[str] = mapped_column(String(36))
    caller_uscc: Mapped[str] = mapped_column(String(18), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    at: Mapped[int] = mapped_column(BigInteger)
    disclose_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Hidden from the subject before this second (investigations)."""
    entry_json: Mapped[str] = mapped_column(Text)
    entry_hash: Mapped[str] = mapped_column(String(64))
    metadata_salt: Mapped[str] = mapped_column(String(32))
    registry_signature: Mapped[str] = mapped_column(Text)


__all__ = ["AccessLogRow", "AccessStream", "AuthorizationEventRow", "AuthorizationRow"]
