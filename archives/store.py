"""The archive store: write-once package versions behind a small interface
(:class:`ArchiveStore`), a local directory by default (:class:`LocalArchiveStore`).

Layout of the local store::

    <root>/<package id>/v<version>/bag/...        the AIP: the bag as received, plus the
                                                  SM3 payload and tag manifests
    <root>/<package id>/v<version>/package.json   entries, package root, description,
                                                  lineage, report hash
    <root>/<package id>/v<version>/report.json    the 四性 report of ingest
    <root>/<package id>/tombstone.json            after disposal: what was destroyed, why

A version is written under a temporary name and renamed into place in one step, its files
then made read-only; a version that exists is never written again (PackageExists). Only
disposal removes files, and it leaves the tombstone."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from archives.errors import PackageExists, PackageNotFound
from archives.package import ManifestEntry, package_root

PACKAGE_FILE = "package.json"
REPORT_FILE = "report.json"
TOMBSTONE_FILE = "tombstone.json"
BAG_DIR = "bag"


@dataclass(frozen=True)
class Lineage:
    """Where a version comes from: a migration of an earlier version."""

    previous_version: int
    """The version it was migrated from."""
    previous_root: str
    """That version's package root."""
    tool: str
    """The migration tool."""
    tool_version: str
    """Its version."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """How it was run."""

    def to_json(self) -> dict[str, Any]:
        """As stored."""
        return {
            "previousVersion": self.previous_version,
            "previousRoot": self.previous_root,
            "tool": self.tool,
            "toolVersion": self.tool_version,
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Lineage:
        """Read back."""
        return cls(
            previous_version=int(value["previousVersion"]),
            previous_root=str(value["previousRoot"]),
            tool=str(value["tool"]),
            tool_version=str(value["toolVersion"]),
            parameters=dict(value.get("parameters", {})),
        )


@dataclass(frozen=True)
class PackageVersion:
    """One stored version of a package (an AIP)."""

    package_id: str
    """The package."""
    version: int
    """1 for the ingested bag, then one more per migration."""
    entries: tuple[ManifestEntry, ...]
    """Every file of the stored bag with its SM3, by path."""
    root: str
    """The package root over the entries (hex)."""
    description: dict[str, Any]
    """The archival description."""
    report_sm3: str
    """SM3 of the canonical JSON of the ingest 四性 report."""
    lineage: Lineage | None = None
    """For a migrated version, its origin."""

    def to_json(self) -> dict[str, Any]:
        """As stored in package.json."""
        return {
            "packageId": self.package_id,
            "version": self.version,
            "root": self.root,
            "description": self.description,
            "reportSm3": self.report_sm3,
            "lineage": None if self.lineage is None else self.lineage.to_json(),
            "entries": [entry.to_json() for entry in self.entries],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> PackageVersion:
        """Read back; the root is recomputed and must agree."""
        entries = tuple(
            ManifestEntry(path=str(e["path"]), sm3=str(e["sm3"]), size=int(e["size"]))
            for e in value["entries"]
        )
        root = package_root(entries)
        if root != value["root"]:
            raise ValueError("package.json's root does not match its entries")
        lineage = value.get("lineage")
        return cls(
            package_id=str(value["packageId"]),
            version=int(value["version"]),
            entries=entries,
            root=root,
            description=dict(value["description"]),
            report_sm3=str(value["reportSm3"]),
            lineage=None if lineage is None else Lineage.from_json(lineage),
        )


class ArchiveStore(Protocol):
    """Where AIPs live."""

    def write_version(
        self, version: PackageVersion, bag: Path, report: bytes, *, extra_tag_files: dict[str, str]
    ) -> None:
        """Store ``bag`` (copied) as ``version``, with ``extra_tag_files`` (name → text)
        added to it and the report beside it; raises PackageExists."""
        ...

    def versions(self, package_id: str) -> list[int]:
        """The stored versions of a package, ascending (empty if none)."""
        ...

    def read_version(self, package_id: str, version: int) -> PackageVersion:
        """The stored version; raises PackageNotFound."""
        ...

    def bag_path(self, package_id: str, version: int) -> Path:
        """Where the version's bag is on disk."""
        ...

    def package_ids(self) -> Iterator[str]:
        """Every package with a stored version."""
        ...

    def dispose(self, package_id: str, tombstone: dict[str, Any]) -> None:
        """Remove every version's files and leave ``tombstone``."""
        ...


def _copy_read_only(source: Path, target: Path) -> None:
    """Copy the directory ``source`` to the new ``target``, each file's bytes only (the
    kernel's copy), made read-only as it is written: two system calls a file fewer than a
    copytree keeping times and modes followed by a pass making them read-only."""
    for directory, _, names in os.walk(source):
        into = target / Path(directory).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(Path(directory) / name, into / name)
            os.chmod(into / name, stat.S_IRUSR | stat.S_IRGRP)


def _writable(root: Path) -> None:
    for directory, _, names in os.walk(root):
        os.chmod(directory, stat.S_IRWXU)
        for name in names:
            os.chmod(Path(directory) / name, stat.S_IRUSR | stat.S_IWUSR)


class LocalArchiveStore:
    """:class:`ArchiveStore` in a local directory."""

    def __init__(self, root: Path) -> None:
        """Use (and create) ``root``."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _version_dir(self, package_id: str, version: int) -> Path:
        if not package_id.isalnum():
            raise PackageNotFound(f"no package {package_id!r}")
        return self.root / package_id / f"v{version}"

    def bag_path(self, package_id: str, version: int) -> Path:
        """Where the version's bag is."""
        return self._version_dir(package_id, version) / BAG_DIR

    def write_version(
        self, version: PackageVersion, bag: Path, report: bytes, *, extra_tag_files: dict[str, str]
    ) -> None:
        """Copy ``bag`` in as ``version`` (see :class:`ArchiveStore`)."""
        final = self._version_dir(version.package_id, version.version)
        if final.exists() or (self.root / version.package_id / TOMBSTONE_FILE).exists():
            raise PackageExists(f"package {version.package_id} v{version.version} exists")
        staging = self.root / f".incoming-{uuid.uuid4().hex}"
        try:
            _copy_read_only(bag, staging / BAG_DIR)
            written = [staging / BAG_DIR / name for name in extra_tag_files]
            for path, text in zip(written, extra_tag_files.values(), strict=True):
                path.write_text(text, encoding="utf-8")
            (staging / PACKAGE_FILE).write_text(
                json.dumps(version.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
            )
            (staging / REPORT_FILE).write_bytes(report)
            for path in (*written, staging / PACKAGE_FILE, staging / REPORT_FILE):
                os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(final)
            except OSError as exc:
                raise PackageExists(
                    f"package {version.package_id} v{version.version} exists"
                ) from exc
        finally:
            if staging.exists():
                _writable(staging)
                shutil.rmtree(staging, ignore_errors=True)

    def versions(self, package_id: str) -> list[int]:
        """Stored versions, ascending."""
        directory = self.root / package_id
        if not package_id.isalnum() or not directory.is_dir():
            return []
        return sorted(
            int(entry.name[1:])
            for entry in directory.iterdir()
            if entry.name.startswith("v") and entry.name[1:].isdigit()
        )

    def read_version(self, package_id: str, version: int) -> PackageVersion:
        """Read package.json of a version."""
        path = self._version_dir(package_id, version) / PACKAGE_FILE
        if not path.is_file():
            raise PackageNotFound(f"no package {package_id} v{version}")
        return PackageVersion.from_json(json.loads(path.read_text(encoding="utf-8")))

    def read_report(self, package_id: str, version: int) -> bytes:
        """The stored report of a version."""
        path = self._version_dir(package_id, version) / REPORT_FILE
        if not path.is_file():
            raise PackageNotFound(f"no package {package_id} v{version}")
        return path.read_bytes()

    def package_ids(self) -> Iterator[str]:
        """Packages with at least one stored version, sorted."""
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.name.startswith(".") and self.versions(entry.name):
                yield entry.name

    def dispose(self, package_id: str, tombstone: dict[str, Any]) -> None:
        """Remove every version and leave the tombstone."""
        directory = self.root / package_id
        if not self.versions(package_id):
            raise PackageNotFound(f"no package {package_id}")
        (directory / TOMBSTONE_FILE).write_text(
            json.dumps(tombstone, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        for version in self.versions(package_id):
            target = self._version_dir(package_id, version)
            _writable(target)
            shutil.rmtree(target)

    def tombstone(self, package_id: str) -> dict[str, Any] | None:
        """The tombstone of a disposed package, or None."""
        path = self.root / package_id / TOMBSTONE_FILE
        if not package_id.isalnum() or not path.is_file():
            return None
        value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return value


__all__ = [
    "BAG_DIR",
    "ArchiveStore",
    "Lineage",
    "LocalArchiveStore",
    "PackageVersion",
]
