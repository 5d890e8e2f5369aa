"""Shared fixtures for the SM2/SM3/SM4 tests: the published vectors and both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crypto_vectors import load_vectors

from chain.crypto.backend import Backend, native_backend, pure_backend

BACKENDS: dict[str, Callable[[], Backend]] = {
    "native": native_backend,
    "pure": lambda: pure_backend(allow_signing=True),
}


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return load_vectors()


@pytest.fixture(params=sorted(BACKENDS), scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    selected: Backend = BACKENDS[request.param]()
    return selected
