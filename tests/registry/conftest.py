"""Fixtures of the registry tests: one dev chain node (a real process) with the trust
contracts bootstrapped for the whole session, and a fresh registry database per test —
SQLite in tmp_path, or PostgreSQL when LIANXIN_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import (
    CLIENT_DEPARTMENT_NAME,
    CLIENT_KEY,
    CLIENT_USCC,
    DATABASE_URL_ENV,
    DEPARTMENT_USCC,
    DevChain,
    TrustChain,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    registry_settings,
    run_cli,
)

from registry.bootstrap import bootstrap
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.department_keys import register_department_key
from registry.settings import RegistrySettings
from sdk.account import Sm2Account


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
        settings = RegistrySettings(
            data_dir=bootstrap_dir,
            node_url=chain.url,
            signer_keystore=root / "keys" / "dept-a.json",
            signer_password_file=root / "keystore-password",
        )
        db = Database.open(settings)
        gateway = ChainGateway(settings, db)
        governance = Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
        outcome = bootstrap(
            gateway, governance, uscc=DEPARTMENT_USCC, department_name="某区大数据管理局"
        )
        register_department_key(
            gateway,
            governance,
            uscc=CLIENT_USCC,
            department_name=CLIENT_DEPARTMENT_NAME,
            public_key=CLIENT_KEY.public_key.to_bytes(),
        )
        gateway.close()
        db.close()
        yield TrustChain(
            chain=chain,
            addresses={
                "issuer_registry": outcome.issuer_registry,
                "notary": outcome.notary,
                "license_registry": outcome.license_registry,
            },
        )
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
