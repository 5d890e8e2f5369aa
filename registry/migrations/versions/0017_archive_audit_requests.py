"""Fixity audits of one archive package asked for on demand: who asked, when, where the
audit is, and its result (findings, the 四性 report of each version). ``active_package``
holds the package while its audit is queued or running (unique: one at a time).

Revision ID: 0017_archive_audit_requests
Revises: 0016_subject_trails
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_archive_audit_requests"
down_revision = "0016_subject_trails"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create archive_audit_requests."""
    op.create_table(
        "archive_audit_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("package_id", sa.String(32), nullable=False),
        sa.Column("active_package", sa.String(32), nullable=True, unique=True),
        sa.Column("requested_by", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_archive_audit_requests_package_id", "archive_audit_requests", ["package_id"]
    )


def downgrade() -> None:
    """Drop archive_audit_requests."""
    op.drop_index("ix_archive_audit_requests_package_id", table_name="archive_audit_requests")
    op.drop_table("archive_audit_requests")
