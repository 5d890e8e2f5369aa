"""Credit reports: their content, PDF and the PDF's SM3 (anchored through a credit event),
looked up by id or by the SM3 of an uploaded PDF.

Revision ID: 0010_credit_reports
Revises: 0009_credit
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_credit_reports"
down_revision = "0009_credit"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``credit_reports`` (see registry/credit/report_models.py)."""
    op.create_table(
        "credit_reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("as_of", _AT, nullable=False),
        sa.Column("issued_at", _AT, nullable=False),
        sa.Column("content_json", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("pdf_sm3", sa.String(64), nullable=False, unique=True),
        sa.Column("event_id", sa.String(36), nullable=False),
    )
    op.create_index("ix_credit_reports_subject_key", "credit_reports", ["subject_key"])
    op.create_index("ix_credit_reports_event_id", "credit_reports", ["event_id"])


def downgrade() -> None:
    """Drop ``credit_reports``."""
    op.drop_index("ix_credit_reports_event_id", table_name="credit_reports")
    op.drop_index("ix_credit_reports_subject_key", table_name="credit_reports")
    op.drop_table("credit_reports")
