"""Data-sharing authorizations, gateway access log.

Revision ID: 0011_authorizations
Revises: 0010_credit_reports
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0011_authorizations"
down_revision = "0010_credit_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the tables arrive with the domain."""


def downgrade() -> None:
    """Nothing to undo."""
