"""Fixtures for the e-license domain tests."""

from __future__ import annotations

from typing import Any

import pytest
from license_samples import enterprise_metadata_object

from chain.crypto import PrivateKey


@pytest.fixture
def metadata_object() -> dict[str, Any]:
    """A fresh copy of the enterprise sample metadata as a JSON object."""
    return enterprise_metadata_object()


@pytest.fixture(scope="session")
def signing_key() -> PrivateKey:
    """A token-signing key for the session."""
    return PrivateKey.generate()
