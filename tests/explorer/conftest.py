"""Fixtures of the explorer tests: the shared dev chain with real activity, a fresh index
database per test (SQLite in tmp_path, or a new PostgreSQL database on the server named by
LIANXIN_TEST_DATABASE_URL), and an index of the shared chain built once per module."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_activity import Activity, DevChain, shared_chain

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "registry"))

DATABASE_URL_ENV = "LIANXIN_TEST_DATABASE_URL"


def fresh_database_url(directory: Path) -> Iterator[str]:
    """A new empty database: PostgreSQL when configured, else an SQLite file."""
    base = os.environ.get(DATABASE_URL_ENV)
    if not base:
        yield f"sqlite:///{directory / 'explorer.db'}"
        return
    from registry_harness import create_postgres_database, drop_postgres_database

    url = create_postgres_database(base)
    try:
        yield url
    finally:
        drop_postgres_database(base, url)


@pytest.fixture(scope="session")
def audited() -> tuple[DevChain, Activity]:
    """The shared chain and what was done on it."""
    return shared_chain()


@pytest.fixture
def index_url(tmp_path: Path) -> Iterator[str]:
    """A fresh index database for one test."""
    yield from fresh_database_url(tmp_path)


@pytest.fixture(scope="module")
def module_index_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh index database for one module."""
    yield from fresh_database_url(tmp_path_factory.mktemp("index"))
