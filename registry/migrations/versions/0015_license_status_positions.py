"""One signed license status change per history position: a unique constraint on
license_operations (identifier, sequence), so that two status changes signed for the same
position of a license cannot both be stored and sent (sequence is NULL for issue and change,
and NULLs do not collide).

Revision ID: 0015_license_status_positions
Revises: 0014_signed_license_status
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0015_license_status_positions"
down_revision = "0014_signed_license_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add uq_license_ops_identifier_sequence."""
    with op.batch_alter_table("license_operations") as batch:
        batch.create_unique_constraint(
            "uq_license_ops_identifier_sequence", ["identifier", "sequence"]
        )


def downgrade() -> None:
    """Drop uq_license_ops_identifier_sequence."""
    with op.batch_alter_table("license_operations") as batch:
        batch.drop_constraint("uq_license_ops_identifier_sequence", type_="unique")
