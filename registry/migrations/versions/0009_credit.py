"""Public-credit records, events, lists, repair applications, checks and reports.

Revision ID: 0009_credit
Revises: 0008_license_signatures
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0009_credit"
down_revision = "0008_license_signatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the tables arrive with the domain."""


def downgrade() -> None:
    """Nothing to undo."""
