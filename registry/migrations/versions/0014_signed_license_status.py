"""License status changes carry the issuing department's signature: each suspend, resume,
revoke or expire operation keeps the key of the client that signed it, the signature, the
commitment it signed, the history position it takes on chain, and (once certified) the
chain half of its proof (NULL for issue, change, and status changes made before
departments signed them).

Revision ID: 0014_signed_license_status
Revises: 0013_authorization_expiry
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_signed_license_status"
down_revision = "0013_authorization_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add license_operations.department_key, department_signature, commitment, sequence
    and evidence_json."""
    with op.batch_alter_table("license_operations") as batch:
        batch.add_column(sa.Column("department_key", sa.String(130), nullable=True))
        batch.add_column(sa.Column("department_signature", sa.Text(), nullable=True))
        batch.add_column(sa.Column("commitment", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("evidence_json", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the status change signature columns."""
    with op.batch_alter_table("license_operations") as batch:
        batch.drop_column("evidence_json")
        batch.drop_column("sequence")
        batch.drop_column("commitment")
        batch.drop_column("department_signature")
        batch.drop_column("department_key")
