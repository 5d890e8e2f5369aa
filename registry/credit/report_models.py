"""The table of issued credit reports, on the registry's shared declarative base; created by
the migration ``0010_credit_reports``.

A report is kept as issued: its content (JSON), its PDF and the PDF's SM3, which a credit
event (kind ``credit_report``) carries through the shared anchoring pipeline once the
issuing department has signed it. The genuine-check page finds a report by its id (the QR
code) or by the SM3 of an uploaded PDF."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import Base

__all__ = ["CreditReportRow"]


class CreditReportRow(Base):
    """One issued credit report."""

    __tablename__ = "credit_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The report id (a UUID), printed on the report and in its QR code."""
    kind: Mapped[str] = mapped_column(String(16))
    """A :class:`credit.report.ReportKind`."""
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    """The issuing department's client."""
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    """Keyed hash of the subject's identifier (as for records)."""
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The instant the report speaks of."""
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    content_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The report's content (:func:`credit.report.report_payload`)."""
    content_hash: Mapped[str] = mapped_column(String(64))
    """SM3 of the content's canonical JSON."""
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    """The PDF as issued."""
    pdf_sm3: Mapped[str] = mapped_column(String(64), unique=True)
    """SM3 of the PDF: the digest anchored."""
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    """The credit event (``credit_events.id``) that anchors the PDF's SM3."""
