"""Licenses carry the issuing department's signature: each license keeps the key of the
client that signed its commitment, the signature and the commitment (NULL for licenses
issued before departments signed).

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
    """Add licenses.department_key, department_signature and commitment."""
    with op.batch_alter_table("licenses") as batch:
        batch.add_column(sa.Column("department_key", sa.String(130), nullable=True))
        batch.add_column(sa.Column("department_signature", sa.Text(), nullable=True))
        batch.add_column(sa.Column("commitment", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the signature columns."""
    with op.batch_alter_table("licenses") as batch:
        batch.drop_column("commitment")
        batch.drop_column("department_signature")
        batch.drop_column("department_key")
