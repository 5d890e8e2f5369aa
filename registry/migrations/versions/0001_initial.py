"""The initial schema: clients, nonces, batches, records, outbox, proof bundles, chain values.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "clients",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("public_key", sa.String(130), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "nonces",
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), primary_key=True),
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "batches",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("root", sa.String(64), nullable=False, unique=True),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("metadata_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(64)),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("block_hash", sa.String(64)),
        sa.Column("evidence_json", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchored_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "records",
        sa.Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("client_id", sa.String(36), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("metadata_hash", sa.String(64), nullable=False),
        sa.Column("field_hashes", sa.JSON(), nullable=False),
        sa.Column("field_salts", sa.JSON(), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batch_id", SEQUENCE, sa.ForeignKey("batches.id")),
        sa.Column("leaf_index", sa.Integer()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("client_id", "idempotency_key", name="uq_records_client_idempotency"),
    )
    op.create_index("ix_records_client_id", "records", ["client_id"])
    op.create_index("ix_records_digest", "records", ["digest"])
    op.create_index("ix_records_batch_id", "records", ["batch_id"])
    op.create_index("ix_records_status", "records", ["status"])
    op.create_table(
        "outbox",
        sa.Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        sa.Column("batch_id", SEQUENCE, sa.ForeignKey("batches.id"), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("raw_tx", sa.Text()),
        sa.Column("tx_hash", sa.String(64)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "proof_bundles",
        sa.Column("record_id", sa.String(36), sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("bundle_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "chain_values",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop every table."""
    for table in ("chain_values", "proof_bundles", "outbox", "records", "batches", "nonces"):
        op.drop_table(table)
    op.drop_table("clients")
