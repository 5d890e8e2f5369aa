"""The database half of ``lianxin registry backup`` / ``restore`` (:mod:`registry.backup`).

SQLite is copied with SQLite's online backup API (``sqlite3.Connection.backup``) on the
engine's own driver connection, in one step: one read transaction, so the copy is one
committed state, and in WAL mode the registry's writers go on meanwhile. A file copy of a
live SQLite database (with its ``-wal`` beside it) is never taken.

PostgreSQL is dumped with ``pg_dump -Fc`` inside a snapshot this module exports
(``pg_export_snapshot``): the row counts, the alembic revision and the list of archive
packages read for the manifest are those of the very state the dump holds. Connection
parameters come from the database URL through the environment (``PGHOST``, ``PGPORT``,
``PGUSER``, ``PGDATABASE``) and a password through a private ``PGPASSFILE`` removed
afterwards — never on a command line, where ``ps`` shows it to every user."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

from registry.db import PRIVATE_FILE_MODE, create_private_sqlite_file, create_registry_engine
from registry.settings import RegistrySettings

SQLITE_FILE = "registry.db"
"""Name of the SQLite copy inside a backup."""
PG_DUMP_FILE = "registry.pgdump"
"""Name of the PostgreSQL dump (custom format) inside a backup."""
PG_TOOL_TIMEOUT_S = 6 * 3600.0
"""Longest a pg_dump or pg_restore may run."""

Step = Callable[[str], None]
"""Told what is being done now (progress, on stderr)."""


class RegistryBackupError(Exception):
    """A registry backup that cannot be taken, read or restored; nothing was changed."""


class DestinationNotEmpty(RegistryBackupError):
    """The backup directory exists and holds something."""


class BackupTampered(RegistryBackupError):
    """A backup file is missing, extra, or does not match its SM3 in backup.json."""


class TargetNotEmpty(RegistryBackupError):
    """The database (or archive store) to restore into already holds data."""


class PgToolMissing(RegistryBackupError):
    """``pg_dump`` / ``pg_restore`` is not on PATH."""


class PgToolTooOld(RegistryBackupError):
    """``pg_dump`` / ``pg_restore`` is of an older major version than the server."""


@dataclass(frozen=True)
class DatabaseCopy:
    """What the database copy holds."""

    kind: str
    """``sqlite`` or ``postgresql``."""
    file: str
    """Its file inside the backup."""
    alembic_revision: str | None
    row_counts: dict[str, int]
    """Rows per table, in the copied state."""
    archive_versions: list[tuple[str, int, bool]]
    """(package id, version, disposed) of every archive package row, in the copied state."""


def database_kind(settings: RegistrySettings) -> str:
    """``sqlite`` or ``postgresql``; raises RegistryBackupError for another backend."""
    backend = make_url(settings.effective_database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise RegistryBackupError(f"cannot back up a {backend} database")
    return backend


def _state(connection: Connection) -> tuple[str | None, dict[str, int], list[Any]]:
    """Alembic revision, row counts and archive package rows, read on ``connection``."""
    tables = sorted(inspect(connection).get_table_names())
    counts = {
        name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
        for name in tables
        if name != "alembic_version"
    }
    revision = None
    if "alembic_version" in tables:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    versions: list[Any] = []
    if "archive_packages" in tables:
        rows = connection.execute(
            text(
                "SELECT package_id, version, disposed_at FROM archive_packages "
                "ORDER BY package_id, version"
            )
        ).all()
        versions = [(str(row[0]), int(row[1]), row[2] is not None) for row in rows]
    return revision, counts, versions


# -- SQLite ----------------------------------------------------------------------------------


def backup_sqlite(settings: RegistrySettings, dest: Path, tell: Step) -> DatabaseCopy:
    """Copy the SQLite database of ``settings`` into ``dest/registry.db``."""
    source_path = Path(make_url(settings.effective_database_url).database or "")
    if not source_path.is_file():
        raise RegistryBackupError(f"no registry database at {source_path}")
    target_path = dest / SQLITE_FILE
    create_private_sqlite_file(target_path)
    engine = create_registry_engine(settings)
    try:
        raw = engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            pages = source.execute("PRAGMA page_count").fetchone()[0]
            tell(f"database: copying {pages:,} pages with SQLite's backup API")
            target = sqlite3.connect(target_path)
            try:
                # pages=-1: the whole database in one step, inside one read transaction of
                # the source; copied in several steps, every write of the running registry
                # between two steps would start the copy again.
                source.backup(target, pages=-1)
                # The copy is one self-contained file: no -wal or -shm beside it, ever.
                target.execute("PRAGMA journal_mode=DELETE").fetchall()
            finally:
                target.close()
        finally:
            raw.close()
    except sqlite3.Error as exc:
        raise RegistryBackupError(f"SQLite backup failed: {exc}") from exc
    finally:
        engine.dispose()
    return _sqlite_state(target_path)


def _sqlite_state(path: Path) -> DatabaseCopy:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            revision, counts, versions = _state(connection)
    finally:
        engine.dispose()
    return DatabaseCopy("sqlite", SQLITE_FILE, revision, counts, versions)


def sqlite_target_holds_data(settings: RegistrySettings) -> bool:
    """Whether the SQLite database file of ``settings`` exists and holds a table."""
    path = Path(make_url(settings.effective_database_url).database or "")
    if not path.is_file() or path.stat().st_size == 0:
        return False
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = connection.execute("SELECT count(*) FROM sqlite_master WHERE type='table'")
        return bool(row.fetchone()[0])
    finally:
        connection.close()


def restore_sqlite(settings: RegistrySettings, copy: Path) -> None:
    """Copy the backup's SQLite file into the database file of ``settings`` (backup API)."""
    target_path = Path(make_url(settings.effective_database_url).database or "")
    create_private_sqlite_file(target_path)
    # immutable: the backup is read without a lock or a side file written beside it.
    source = sqlite3.connect(f"file:{copy}?mode=ro&immutable=1", uri=True)
    try:
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL").fetchall()
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise RegistryBackupError(f"SQLite restore failed: {exc}") from exc
    finally:
        source.close()
    target_path.chmod(PRIVATE_FILE_MODE)


# -- PostgreSQL ------------------------------------------------------------------------------


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


def pg_tool(name: str, server_major: int) -> str:
    """The path of ``name`` (pg_dump, pg_restore); raises PgToolMissing when it is not on
    PATH and PgToolTooOld when its major version is below the server's."""
    path = shutil.which(name)
    if path is None:
        raise PgToolMissing(
            f"{name} is not on PATH: install the PostgreSQL client tools of version "
            f"{server_major} or later (e.g. postgresql-client-{server_major})"
        )
    try:
        answer = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PgToolMissing(f"{path} --version failed: {exc}") from exc
    match = _VERSION.search(answer)
    if match is None:
        raise PgToolMissing(f"cannot read the version of {path}: {answer.strip()!r}")
    major = int(match.group(1))
    if major < server_major:
        raise PgToolTooOld(
            f"{path} is version {major}, older than the server's {server_major}: it cannot "
            f"{'dump' if name == 'pg_dump' else 'restore'} this database; install "
            f"postgresql-client-{server_major} or later"
        )
    return path


def _server_major(connection: Connection) -> int:
    return int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000


@contextmanager
def pg_environment(url: URL) -> Iterator[dict[str, str]]:
    """The environment of a PostgreSQL client tool connecting to ``url``: connection
    parameters as PG* variables, the password in a private PGPASSFILE removed afterwards."""
    environment = {
        key: value for key, value in os.environ.items() if key not in ("PGPASSWORD", "PGSERVICE")
    }
    host = url.host or url.query.get("host")
    parameters = {
        "PGHOST": host if isinstance(host, str) else None,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGDATABASE": url.database,
        "PGSSLMODE": url.query.get("sslmode"),
    }
    for key, value in parameters.items():
        if isinstance(value, str) and value:
            environment[key] = value
    if url.password is None:
        yield environment
        return
    with tempfile.TemporaryDirectory(prefix="lianxin-pgpass-") as folder:
        passfile = Path(folder) / "pgpass"
        escaped = str(url.password).replace("\\", "\\\\").replace(":", "\\:")
        descriptor = os.open(passfile, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(f"*:*:*:*:{escaped}\n")
        environment["PGPASSFILE"] = str(passfile)
        yield environment


def _run_pg_tool(command: list[str], environment: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PG_TOOL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RegistryBackupError(f"{what} failed: {exc}") from exc
    if result.returncode != 0:
        raise RegistryBackupError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")


def _pg_engine(settings: RegistrySettings) -> Engine:
    return create_engine(settings.effective_database_url)


def backup_postgresql(settings: RegistrySettings, dest: Path, tell: Step) -> DatabaseCopy:
    """Dump the PostgreSQL database of ``settings`` into ``dest/registry.pgdump``."""
    url = make_url(settings.effective_database_url)
    engine = _pg_engine(settings)
    try:
        with engine.connect() as connection:
            tool = pg_tool("pg_dump", _server_major(connection))
            connection.rollback()
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                revision, counts, versions = _state(connection)
                tell("database: pg_dump -Fc in the snapshot the manifest was read in")
                with pg_environment(url) as environment:
                    _run_pg_tool(
                        [
                            tool,
                            "-Fc",
                            "--no-password",
                            f"--snapshot={snapshot}",
                            "-f",
                            str(dest / PG_DUMP_FILE),
                        ],
                        environment,
                        "pg_dump",
                    )
    finally:
        engine.dispose()
    (dest / PG_DUMP_FILE).chmod(PRIVATE_FILE_MODE)
    return DatabaseCopy("postgresql", PG_DUMP_FILE, revision, counts, versions)


def postgresql_target(settings: RegistrySettings) -> tuple[str, bool]:
    """The pg_restore to use on the database of ``settings`` and whether it holds a table
    (raises PgToolMissing / PgToolTooOld)."""
    engine = _pg_engine(settings)
    try:
        with engine.connect() as connection:
            tool = pg_tool("pg_restore", _server_major(connection))
            holds = bool(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    return tool, holds


def restore_postgresql(settings: RegistrySettings, dump: Path, tool: str, *, force: bool) -> None:
    """``pg_restore`` the dump into the database of ``settings``, in one transaction (a
    failure leaves the database as it was); with ``force``, its objects are dropped first."""
    url = make_url(settings.effective_database_url)
    command = [
        tool,
        "--no-password",
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
    ]
    if force:
        command += ["--clean", "--if-exists"]
    with pg_environment(url) as environment:
        _run_pg_tool(
            [*command, "-d", environment.get("PGDATABASE", ""), str(dump)],
            environment,
            "pg_restore",
        )


__all__ = [
    "PG_DUMP_FILE",
    "SQLITE_FILE",
    "BackupTampered",
    "DatabaseCopy",
    "DestinationNotEmpty",
    "PgToolMissing",
    "PgToolTooOld",
    "RegistryBackupError",
    "TargetNotEmpty",
    "backup_postgresql",
    "backup_sqlite",
    "database_kind",
    "pg_tool",
    "postgresql_target",
    "restore_postgresql",
    "restore_sqlite",
    "sqlite_target_holds_data",
]
