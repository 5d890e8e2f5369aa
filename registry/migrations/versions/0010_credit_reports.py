"""Credit reports: their content hash, anchoring and the genuine-check page's lookups.

Revision ID: 0010_credit_reports
Revises: 0009_credit
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0010_credit_reports"
down_revision = "0009_credit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the tables arrive with the domain."""


def downgrade() -> None:
    """Nothing to undo."""
