"""Licenses carry the issuing department's signature: each license keeps the key of the
client that signed its commitment, the signature and the commitment (NULL for licenses
issued before departments signed). A record of a bulk request signed once (over the Merkle
root of the request's commitments) keeps its path to that root.

Revision ID: 0008_license_signatures
Revises: 0007_sealed_license_holders
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_license_signatures"
down_revision = "0007_sealed_license_holders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add licenses.department_key, department_signature and commitment, and
    records.department_proof."""
    with op.batch_alter_table("licenses") as batch:
        batch.add_column(sa.Column("department_key", sa.String(130), nullable=True))
        batch.add_column(sa.Column("department_signature", sa.Text(), nullable=True))
        batch.add_column(sa.Column("commitment", sa.String(64), nullable=True))
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("department_proof", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the signature columns."""
    with op.batch_alter_table("records") as batch:
        batch.drop_column("department_proof")
    with op.batch_alter_table("licenses") as batch:
        batch.drop_column("commitment")
        batch.drop_column("department_signature")
        batch.drop_column("department_key")
