"""A credit record's fields are stored once: its current version's row in
``credit_record_versions`` keeps no copy of the record's public and authority JSON and field
hashes (they are the ``credit_records`` row's); a correction fills them into the row of the
version it supersedes.

An import stored about 14 KB a row, half of it this copy, and encoded and wrote it again for
every new record. Existing rows of current versions lose their copy here (the record row
holds the same values); every older version keeps its own.

Revision ID: 0019_credit_versions_once
Revises: 0018_credit_decision_index
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_credit_versions_once"
down_revision = "0018_credit_decision_index"
branch_labels = None
depends_on = None

_COPIED = ("public_json", "authority_json", "field_hashes")

_CURRENT = (
    "EXISTS (SELECT 1 FROM credit_records AS r WHERE r.id = credit_record_versions.record_id"
    " AND r.version = credit_record_versions.version)"
)


def upgrade() -> None:
    """Make the three copied columns nullable and drop the current versions' copies."""
    with op.batch_alter_table("credit_record_versions") as batch:
        for name in _COPIED:
            batch.alter_column(name, existing_type=sa.JSON(), nullable=True)
    op.execute(
        "UPDATE credit_record_versions SET public_json = NULL, authority_json = NULL,"
        f" field_hashes = NULL WHERE {_CURRENT}"
    )


def downgrade() -> None:
    """Copy the record's fields back into its current version's row; NOT NULL again."""
    for name in _COPIED:
        op.execute(
            f"UPDATE credit_record_versions SET {name} = (SELECT r.{name} FROM credit_records"
            f" AS r WHERE r.id = credit_record_versions.record_id) WHERE {name} IS NULL"
        )
    with op.batch_alter_table("credit_record_versions") as batch:
        for name in _COPIED:
            batch.alter_column(name, existing_type=sa.JSON(), nullable=False)
