"""Each client is bound to the issuer codes (USCCs, administrative division codes) it may
issue licenses under; clients registered before are bound to their own USCC (NULL).

Revision ID: 0004_client_issuer_codes
Revises: 0003_record_proofs
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_client_issuer_codes"
down_revision = "0003_record_proofs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add clients.issuer_codes."""
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("issuer_codes", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop clients.issuer_codes."""
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("issuer_codes")
