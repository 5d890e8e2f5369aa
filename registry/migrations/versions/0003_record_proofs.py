"""Each sealed record keeps the siblings of its Merkle inclusion proof, written when its
batch is sealed, so that serving a proof never rebuilds the batch's tree; and the
per-record bundle cache goes (a bundle is the record's part on its batch's shared chain
half, rebuilt at will).

Revision ID: 0003_record_proofs
Revises: 0002_licenses
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_record_proofs"
down_revision = "0002_licenses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add records.merkle_path (empty for records sealed before: their tree is rebuilt);
    drop proof_bundles."""
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("merkle_path", sa.LargeBinary(), nullable=True))
    op.drop_table("proof_bundles")


def downgrade() -> None:
    """Bring proof_bundles back (empty) and drop records.merkle_path."""
    op.create_table(
        "proof_bundles",
        sa.Column("record_id", sa.String(36), sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("bundle_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("records") as batch:
        batch.drop_column("merkle_path")
