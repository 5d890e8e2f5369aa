"""``lianxin registry backup`` / ``restore`` refusals, on a registry database of its own
(SQLite in tmp_path, or PostgreSQL when LIANXIN_TEST_DATABASE_URL is set): a destination
that is not empty, a tampered backup (any byte of any file: hypothesis), a file added to a
backup or a manifest naming a path outside it, a target database that holds tables (and
--force), a package already in the target store, pg_dump missing or too old, and the store's
work areas and versions the database copy does not name, which are left out and said so.
Under load on real processes: tests/e2e/test_registry_backup_process.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_harness import DATABASE_URL_ENV, create_postgres_database, drop_postgres_database

from archives.hashing import sm3_file
from registry.backup import (
    BackupTampered,
    DestinationNotEmpty,
    TargetNotEmpty,
    backup_registry,
    read_registry_backup,
    restore_registry,
)
from registry.backup_database import PgToolMissing, PgToolTooOld, pg_environment, pg_tool
from registry.db import Database
from registry.settings import RegistrySettings


def _settings(data_dir: Path, database_url: str | None) -> RegistrySettings:
    return RegistrySettings(data_dir=data_dir, database_url=database_url)


@pytest.fixture
def source(tmp_path: Path, database_url: str | None) -> RegistrySettings:
    """A migrated registry with a store holding one stray version and the upload spool."""
    settings = _settings(tmp_path / "registry", database_url)
    Database.open(settings).close()
    store = tmp_path / "registry" / "archives"
    (store / ".spool" / "upload-1").mkdir(parents=True)
    (store / ".spool" / "upload-1" / "part").write_bytes(b"half an upload")
    (store / "abc123" / "v1" / "bag").mkdir(parents=True)
    (store / "abc123" / "v1" / "package.json").write_text("{}", encoding="utf-8")
    return settings


@pytest.fixture
def target(tmp_path: Path) -> Iterator[RegistrySettings]:
    """Settings of an empty registry to restore into (a fresh data dir; on PostgreSQL a new
    empty database)."""
    base = os.environ.get(DATABASE_URL_ENV)
    url = create_postgres_database(base) if base else None
    try:
        yield _settings(tmp_path / "restored", url)
    finally:
        if base and url:
            drop_postgres_database(base, url)


def _holds_tables(settings: RegistrySettings) -> bool:
    from sqlalchemy import create_engine, inspect

    if not settings.database_url and not (settings.data_dir / "registry.db").exists():
        return False
    engine = create_engine(settings.effective_database_url)
    try:
        with engine.connect() as connection:
            return bool(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_backup_round_trip_and_what_is_skipped(
    source: RegistrySettings, target: RegistrySettings, tmp_path: Path
) -> None:
    manifest = backup_registry(source, tmp_path / "backup")
    skipped = {entry["path"]: entry["why"] for entry in manifest["archives"]["skipped"]}
    assert set(skipped) == {".spool", "abc123/v1"}
    assert "not in the database copy" in skipped["abc123/v1"]
    assert not (tmp_path / "backup" / "archives").exists()
    assert manifest["database"]["alembicRevision"]
    assert manifest["database"]["rowCounts"]["records"] == 0
    summary = restore_registry(target, tmp_path / "backup")
    assert summary.row_counts == manifest["database"]["rowCounts"]
    assert _holds_tables(target)


def test_backup_refuses_a_destination_that_is_not_empty(
    source: RegistrySettings, tmp_path: Path
) -> None:
    dest = tmp_path / "used"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DestinationNotEmpty):
        backup_registry(source, dest)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert (dest / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_cli_refusal_exits_2_and_writes_nothing(source: RegistrySettings, tmp_path: Path) -> None:
    dest = tmp_path / "used"
    dest.mkdir()
    (dest / "x").write_bytes(b"")
    environment = dict(os.environ) | {"LIANXIN_REGISTRY_DATA_DIR": str(source.data_dir)}
    if source.database_url:
        environment["LIANXIN_REGISTRY_DATABASE_URL"] = source.database_url
    result = subprocess.run(
        [sys.executable, "-m", "registry.cli", "backup", str(dest)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result
    assert "not empty" in result.stderr
    assert [p.name for p in dest.iterdir()] == ["x"]


@pytest.fixture(scope="module")
def sqlite_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite registry backup, to be tampered with in copies."""
    work = tmp_path_factory.mktemp("tamper")
    settings = _settings(work / "registry", None)
    Database.open(settings).close()
    backup_registry(settings, work / "backup")
    return work / "backup"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_restore_refuses_any_altered_byte(sqlite_backup: Path, data: st.DataObject) -> None:
    files = sorted(p for p in sqlite_backup.rglob("*") if p.is_file() and p.name != "backup.json")
    with tempfile.TemporaryDirectory(prefix="tampered-") as folder:
        copy = Path(folder) / "backup"
        shutil.copytree(sqlite_backup, copy)
        victim = copy / data.draw(st.sampled_from(files)).relative_to(sqlite_backup)
        content = bytearray(victim.read_bytes())
        offset = data.draw(st.integers(0, len(content) - 1))
        content[offset] ^= data.draw(st.integers(1, 255))
        victim.write_bytes(bytes(content))
        target = _settings(Path(folder) / "restored", None)
        with pytest.raises(BackupTampered):
            restore_registry(target, copy)
        assert not (Path(folder) / "restored").exists()


def test_restore_refuses_a_tampered_backup(
    source: RegistrySettings, target: RegistrySettings, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    manifest = backup_registry(source, backup)
    database_file = backup / manifest["database"]["file"]
    original = database_file.read_bytes()
    database_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(BackupTampered, match="does not match its SM3"):
        restore_registry(target, backup)
    assert not _holds_tables(target)
    assert not target.data_dir.exists()

    database_file.write_bytes(original)
    (backup / "archives").mkdir()
    (backup / "archives" / "planted.txt").write_text("not from the registry", encoding="utf-8")
    with pytest.raises(BackupTampered, match="not part of the backup"):
        restore_registry(target, backup)
    shutil.rmtree(backup / "archives")

    (backup / "backup.json").write_text(
        json.dumps(
            manifest | {"files": manifest["files"] | {"../outside": {"sm3": "00", "bytes": 0}}}
        ),
        encoding="utf-8",
    )
    with pytest.raises(BackupTampered, match="may not hold"):
        restore_registry(target, backup)
    assert not _holds_tables(target)
    (backup / "backup.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BackupTampered):
        read_registry_backup(backup)


def test_restore_refuses_a_database_holding_tables_unless_forced(
    source: RegistrySettings, target: RegistrySettings, tmp_path: Path
) -> None:
    backup_registry(source, tmp_path / "backup")
    Database.open(target).close()
    with pytest.raises(TargetNotEmpty, match="--force"):
        restore_registry(target, tmp_path / "backup")
    summary = restore_registry(target, tmp_path / "backup", force=True)
    assert summary.row_counts["records"] == 0


def test_restore_refuses_a_store_already_holding_a_package(
    source: RegistrySettings, target: RegistrySettings, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    manifest = backup_registry(source, backup)
    # Give the backup a package (its files listed with their digests, as a backup would).
    package = backup / "archives" / "abc123" / "tombstone.json"
    package.parent.mkdir(parents=True)
    package.write_text("{}", encoding="utf-8")
    manifest["archives"]["tombstones"] = ["abc123"]
    digest, size = sm3_file(package)
    manifest["files"]["archives/abc123/tombstone.json"] = {"sm3": digest, "bytes": size}
    (backup / "backup.json").write_text(json.dumps(manifest), encoding="utf-8")
    (target.data_dir / "archives" / "abc123").mkdir(parents=True)
    with pytest.raises(TargetNotEmpty, match="abc123"):
        restore_registry(target, backup)
    assert not _holds_tables(target)


def _fake_tool(folder: Path, name: str, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n", encoding="utf-8")
    script.chmod(0o755)


def test_pg_tools_missing_or_older_than_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PgToolMissing, match="pg_dump is not on PATH"):
        pg_tool("pg_dump", 15)
    _fake_tool(tmp_path / "old", "pg_dump", "13.4")
    monkeypatch.setenv("PATH", str(tmp_path / "old"))
    with pytest.raises(PgToolTooOld, match="version 13, older than the server's 15"):
        pg_tool("pg_dump", 15)
    assert pg_tool("pg_dump", 13) == str(tmp_path / "old" / "pg_dump")


@pytest.mark.skipif(not os.environ.get(DATABASE_URL_ENV), reason="needs PostgreSQL")
def test_postgresql_backup_without_pg_dump_writes_nothing(
    source: RegistrySettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PgToolMissing):
        backup_registry(source, tmp_path / "backup")
    assert not (tmp_path / "backup").exists()


def test_pg_environment_names_no_password() -> None:
    """A database URL's password reaches pg_dump through a private PGPASSFILE removed
    afterwards, never its command line or PGPASSWORD."""
    from sqlalchemy.engine import make_url

    url = make_url("postgresql+psycopg://clerk:s3cr:et@db.example:6543/registry")
    with pg_environment(url) as environment:
        passfile = Path(environment["PGPASSFILE"])
        assert passfile.read_text(encoding="utf-8") == "*:*:*:*:s3cr\\:et\n"
        assert passfile.stat().st_mode & 0o077 == 0
        assert environment["PGHOST"] == "db.example" and environment["PGPORT"] == "6543"
        assert environment["PGUSER"] == "clerk" and environment["PGDATABASE"] == "registry"
        assert "PGPASSWORD" not in environment
    assert not passfile.exists()
