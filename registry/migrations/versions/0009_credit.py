"""Public-credit records, events, lists, repair applications, checks and reports.

Revision ID: 0009_credit
Revises: 0008_license_signatures
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_credit"
down_revision = "0008_license_signatures"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the credit tables (see registry/credit/models.py)."""
    op.create_table(
        "credit_rule_sets",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("rule_set_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
    )
    op.create_table(
        "credit_records",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("authority_uscc", sa.String(18), nullable=False),
        sa.Column("decision_number", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("subject_code", sa.String(64)),
        sa.Column("subject_category", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("public_json", sa.JSON(), nullable=False),
        sa.Column("authority_json", sa.JSON(), nullable=False),
        sa.Column("field_hashes", sa.JSON(), nullable=False),
        sa.Column("fields_root", sa.String(64), nullable=False),
        sa.Column("window_start", _AT, nullable=False),
        sa.Column("minimum_end", _AT),
        sa.Column("maximum_end", _AT),
        sa.Column("stopped_at", _AT),
        sa.Column("display_end", _AT),
        sa.Column("severity", sa.String(16)),
        sa.Column("rule_set_hash", sa.String(64), sa.ForeignKey("credit_rule_sets.hash")),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("commitment_status", sa.String(16)),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.UniqueConstraint(
            "kind", "authority_uscc", "decision_number", name="uq_credit_records_natural_key"
        ),
    )
    op.create_index("ix_credit_records_subject", "credit_records", ["subject_key"])
    op.create_index("ix_credit_records_display", "credit_records", ["display_end"])
    op.create_index("ix_credit_records_authority_uscc", "credit_records", ["authority_uscc"])
    op.create_index("ix_credit_records_subject_name", "credit_records", ["subject_name"])
    op.create_index("ix_credit_records_subject_code", "credit_records", ["subject_code"])
    op.create_table(
        "credit_record_versions",
        sa.Column("record_id", sa.String(64), sa.ForeignKey("credit_records.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("public_json", sa.JSON(), nullable=False),
        sa.Column("authority_json", sa.JSON(), nullable=False),
        sa.Column("field_hashes", sa.JSON(), nullable=False),
        sa.Column("fields_root", sa.String(64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
    )
    op.create_table(
        "credit_events",
        sa.Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("record_id", sa.String(64), sa.ForeignKey("credit_records.id")),
        sa.Column("rule_set_hash", sa.String(64), sa.ForeignKey("credit_rule_sets.hash")),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer()),
        sa.Column("at", _AT, nullable=False),
        sa.Column("changed_fields", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("metadata_salt", sa.String(32), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("notary_record_id", sa.String(36)),
        sa.Column("created_at", _AT, nullable=False),
    )
    op.create_index("ix_credit_events_pending", "credit_events", ["client_id", "state"])
    op.create_index("ix_credit_events_record_id", "credit_events", ["record_id"])
    op.create_index("ix_credit_events_notary_record_id", "credit_events", ["notary_record_id"])
    op.create_table(
        "credit_list_memberships",
        sa.Column("record_id", sa.String(64), sa.ForeignKey("credit_records.id"), primary_key=True),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("list_type", sa.String(8), nullable=False),
        sa.Column("list_name", sa.String(200), nullable=False),
        sa.Column("entry_date", sa.Date(), nullable=False),
        sa.Column("planned_exit_date", sa.Date()),
        sa.Column("exit_date", sa.Date()),
        sa.Column("exit_reason", sa.Text()),
        sa.Column("basis_records", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_credit_list_memberships_subject_key", "credit_list_memberships", ["subject_key"]
    )
    op.create_table(
        "credit_repair_applications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("record_id", sa.String(64), sa.ForeignKey("credit_records.id"), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("evidence_sealed", sa.Text(), nullable=False),
        sa.Column("evidence_hash", sa.String(64), nullable=False),
        sa.Column("obligations_fulfilled", sa.Boolean(), nullable=False),
        sa.Column("applied_at", _AT, nullable=False),
        sa.Column("deadline", _AT, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_at", _AT),
        sa.Column("decision_reason", sa.Text()),
        sa.Column("decided_by", sa.String(36), sa.ForeignKey("clients.id")),
    )
    for column in ("record_id", "subject_key", "deadline", "state"):
        op.create_index(
            f"ix_credit_repair_applications_{column}", "credit_repair_applications", [column]
        )
    op.create_table(
        "credit_checks",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("checker_uscc", sa.String(18), nullable=False),
        sa.Column("checker_name", sa.String(200), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("activity", sa.String(100), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("at", _AT, nullable=False),
    )
    op.create_index("ix_credit_checks_subject_key", "credit_checks", ["subject_key"])


def downgrade() -> None:
    """Drop the credit tables."""
    for table in (
        "credit_checks",
        "credit_repair_applications",
        "credit_list_memberships",
        "credit_events",
        "credit_record_versions",
        "credit_records",
        "credit_rule_sets",
    ):
        op.drop_table(table)
