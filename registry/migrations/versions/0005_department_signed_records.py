"""Records signed by their department, with commitments that hide what they commit to:
each record keeps its department's key and signature over the commitment; the salts of
field hashes are no longer kept beside the hashes, and the ones kept before are erased
(the departments got them in the answer to their requests).

Revision ID: 0005_department_signed_records
Revises: 0004_client_issuer_codes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_department_signed_records"
down_revision = "0004_client_issuer_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add records.department_key and department_signature; make field_salts nullable and
    erase it."""
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("department_key", sa.String(130), nullable=True))
        batch.add_column(sa.Column("department_signature", sa.Text(), nullable=True))
        batch.alter_column("field_salts", existing_type=sa.JSON(), nullable=True)
    op.execute(sa.text("UPDATE records SET field_salts = NULL"))
    op.create_index("ix_records_department_key", "records", ["department_key", "seq"])


def downgrade() -> None:
    """Drop the department columns (erased salts stay erased: they are written as {})."""
    op.drop_index("ix_records_department_key", table_name="records")
    op.execute(sa.text("UPDATE records SET field_salts = '{}' WHERE field_salts IS NULL"))
    with op.batch_alter_table("records") as batch:
        batch.alter_column("field_salts", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("department_signature")
        batch.drop_column("department_key")
