"""Fixtures of the registry tests: one dev chain node (a real process) with the trust
contracts bootstrapped for the whole session, and a fresh registry database per test —
SQLite in tmp_path, or PostgreSQL when LIANXIN_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import (
    DATABASE_URL_ENV,
    DevChain,
    TrustChain,
    bootstrap_trust,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    registry_settings,
    run_cli,
)

from registry.settings import RegistrySettings


@pytest.fixture(scope="session")
def trust_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrustChain]:
    """A dev chain node with IssuerRegistry, Notary and LicenseRegistry deployed by the
    governance account (admin), dept-a's key registered as the registry's issuer key, and
    the test department (CLIENT_USCC) with its client key CLIENT_KEY."""
    root = tmp_path_factory.mktemp("trust") / "chain"
    port = free_port()
    result = run_cli("init", str(root), "--dev", "--rpc-port", str(port), "--json")
    assert result.code == 0, result
    chain = DevChain(root=root, port=port, accounts=result.json()["accounts"])
    try:
        chain.start_foreground()
        bootstrap_dir = root.parent / "bootstrap"
        yield bootstrap_trust(chain, bootstrap_dir)
    finally:
        chain.kill_leftovers()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str | None]:
    """A fresh database for one test: a new PostgreSQL database on the server named by
    LIANXIN_TEST_DATABASE_URL, or None (SQLite under the test's data dir)."""
    base = os.environ.get(DATABASE_URL_ENV)
    if not base:
        yield None
        return
    url = create_postgres_database(base, migrated=True)
    try:
        yield url
    finally:
        drop_postgres_database(base, url)


@pytest.fixture
def settings(trust_chain: TrustChain, tmp_path: Path, database_url: str | None) -> RegistrySettings:
    """Registry settings on the shared chain and this test's database."""
    return registry_settings(trust_chain, tmp_path / "registry", database_url)
