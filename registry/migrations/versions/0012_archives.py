"""E-archive packages, files, custody events and audits.

Revision ID: 0012_archives
Revises: 0011_authorizations
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_archives"
down_revision = "0011_authorizations"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the archive tables."""
    op.create_table(
        "archive_packages",
        sa.Column("package_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("fonds", sa.String(16), nullable=False),
        sa.Column("archival_code", sa.String(500), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("creator", sa.Text(), nullable=False),
        sa.Column("formed_first", sa.Date(), nullable=False),
        sa.Column("formed_last", sa.Date(), nullable=False),
        sa.Column("retention", sa.String(16), nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("report_sm3", sa.String(64), nullable=False),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("lineage_json", sa.Text()),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("root_record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False),
        sa.Column("root_metadata_salt", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True)),
    )
    for column in ("fonds", "archival_code", "formed_first"):
        op.create_index(f"ix_archive_packages_{column}", "archive_packages", [column])
    op.create_table(
        "archive_files",
        sa.Column("package_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("sm3", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False),
        sa.Column("metadata_salt", sa.String(32), nullable=False),
    )
    op.create_table(
        "archive_events",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("package_id", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.Column("event_hash", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False),
        sa.Column("metadata_salt", sa.String(32), nullable=False),
        sa.UniqueConstraint("package_id", "sequence", name="uq_archive_events_position"),
    )
    op.create_index("ix_archive_events_package_id", "archive_events", ["package_id"])
    op.create_table(
        "archive_audits",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("findings_json", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop the archive tables."""
    op.drop_table("archive_audits")
    op.drop_index("ix_archive_events_package_id", table_name="archive_events")
    op.drop_table("archive_events")
    op.drop_table("archive_files")
    for column in ("fonds", "archival_code", "formed_first"):
        op.drop_index(f"ix_archive_packages_{column}", table_name="archive_packages")
    op.drop_table("archive_packages")
