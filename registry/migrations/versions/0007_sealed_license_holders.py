"""Licenses keep their holder's identifier and commitment salt sealed (SM4 under the
registry's data key): licenses.holder_id_sealed, and licenses.salt widened to hold a
sealed value. Licenses stored before keep theirs in clear (the key is not available to
migrations); they are shown masked all the same.

Revision ID: 0007_sealed_license_holders
Revises: 0006_record_revocations
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sealed_license_holders"
down_revision = "0006_record_revocations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add licenses.holder_id_sealed; widen licenses.salt."""
    with op.batch_alter_table("licenses") as batch:
        batch.add_column(sa.Column("holder_id_sealed", sa.Text(), nullable=True))
        batch.alter_column("salt", existing_type=sa.String(64), type_=sa.Text())


def downgrade() -> None:
    """Drop licenses.holder_id_sealed (sealed salts would not fit back: refuse if any)."""
    with op.batch_alter_table("licenses") as batch:
        batch.alter_column("salt", existing_type=sa.Text(), type_=sa.String(64))
        batch.drop_column("holder_id_sealed")
