"""The tables of what a subject sees beyond the accesses under its authorizations
(created by migration ``0016_subject_trails``): whom an archive package is about, and the
credit checks made of a subject. As everywhere in data sharing, the subject is only its
keyed blind index here (:meth:`registry.authorizations.signing.RegistrySigner.subject_index`),
never its identifier."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import SEQUENCE_TYPE, Base


class ArchiveSubjectRow(Base):
    """Whom one archive package is about (recorded at ingest by the department that
    ingested it; a package about no one has no row)."""

    __tablename__ = "archive_subjects"

    package_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    """``enterprise`` or ``citizen``."""
    subject_index: Mapped[str] = mapped_column(String(64), index=True)
    """The subject's blind index."""
    recorded_by: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    recorded_at: Mapped[int] = mapped_column(BigInteger)


class CreditCheckEntryRow(Base):
    """One credit check made of a subject, as its tracker shows it: the entry the registry
    signed (:func:`sdk.data_receipts.check_entry_hash`) and the record anchoring it."""

    __tablename__ = "credit_check_entries"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), unique=True)
    subject_index: Mapped[str] = mapped_column(String(64), index=True)
    checker_uscc: Mapped[str] = mapped_column(String(18))
    checker_name: Mapped[str] = mapped_column(String(200))
    activity: Mapped[str] = mapped_column(String(100))
    on_date: Mapped[date] = mapped_column(Date)
    decision: Mapped[str] = mapped_column(String(16))
    at: Mapped[int] = mapped_column(BigInteger)
    entry_json: Mapped[str] = mapped_column(Text)
    entry_hash: Mapped[str] = mapped_column(String(64))
    metadata_salt: Mapped[str] = mapped_column(String(32))
    registry_signature: Mapped[str] = mapped_column(Text)


__all__ = ["ArchiveSubjectRow", "CreditCheckEntryRow"]
