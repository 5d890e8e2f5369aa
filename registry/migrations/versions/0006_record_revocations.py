"""Record revocations: the outbox of ``Notary.revokeLeaf`` transactions the registry makes
when a department revokes a record it notarized.

Revision ID: 0006_record_revocations
Revises: 0005_department_signed_records
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_record_revocations"
down_revision = "0005_department_signed_records"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create record_revocations."""
    op.create_table(
        "record_revocations",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column(
            "record_id", sa.String(36), sa.ForeignKey("records.id"), nullable=False, unique=True
        ),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("raw_tx", sa.Text()),
        sa.Column("tx_hash", sa.String(64)),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_record_revocations_state", "record_revocations", ["state"])


def downgrade() -> None:
    """Drop record_revocations."""
    op.drop_index("ix_record_revocations_state", table_name="record_revocations")
    op.drop_table("record_revocations")
