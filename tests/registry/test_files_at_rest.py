"""Files the registry keeps at rest: its SQLite database (and the -wal and -shm files
beside it) is created 0600 whatever the umask, an older one is tightened to 0600, and a
password file that its group or others may read is refused with a clear error, at
startup included."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from registry_harness import TrustChain, registry_settings
from sqlalchemy import text

from registry.app import create_app
from registry.db import Database
from registry.settings import InsecureSecretFile, RegistrySettings

pytestmark = pytest.mark.no_database


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make new files world-readable (0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_and_its_side_files_are_created_0600(
    tmp_path: Path, open_umask: None
) -> None:
    settings = RegistrySettings(data_dir=tmp_path / "data")
    db = Database.open(settings)
    try:
        with db.session() as session:
            session.execute(text("CREATE TABLE probe (x INTEGER)"))
            session.execute(text("INSERT INTO probe VALUES (1)"))
        database = tmp_path / "data" / "registry.db"
        side_files = [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(path.exists() for path in side_files)
        assert {path.name: mode(path) for path in [database, *side_files]} == {
            "registry.db": 0o600,
            "registry.db-wal": 0o600,
            "registry.db-shm": 0o600,
        }
        assert mode(tmp_path / "data") == 0o700
    finally:
        db.close()


def test_an_older_world_readable_database_is_tightened(tmp_path: Path, open_umask: None) -> None:
    settings = RegistrySettings(data_dir=tmp_path)
    Database.open(settings).close()
    database = tmp_path / "registry.db"
    database.chmod(0o644)
    Database.open(settings).close()
    assert mode(database) == 0o600


@pytest.mark.parametrize("loose_mode", [0o640, 0o604, 0o660, 0o644])
def test_a_password_file_open_to_others_is_refused(
    trust_chain: TrustChain, tmp_path: Path, loose_mode: int
) -> None:
    password_file = tmp_path / "password"
    password_file.write_bytes(trust_chain.password_file.read_bytes())
    password_file.chmod(loose_mode)
    settings = registry_settings(
        trust_chain, tmp_path / "registry", None, signer_password_file=password_file
    )
    with pytest.raises(InsecureSecretFile, match="chmod 600"):
        settings.signer_password()
    with pytest.raises(InsecureSecretFile), TestClient(create_app(settings)):
        pass
    password_file.chmod(0o600)
    assert settings.signer_password() == trust_chain.password_file.read_bytes().strip()
