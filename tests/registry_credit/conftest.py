"""Fixtures of the public-credit registry tests: one dev chain node (a real process) with
the trust contracts bootstrapped for the session, and per test a registry app on a fresh
database (SQLite, or PostgreSQL with LIANXIN_TEST_DATABASE_URL) whose credit clock is a
fixed, movable one."""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_TESTS / "registry"))
sys.path.insert(0, str(_TESTS / "credit"))
sys.path.insert(0, str(_TESTS / "e2e"))

import e2e_harness  # noqa: E402
from credit_harness import Clock, CreditApp  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from registry_harness import (  # noqa: E402
    DATABASE_URL_ENV,
    DevChain,
    TrustChain,
    bootstrap_trust,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    new_client,
    registry_settings,
    run_cli,
    seed_sqlite,
)

from registry.app import create_app  # noqa: E402
from registry.credit.keys import CreditKeys  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.settings import DEFAULT_MAX_IMPORT_BYTES, RegistrySettings  # noqa: E402
from sdk.credit_client import CreditClient  # noqa: E402

START = datetime.datetime(2023, 6, 1, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
"""Where the fixed clock starts."""

NODE_START_TIMEOUT_S = 120
"""Longest the session's node may take to answer JSON-RPC after it was started."""


@pytest.fixture(scope="session")
def trust_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrustChain]:
    """A dev chain node with the trust contracts deployed, the registry's key registered,
    and the test department (CLIENT_USCC) with its client key CLIENT_KEY."""
    root = tmp_path_factory.mktemp("credit-trust") / "chain"
    port = free_port()
    result = run_cli("init", str(root), "--dev", "--rpc-port", str(port), "--json")
    assert result.code == 0, result
    chain = DevChain(root=root, port=port, accounts=result.json()["accounts"])
    try:
        # A node's first answer waits for py-evm's imports: well over the harness's 20 s
        # when every core is busy with other suites.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(e2e_harness, "NODE_START_TIMEOUT_S", NODE_START_TIMEOUT_S)
            chain.start_foreground()
        yield bootstrap_trust(chain, root.parent / "bootstrap")
    finally:
        chain.kill_leftovers()


@pytest.fixture
def database_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database when LIANXIN_TEST_DATABASE_URL names a server, else
    None (SQLite in the test's directory)."""
    base = os.environ.get(DATABASE_URL_ENV)
    if not base:
        yield None
        return
    url = create_postgres_database(base, migrated=True)
    try:
        yield url
    finally:
        drop_postgres_database(base, url)


def _credit_app(settings: RegistrySettings, keys: CreditKeys | None) -> Iterator[CreditApp]:
    clock = Clock(START)
    with TestClient(create_app(settings)) as http:
        http.app.state.credit_clock = clock.now  # type: ignore[attr-defined]
        if keys is not None:
            http.app.state.credit_keys = keys  # type: ignore[attr-defined]
        db: Database = http.app.state.registry.db  # type: ignore[attr-defined]
        client, key = new_client(db, ("credit", "verify"))
        sdk = CreditClient("http://testserver", client.id, key, http_client=http, retries=0)
        yield CreditApp(http=http, db=db, clock=clock, sdk=sdk, client_id=client.id, key=key)


@pytest.fixture
def upload_limits() -> tuple[int, int]:
    """``max_upload_bytes`` and ``max_import_bytes`` of :func:`app` (a test module may
    override this fixture)."""
    return 4 * 1024 * 1024, DEFAULT_MAX_IMPORT_BYTES


@pytest.fixture
def app(
    tmp_path: Path, database_url: str | None, upload_limits: tuple[int, int]
) -> Iterator[CreditApp]:
    """The registry app in process without a chain (nothing is anchored: the batcher does
    not run), its credit clock fixed at START, its credit keys from a fixed secret, with
    one department client (roles credit and verify) using the SDK's CreditClient."""
    max_upload_bytes, max_import_bytes = upload_limits
    if database_url is None:
        seed_sqlite(tmp_path / "registry")
    settings = RegistrySettings(
        data_dir=tmp_path / "registry",
        database_url=database_url,
        node_url=f"http://127.0.0.1:{free_port()}",
        run_workers=False,
        max_upload_bytes=max_upload_bytes,
        max_import_bytes=max_import_bytes,
    )
    yield from _credit_app(settings, CreditKeys(b"credit tests: fixed master secret"))


@pytest.fixture
def chain_app(
    trust_chain: TrustChain, tmp_path: Path, database_url: str | None
) -> Iterator[CreditApp]:
    """The registry app in process on the shared dev chain: events are anchored by the
    shared batcher, keys derive from the registry's signing key."""
    settings = registry_settings(
        trust_chain, tmp_path / "registry", database_url, max_upload_bytes=4 * 1024 * 1024
    )
    yield from _credit_app(settings, None)
