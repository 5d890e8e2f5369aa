"""``lianxin registry backup`` and ``restore``: a consistent copy of a running registry —
its database and its archive store — and the restore of that copy onto a fresh data dir or
an empty database.

A backup directory holds::

    backup.json        the manifest, written last (a directory without it is no backup):
                       database kind, alembic revision, row counts of every table, the
                       archive packages copied and those skipped, start and end time, and
                       the SM3 and size of every other file
    registry.db        SQLite: the copy made by SQLite's online backup API, or
    registry.pgdump    PostgreSQL: pg_dump's custom format (-Fc)
    archives/<package id>/v<version>/...   each package version, as in the store
    archives/<package id>/tombstone.json   a disposed package's tombstone

**Why the database first.** An ingest writes the package's files into the store (under a
temporary name, renamed into place in one step) and only then its rows. The database is
copied first, in one transaction; then exactly the package versions that copy names are
copied from the store, and each copied file is checked against the package's SM3 manifest
(``package.json``). A package whose rows the copy holds is therefore wholly in the backup; a
package ingested while the backup runs has no rows in the copy and is left out whole (its
files are listed under ``skipped``, as are the store's work areas: the upload spool and
versions still being written). A version disposed of after the database copy fails the
backup: take it again.

Restore checks every file against backup.json first and writes nothing if one is missing,
extra or altered; it refuses a database that holds tables (unless ``force``) and an archive
store that already holds one of the backup's packages; then it copies the database in
(SQLite's backup API, or ``pg_restore`` in one transaction), the packages (each version
under a temporary name, renamed into place, made read-only), and runs the alembic upgrade.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from archives.hashing import sm3_file
from archives.store import BAG_DIR, PACKAGE_FILE, TOMBSTONE_FILE, PackageVersion
from registry.archives.settings import ArchiveSettings
from registry.backup_database import (
    PG_DUMP_FILE,
    SQLITE_FILE,
    BackupTampered,
    DatabaseCopy,
    DestinationNotEmpty,
    RegistryBackupError,
    TargetNotEmpty,
    backup_postgresql,
    backup_sqlite,
    database_kind,
    postgresql_target,
    restore_postgresql,
    restore_sqlite,
    sqlite_target_holds_data,
)
from registry.db import PRIVATE_DIR_MODE, Database
from registry.settings import RegistrySettings

FORMAT = 1
MANIFEST = "backup.json"
ARCHIVES = "archives"
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
"""Largest backup.json read (about a million files)."""
PROGRESS_EVERY_S = 1.0
"""Seconds between two progress lines of the archive copy."""

Step = Callable[[str], None]


@dataclass(frozen=True)
class RestoreSummary:
    """What a restore put back."""

    database: str
    alembic_revision_backed_up: str | None
    row_counts: dict[str, int]
    packages: int
    tombstones: int
    files: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "alembicRevisionBackedUp": self.alembic_revision_backed_up,
            "rowCounts": self.row_counts,
            "archivePackages": self.packages,
            "archiveTombstones": self.tombstones,
            "files": self.files,
            "bytes": self.bytes,
        }


def archive_root(settings: RegistrySettings) -> Path:
    """The archive store of the registry of ``settings`` (as the archive service finds it)."""
    return ArchiveSettings().store_dir or Path(settings.data_dir) / "archives"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _entry(path: Path) -> dict[str, Any]:
    digest, size = sm3_file(path)
    return {"sm3": digest, "bytes": size}


# -- backup ----------------------------------------------------------------------------------


def backup_registry(
    settings: RegistrySettings, dest: Path, *, step: Step | None = None
) -> dict[str, Any]:
    """Back up the registry of ``settings`` into ``dest`` (new or empty) while it runs;
    returns the manifest. Raises DestinationNotEmpty (nothing written) or
    RegistryBackupError (``dest`` removed again)."""
    tell = step or (lambda _what: None)
    kind = database_kind(settings)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DestinationNotEmpty(f"{dest} exists and is not empty; back up into a new directory")
    created = not dest.exists()
    dest.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    try:
        return _backup(settings, kind, dest, tell)
    except BaseException:
        if created:
            _remove_tree(dest)
        else:
            for child in dest.iterdir():
                if child.is_dir():
                    _remove_tree(child)
                else:
                    child.unlink()
        raise


def _backup(settings: RegistrySettings, kind: str, dest: Path, tell: Step) -> dict[str, Any]:
    started = _now()
    if kind == "sqlite":
        copy = backup_sqlite(settings, dest, tell)
    else:
        copy = backup_postgresql(settings, dest, tell)
    files = {copy.file: _entry(dest / copy.file)}
    archives = _backup_archives(archive_root(settings), copy, dest, files, tell)
    manifest = {
        "format": FORMAT,
        "kind": "lianxin-registry",
        "startedAt": started,
        "finishedAt": _now(),
        "database": {
            "kind": copy.kind,
            "file": copy.file,
            "alembicRevision": copy.alembic_revision,
            "rowCounts": copy.row_counts,
        },
        "archives": archives,
        "files": dict(sorted(files.items())),
    }
    (dest / MANIFEST).write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    (dest / MANIFEST).chmod(0o600)
    tell(f"done: {len(files)} files, {sum(e['bytes'] for e in files.values()):,} bytes")
    return manifest


def _backup_archives(
    root: Path, copy: DatabaseCopy, dest: Path, files: dict[str, dict[str, Any]], tell: Step
) -> dict[str, Any]:
    """Copy the package versions (and tombstones) the database copy names; note what else
    the store holds and why it was left out."""
    wanted = {
        (package, version) for package, version, disposed in copy.archive_versions if not disposed
    }
    disposed = sorted({package for package, _version, gone in copy.archive_versions if gone})
    packages: list[dict[str, Any]] = []
    copied_bytes = 0
    last_told = time.monotonic()
    for index, (package, version) in enumerate(sorted(wanted), start=1):
        relative = f"{ARCHIVES}/{package}/v{version}"
        package_root, checked = _copy_version(
            root / package / f"v{version}", dest / relative, package
        )
        for path in sorted((dest / relative).rglob("*")):
            if path.is_file():
                inside = path.relative_to(dest / relative).as_posix()
                name = f"{relative}/{inside}"
                files[name] = checked.get(inside) or _entry(path)
                copied_bytes += files[name]["bytes"]
        packages.append({"packageId": package, "version": version, "root": package_root})
        if time.monotonic() - last_told >= PROGRESS_EVERY_S or index == len(wanted):
            tell(f"archives: {index}/{len(wanted)} package versions, {copied_bytes:,} bytes")
            last_told = time.monotonic()
    tombstones = []
    for package in disposed:
        source = root / package / TOMBSTONE_FILE
        if source.is_file():
            target = dest / ARCHIVES / package / TOMBSTONE_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            files[target.relative_to(dest).as_posix()] = _entry(target)
            tombstones.append(package)
    return {
        "store": str(root),
        "packages": packages,
        "tombstones": tombstones,
        "skipped": _skipped(root, wanted, set(disposed)),
    }


def _copy_version(
    source: Path, target: Path, package: str
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Copy one stored version and check each bag file against its package.json; returns
    the package root and, by path inside the version, the SM3 entries of the files checked."""
    try:
        version = PackageVersion.from_json(
            json.loads((source / PACKAGE_FILE).read_text(encoding="utf-8"))
        )
        shutil.copytree(source, target, copy_function=shutil.copyfile)
    except FileNotFoundError as exc:
        raise RegistryBackupError(
            f"archive package {package} ({source.name}) is named by the database but its files "
            f"are gone (disposed of while the backup ran?): take the backup again ({exc})"
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise RegistryBackupError(f"cannot copy archive package {source}: {exc}") from exc
    checked: dict[str, dict[str, Any]] = {}
    for entry in version.entries:
        copied = target / BAG_DIR / entry.path
        if not copied.is_file():
            raise RegistryBackupError(f"archive package {package}: {entry.path} is missing")
        digest, size = sm3_file(copied)
        if digest != entry.sm3:
            raise RegistryBackupError(
                f"archive package {package}: the copy of {entry.path} does not match the "
                "package's SM3 manifest (run a fixity audit of the store)"
            )
        checked[f"{BAG_DIR}/{entry.path}"] = {"sm3": digest, "bytes": size}
    return version.root, checked


def _skipped(root: Path, wanted: set[tuple[str, int]], disposed: set[str]) -> list[dict[str, str]]:
    skipped: list[dict[str, str]] = []
    if not root.is_dir():
        return skipped
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            skipped.append(
                {"path": entry.name, "why": "work area (upload spool or a version being written)"}
            )
            continue
        if not entry.is_dir():
            continue
        for child in sorted(entry.iterdir()):
            name = f"{entry.name}/{child.name}"
            if child.name == TOMBSTONE_FILE:
                if entry.name not in disposed:
                    skipped.append({"path": name, "why": "disposed after the database copy"})
            elif (
                child.name.startswith("v")
                and child.name[1:].isdigit()
                and (entry.name, int(child.name[1:])) not in wanted
            ):
                skipped.append({"path": name, "why": "not in the database copy (stored after it)"})
    return skipped


# -- restore ---------------------------------------------------------------------------------


def read_registry_backup(backup: Path) -> dict[str, Any]:
    """The manifest of ``backup`` once every file is checked against it. Raises
    BackupTampered naming the first file missing, extra or altered (or a bad manifest)."""
    path = backup / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BackupTampered(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryBackupError(f"{backup} is not a registry backup: {exc}") from exc
    except ValueError as exc:
        raise BackupTampered(f"{MANIFEST} is not JSON: {exc}") from exc
    _check_shape(manifest)
    listed = manifest["files"]
    for name, expected in listed.items():
        file = backup / name
        if not file.is_file() or file.is_symlink():
            raise BackupTampered(f"backup file {name} is missing")
        if _entry(file) != {"sm3": expected["sm3"], "bytes": expected["bytes"]}:
            raise BackupTampered(f"backup file {name} does not match its SM3 in {MANIFEST}")
    for file in backup.rglob("*"):
        name = file.relative_to(backup).as_posix()
        if (file.is_file() or file.is_symlink()) and name != MANIFEST and name not in listed:
            raise BackupTampered(f"{name} is not part of the backup (not in {MANIFEST})")
    checked: dict[str, Any] = manifest
    return checked


def _check_shape(manifest: Any) -> None:
    """Refuse a manifest of another format or with a path leading out of the backup."""
    try:
        if manifest["format"] != FORMAT or manifest["kind"] != "lianxin-registry":
            raise BackupTampered(f"{MANIFEST} is not a format-{FORMAT} registry backup")
        database = manifest["database"]
        if (database["kind"], database["file"]) not in (
            ("sqlite", SQLITE_FILE),
            ("postgresql", PG_DUMP_FILE),
        ):
            raise BackupTampered(f"unknown database copy {database['kind']!r}")
        files = manifest["files"]
        if not isinstance(files, dict) or database["file"] not in files:
            raise BackupTampered(f"{MANIFEST} does not list the database copy")
        for name, entry in files.items():
            parts = PurePosixPath(name).parts
            if (
                not parts
                or name.startswith("/")
                or ".." in parts
                or (parts[0] != ARCHIVES and name != database["file"])
                or not isinstance(entry.get("sm3"), str)
                or not isinstance(entry.get("bytes"), int)
            ):
                raise BackupTampered(f"{MANIFEST} lists a file it may not hold: {name!r}")
        for package in manifest["archives"]["packages"]:
            if not str(package["packageId"]).isalnum() or not isinstance(package["version"], int):
                raise BackupTampered(f"{MANIFEST} names a bad package {package!r}")
        for package in manifest["archives"]["tombstones"]:
            if not str(package).isalnum():
                raise BackupTampered(f"{MANIFEST} names a bad package {package!r}")
    except (KeyError, TypeError, AttributeError) as exc:
        raise BackupTampered(f"{MANIFEST} is malformed: {exc!r}") from exc


def restore_registry(
    settings: RegistrySettings, backup: Path, *, force: bool = False, step: Step | None = None
) -> RestoreSummary:
    """Restore ``backup`` into the database and archive store of ``settings``. Everything
    is checked before anything is written: the backup's digests, the database kind, an
    empty target database (unless ``force``), no package of the backup already in the
    store, the PostgreSQL client tools. Raises RegistryBackupError."""
    tell = step or (lambda _what: None)
    tell("checking the backup's SM3 digests")
    manifest = read_registry_backup(backup)
    database = manifest["database"]
    kind = database_kind(settings)
    if kind != database["kind"]:
        raise RegistryBackupError(
            f"the backup holds a {database['kind']} database; the target is {kind}"
        )
    tool = None
    if kind == "sqlite":
        holds = sqlite_target_holds_data(settings)
    else:
        tool, holds = postgresql_target(settings)
    if holds and not force:
        raise TargetNotEmpty(
            "the target database already holds tables: restore into an empty database "
            "(or a fresh data dir), or give --force to replace its contents"
        )
    root = archive_root(settings)
    archives = manifest["archives"]
    names = {p["packageId"] for p in archives["packages"]} | set(archives["tombstones"])
    present = sorted(name for name in names if (root / name).exists())
    if present:
        raise TargetNotEmpty(f"the archive store {root} already holds package {present[0]}")
    tell(f"database ({kind})")
    if kind == "sqlite":
        restore_sqlite(settings, backup / SQLITE_FILE)
    else:
        assert tool is not None
        restore_postgresql(settings, backup / PG_DUMP_FILE, tool, force=force)
    tell(f"archives: {len(archives['packages'])} package versions")
    _restore_archives(backup / ARCHIVES, root, archives)
    tell("alembic upgrade")
    Database.open(settings).close()
    files = manifest["files"]
    return RestoreSummary(
        database=kind,
        alembic_revision_backed_up=database["alembicRevision"],
        row_counts=dict(database["rowCounts"]),
        packages=len(archives["packages"]),
        tombstones=len(archives["tombstones"]),
        files=len(files),
        bytes=sum(int(entry["bytes"]) for entry in files.values()),
    )


def _restore_archives(source: Path, root: Path, archives: dict[str, Any]) -> None:
    root.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    for package in archives["packages"]:
        name, version = package["packageId"], package["version"]
        staging = root / f".incoming-{uuid.uuid4().hex}"
        try:
            shutil.copytree(source / name / f"v{version}", staging, copy_function=shutil.copyfile)
            for directory, _, children in os.walk(staging):
                for child in children:
                    os.chmod(Path(directory) / child, stat.S_IRUSR | stat.S_IRGRP)
            (root / name).mkdir(exist_ok=True)
            staging.rename(root / name / f"v{version}")
        finally:
            if staging.exists():
                _remove_tree(staging)
    for name in archives["tombstones"]:
        (root / name).mkdir(exist_ok=True)
        shutil.copyfile(source / name / TOMBSTONE_FILE, root / name / TOMBSTONE_FILE)


def _remove_tree(path: Path) -> None:
    """Remove ``path`` even where files were made read-only."""
    for directory, _, children in os.walk(path):
        os.chmod(directory, stat.S_IRWXU)
        for child in children:
            os.chmod(Path(directory) / child, stat.S_IRUSR | stat.S_IWUSR)
    shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "MANIFEST",
    "BackupTampered",
    "DestinationNotEmpty",
    "RegistryBackupError",
    "RestoreSummary",
    "TargetNotEmpty",
    "archive_root",
    "backup_registry",
    "read_registry_backup",
    "restore_registry",
]
