"""E-archive packages, files, custody events and audits.

Revision ID: 0012_archives
Revises: 0011_authorizations
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0012_archives"
down_revision = "0011_authorizations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the tables arrive with the domain."""


def downgrade() -> None:
    """Nothing to undo."""
