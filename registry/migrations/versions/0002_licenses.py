"""E-licenses: the licenses table (clear metadata, holder salt, chain facts) and the
license_operations outbox of LicenseRegistry transactions.

Revision ID: 0002_licenses
Revises: 0001_initial
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_licenses"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the license tables."""
    op.create_table(
        "licenses",
        sa.Column("identifier", sa.String(128), primary_key=True),
        sa.Column("id_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("department", sa.String(18), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("holder_commitment", sa.String(64), nullable=False),
        sa.Column("metadata_hash", sa.String(64), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("predecessor", sa.String(128)),
        sa.Column("successor", sa.String(128)),
        sa.Column("tx_hash", sa.String(64)),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("block_hash", sa.String(64)),
        sa.Column("anchored_at", sa.DateTime(timezone=True)),
        sa.Column("evidence_json", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_licenses_client_id", "licenses", ["client_id"])
    op.create_index("ix_licenses_department", "licenses", ["department"])
    op.create_table(
        "license_operations",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column(
            "identifier", sa.String(128), sa.ForeignKey("licenses.identifier"), nullable=False
        ),
        sa.Column("new_identifier", sa.String(128), sa.ForeignKey("licenses.identifier")),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("tx_hash", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "client_id", "idempotency_key", name="uq_license_ops_client_idempotency"
        ),
    )
    op.create_index("ix_license_operations_identifier", "license_operations", ["identifier"])
    op.create_index("ix_license_operations_state", "license_operations", ["state"])


def downgrade() -> None:
    """Drop the license tables."""
    op.drop_table("license_operations")
    op.drop_table("licenses")
