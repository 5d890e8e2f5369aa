"""Licenses carry the issuing department's signature.

Revision ID: 0008_license_signatures
Revises: 0007_sealed_license_holders
Create Date: 2026-12-06
"""

from __future__ import annotations

revision = "0008_license_signatures"
down_revision = "0007_sealed_license_holders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the tables arrive with the domain."""


def downgrade() -> None:
    """Nothing to undo."""
