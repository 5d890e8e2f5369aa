"""The tables of e-archives, on the registry's shared declarative base; created by the
migration ``0012_archives``. Files and custody events point at the notarized record that
anchors them (``records``), so their proof bundles are the ordinary ones."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import SEQUENCE_TYPE, Base


class ArchivePackageRow(Base):
    """One stored version of a package (an AIP) and its description."""

    __tablename__ = "archive_packages"

    package_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    fonds: Mapped[str] = mapped_column(String(16), index=True)
    archival_code: Mapped[str] = mapped_column(String(500), index=True)
    title: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(Text)
    formed_first: Mapped[date] = mapped_column(Date, index=True)
    formed_last: Mapped[date] = mapped_column(Date)
    retention: Mapped[str] = mapped_column(String(16))
    classification: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(64))
    report_sm3: Mapped[str] = mapped_column(String(64))
    report_json: Mapped[str] = mapped_column(Text)
    lineage_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    root_record_id: Mapped[str] = mapped_column(ForeignKey("records.id"))
    root_metadata_salt: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ArchiveFileRow(Base):
    """One file of a stored version, with the record anchoring its SM3."""

    __tablename__ = "archive_files"

    package_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"))
    metadata_salt: Mapped[str] = mapped_column(String(32))


class ArchiveEventRow(Base):
    """One custody event, in its package's hash chain."""

    __tablename__ = "archive_events"
    __table_args__ = (
        UniqueConstraint("package_id", "sequence", name="uq_archive_events_position"),
    )

    id: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(String(32), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_json: Mapped[str] = mapped_column(Text)
    event_hash: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"))
    metadata_salt: Mapped[str] = mapped_column(String(32))


class ArchiveAuditRow(Base):
    """One fixity audit and what it found."""

    __tablename__ = "archive_audits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    files: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    findings_json: Mapped[str] = mapped_column(Text)


class ArchiveAuditRequestRow(Base):
    """A fixity audit of one package asked for by a department, and what it found."""

    __tablename__ = "archive_audit_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    package_id: Mapped[str] = mapped_column(String(32), index=True)
    active_package: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    """The package while the audit is queued or running, NULL after: at most one such
    audit per package, whichever process is asked."""
    requested_by: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
