"""What a subject sees beyond the accesses under its authorizations: whom an archive
package is about (its subject's blind index, never the identifier), the credit checks made
of it (each entry signed by the registry and anchored, as access log entries are), and the
repair applications it filed itself (the signed terms, once: a replay collides on their
hash).

Revision ID: 0016_subject_trails
Revises: 0015_license_status_positions
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_subject_trails"
down_revision = "0015_license_status_positions"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create archive_subjects, credit_check_entries and credit_repair_filings."""
    op.create_table(
        "archive_subjects",
        sa.Column("package_id", sa.String(32), primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_index", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_archive_subjects_subject_index", "archive_subjects", ["subject_index"])
    op.create_table(
        "credit_check_entries",
        sa.Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column(
            "record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False, unique=True
        ),
        sa.Column("subject_index", sa.String(64), nullable=False),
        sa.Column("checker_uscc", sa.String(18), nullable=False),
        sa.Column("checker_name", sa.String(200), nullable=False),
        sa.Column("activity", sa.String(100), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("entry_json", sa.Text(), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("metadata_salt", sa.String(32), nullable=False),
        sa.Column("registry_signature", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_credit_check_entries_subject_index", "credit_check_entries", ["subject_index"]
    )
    op.create_table(
        "credit_repair_filings",
        sa.Column(
            "application_id",
            sa.String(36),
            sa.ForeignKey("credit_repair_applications.id"),
            primary_key=True,
        ),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_index", sa.String(64), nullable=False),
        sa.Column("filed_by", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
        sa.Column("terms_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_credit_repair_filings_subject_index", "credit_repair_filings", ["subject_index"]
    )


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("credit_repair_filings")
    op.drop_table("credit_check_entries")
    op.drop_table("archive_subjects")
