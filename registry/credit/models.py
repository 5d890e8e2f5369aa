"""The tables of public credit, on the registry's shared declarative base. The schema is
created by the migration ``0009_credit`` (and changed by the later ``credit`` ones).

No natural person's identity number is stored in clear: only its salted SM3 commitment
(the record's field hashes, salts derived from the registry's key, :mod:`registry.credit.keys`)
and its masked form; a subject is looked up by a keyed hash of its identifier; repair
evidence is sealed with the registry's data key (:mod:`registry.data_vault`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import SEQUENCE_TYPE, Base


class CreditRecordRow(Base):
    """One credit record (penalty, licensing decision, list entry, credit commitment) in
    its current version, with its publication window."""

    __tablename__ = "credit_records"
    __table_args__ = (
        UniqueConstraint(
            "kind", "authority_uscc", "decision_number", name="uq_credit_records_natural_key"
        ),
        Index("ix_credit_records_subject", "subject_key"),
        # The auditors' search by decision number alone (the unique key starts with kind).
        Index("ix_credit_records_decision", "decision_number"),
        Index("ix_credit_records_display", "display_end"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The record's identity (:func:`credit.records.record_id`), hex."""
    kind: Mapped[str] = mapped_column(String(16))
    """A :class:`credit.records.RecordKind`."""
    authority_uscc: Mapped[str] = mapped_column(String(18), index=True)
    """The deciding authority's USCC (first half of the natural key)."""
    decision_number: Mapped[str] = mapped_column(String(200))
    """The decision number (second half of the natural key)."""
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    """The department client that published it."""
    subject_key: Mapped[str] = mapped_column(String(64))
    """Keyed hash of the subject's identifier (:mod:`registry.credit.subject_keys`)."""
    subject_name: Mapped[str] = mapped_column(String(200), index=True)
    """The subject's name as shown (masked for a natural person)."""
    subject_code: Mapped[str | None] = mapped_column(String(64), index=True)
    """The subject's identifier as shown: a USCC in full, a person's number masked."""
    subject_category: Mapped[str] = mapped_column(String(16))
    """行政相对人类别."""
    version: Mapped[int] = mapped_column(Integer)
    """The current version (1 at publication, one more per correction)."""
    content_hash: Mapped[str] = mapped_column(String(64))
    """:func:`credit.records.content_hash` of the current version."""
    public_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The current version's fields as shown to the public (masked)."""
    authority_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The current version's fields as an authorised reader sees them: everything, but
    identity numbers masked (they are never stored; their salted hash is in
    ``field_hashes``)."""
    field_hashes: Mapped[dict[str, str]] = mapped_column(JSON)
    """Field name → salted SM3 hash (hex): what a subject discloses one field against."""
    fields_root: Mapped[str] = mapped_column(String(64))
    """:func:`sdk.commitments.fields_root` of the field hashes."""
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """First instant of public display."""
    minimum_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """From here repair may be applied for; NULL when repair does not apply."""
    maximum_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Display ends here by itself; NULL for no end."""
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When display stopped early (repair, withdrawal, decision to stop)."""
    display_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The earlier of ``maximum_end`` and ``stopped_at`` (NULL: shown without end)."""
    severity: Mapped[str | None] = mapped_column(String(16))
    """A :class:`credit.windows.Severity` for a penalty."""
    rule_set_hash: Mapped[str | None] = mapped_column(ForeignKey("credit_rule_sets.hash"))
    """The rule set the window was computed under."""
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    """The decision was overturned."""
    commitment_status: Mapped[str | None] = mapped_column(String(16))
    """For a 信用承诺: pending, fulfilled or broken."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditRecordVersion(Base):
    """Every version of a record: the history a correction keeps. The current version's
    fields are not repeated here (see ``public_json``)."""

    __tablename__ = "credit_record_versions"

    record_id: Mapped[str] = mapped_column(ForeignKey("credit_records.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    public_json: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """This version's fields as shown (masked); NULL while it is the record's current
    version, whose fields are the record row's (stored once, copied here when a correction
    supersedes it)."""
    authority_json: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """This version's fields for authorised readers (identity numbers masked); NULL while
    current, as ``public_json``."""
    field_hashes: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    """This version's field hashes; NULL while current, as ``public_json``."""
    fields_root: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditRuleSetRow(Base):
    """A rule set of publication periods that windows were computed under; anchored
    through a ``rule_set`` event signed by the department that first applied it."""

    __tablename__ = "credit_rule_sets"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """:attr:`credit.rulesets.RuleSet.content_hash` (hex)."""
    rule_set_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditEventRow(Base):
    """One lifecycle event (publish, correct, withdraw, repair, stop publishing, list entry,
    list exit, commitment settled; ``rule_set`` for adopting a rule set), and its way to the
    chain: its commitment waits for the department's signature, then travels as a notarized
    record (``records``) through the shared batcher and anchorer."""

    __tablename__ = "credit_events"
    __table_args__ = (Index("ix_credit_events_pending", "client_id", "state"),)

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    """The event id (a UUID)."""
    record_id: Mapped[str | None] = mapped_column(ForeignKey("credit_records.id"), index=True)
    """The record concerned; NULL for a rule set event."""
    rule_set_hash: Mapped[str | None] = mapped_column(ForeignKey("credit_rule_sets.hash"))
    """The rule set in force for the event."""
    kind: Mapped[str] = mapped_column(String(24))
    version: Mapped[int | None] = mapped_column(Integer)
    """The record version the event concerns."""
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When it took effect."""
    changed_fields: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    """The department client whose key signs it."""
    digest: Mapped[str] = mapped_column(String(64))
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    metadata_salt: Mapped[str] = mapped_column(String(32))
    commitment: Mapped[str] = mapped_column(String(64))
    """What the department signs (:func:`sdk.commitments.department_record_commitment`)."""
    state: Mapped[str] = mapped_column(String(24))
    """``awaiting_signature`` or ``signed`` (handed to the anchoring pipeline)."""
    notary_record_id: Mapped[str | None] = mapped_column(String(36), index=True)
    """The notarized record carrying it (``records.id``) once signed."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditListMembership(Base):
    """A subject on a red or black list: the entry's record, and its exit once made."""

    __tablename__ = "credit_list_memberships"

    record_id: Mapped[str] = mapped_column(ForeignKey("credit_records.id"), primary_key=True)
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    list_type: Mapped[str] = mapped_column(String(8))
    list_name: Mapped[str] = mapped_column(String(200))
    entry_date: Mapped[date] = mapped_column(Date)
    planned_exit_date: Mapped[date | None] = mapped_column(Date)
    exit_date: Mapped[date | None] = mapped_column(Date)
    exit_reason: Mapped[str | None] = mapped_column(Text)
    basis_records: Mapped[list[str]] = mapped_column(JSON)
    """Natural keys (``authority USCC/decision number``) of the records the entry rests on."""


class CreditRepairApplication(Base):
    """A subject's application for credit repair (信用修复) of one record, and the
    authority's decision."""

    __tablename__ = "credit_repair_applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("credit_records.id"), index=True)
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    evidence_sealed: Mapped[str] = mapped_column(Text)
    """The evidence the subject gave, sealed (it may name persons)."""
    evidence_hash: Mapped[str] = mapped_column(String(64))
    obligations_fulfilled: Mapped[bool] = mapped_column(Boolean)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    """The authority decides before this instant; after it, undecided is overdue."""
    state: Mapped[str] = mapped_column(String(16), index=True)
    """``pending``, ``approved`` or ``rejected``."""
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))


class CreditCheckLog(Base):
    """One ``check`` call: who checked whom, for what, when, and the answer."""

    __tablename__ = "credit_checks"

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    checker_uscc: Mapped[str] = mapped_column(String(18))
    checker_name: Mapped[str] = mapped_column(String(200))
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    activity: Mapped[str] = mapped_column(String(100))
    on_date: Mapped[date] = mapped_column(Date)
    decision: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


__all__ = [
    "CreditCheckLog",
    "CreditEventRow",
    "CreditListMembership",
    "CreditRecordRow",
    "CreditRecordVersion",
    "CreditRepairApplication",
    "CreditRuleSetRow",
]
