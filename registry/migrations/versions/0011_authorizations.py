"""Data-sharing authorizations, their anchored events, and the gateway's access log.

Revision ID: 0011_authorizations
Revises: 0010_credit_reports
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_authorizations"
down_revision = "0010_credit_reports"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the authorization and access log tables."""
    op.create_table(
        "authorizations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_commitment", sa.String(64), nullable=False),
        sa.Column("subject_index", sa.String(64), nullable=False),
        sa.Column("subject_sealed", sa.Text(), nullable=False),
        sa.Column("subject_salt_sealed", sa.Text(), nullable=False),
        sa.Column("controller", sa.String(18), nullable=False),
        sa.Column("recipient", sa.String(18), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
        sa.Column("terms_hash", sa.String(64), nullable=False),
        sa.Column("consent_json", sa.Text()),
        sa.Column("requested_by", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("granted_at", sa.BigInteger()),
        sa.Column("uses_made", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger()),
        sa.Column("revoked_by", sa.String(64)),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_authorizations_subject_index", "authorizations", ["subject_index"])
    op.create_index("ix_authorizations_recipient", "authorizations", ["recipient"])
    op.create_table(
        "authorization_events",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column(
            "authorization_id", sa.String(36), sa.ForeignKey("authorizations.id"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.Column(
            "record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False, unique=True
        ),
        sa.Column("metadata_salt", sa.String(32), nullable=False),
        sa.Column("registry_signature", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_authorization_events_authorization_id", "authorization_events", ["authorization_id"]
    )
    op.create_table(
        "access_streams",
        sa.Column("stream", sa.String(36), primary_key=True),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
    )
    op.create_table(
        "access_log",
        sa.Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column(
            "record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False, unique=True
        ),
        sa.Column("stream", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("authorization_id", sa.String(36)),
        sa.Column("caller_client", sa.String(36), nullable=False),
        sa.Column("caller_uscc", sa.String(18), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("disclose_after", sa.BigInteger()),
        sa.Column("entry_json", sa.Text(), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("metadata_salt", sa.String(32), nullable=False),
        sa.Column("registry_signature", sa.Text(), nullable=False),
        sa.UniqueConstraint("stream", "position", name="uq_access_log_position"),
    )
    op.create_index("ix_access_log_authorization_id", "access_log", ["authorization_id"])
    op.create_index("ix_access_log_caller_uscc", "access_log", ["caller_uscc"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("access_log")
    op.drop_table("access_streams")
    op.drop_table("authorization_events")
    op.drop_table("authorizations")
