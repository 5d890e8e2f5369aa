"""Authorizations: their window's end and use limit as columns, and when their expiry was
recorded, so that the expiry worker finds what is due through an index and records each
expiry once (a conditional update claims it).

Revision ID: 0013_authorization_expiry
Revises: 0012_archives
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0013_authorization_expiry"
down_revision = "0012_archives"
branch_labels = None
depends_on = None

OPEN = "expired_at IS NULL AND revoked_at IS NULL AND granted_at IS NOT NULL"
"""Authorizations in force whose expiry is not recorded (the worker's candidates)."""


def upgrade() -> None:
    """Add ``valid_until``, ``max_uses`` and ``expired_at``, fill the first two from the
    terms, and index the candidates of the expiry worker."""
    with op.batch_alter_table("authorizations") as batch:
        batch.add_column(sa.Column("valid_until", sa.BigInteger()))
        batch.add_column(sa.Column("max_uses", sa.Integer()))
        batch.add_column(sa.Column("expired_at", sa.BigInteger()))
    table = sa.table(
        "authorizations",
        sa.column("id", sa.String()),
        sa.column("terms_json", sa.Text()),
        sa.column("valid_until", sa.BigInteger()),
        sa.column("max_uses", sa.Integer()),
    )
    connection = op.get_bind()
    for row_id, terms_json in connection.execute(sa.select(table.c.id, table.c.terms_json)).all():
        terms = json.loads(terms_json)
        connection.execute(
            table.update()
            .where(table.c.id == row_id)
            .values(valid_until=int(terms["validUntil"]), max_uses=terms.get("maxUses"))
        )
    where = sa.text(OPEN)
    op.create_index(
        "ix_authorizations_open_until",
        "authorizations",
        ["valid_until"],
        sqlite_where=where,
        postgresql_where=where,
    )
    op.create_index(
        "ix_authorizations_open_uses",
        "authorizations",
        ["max_uses"],
        sqlite_where=where,
        postgresql_where=where,
    )
    op.create_index("ix_authorizations_created", "authorizations", ["created_at", "id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_authorizations_created", "authorizations")
    op.drop_index("ix_authorizations_open_uses", "authorizations")
    op.drop_index("ix_authorizations_open_until", "authorizations")
    with op.batch_alter_table("authorizations") as batch:
        batch.drop_column("expired_at")
        batch.drop_column("max_uses")
        batch.drop_column("valid_until")
