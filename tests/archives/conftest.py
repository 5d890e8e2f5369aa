"""Fixtures of the archive domain tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


@pytest.fixture
def now() -> datetime:
    """The moment checks run at."""
    return datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
