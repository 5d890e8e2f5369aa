"""Safe unpacking of a bag submitted as a zip or tar file. Archives from outside are hostile:
every member is checked BEFORE anything is written, and bytes are counted while copying
(a zip's declared sizes may lie). Refused, with :class:`~archives.errors.UnsafeArchive`:
absolute paths, ``..``, backslashes and drive letters, symbolic and hard links, devices and
fifos, more than ``max_members`` members, a member over ``max_member_bytes``, more than
``max_total_bytes`` in all, paths longer than ``MAX_PATH_CHARS`` or deeper than
``MAX_PATH_DEPTH``. A refused archive leaves the target directory removed.

Zips as real tools write them are read: a member whose mode has permission bits but no file
type (Python's ``ZipFile.writestr``) is a file; a zip made on Windows (``create_system`` 0,
as Windows PowerShell 5.1's ``Compress-Archive`` writes) may separate its paths with
backslashes, read as ``/`` before the checks above (as Info-ZIP's unzip does); and macOS
Finder's ``__MACOSX/`` folder of resource forks, never part of a bag, is left out."""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from archives.errors import UnsafeArchive

MAX_PATH_CHARS = 1024
"""Longest member path."""

MAX_PATH_DEPTH = 32
"""Most directory levels in a member path."""

COPY_BLOCK = 1024 * 1024
"""Bytes copied per read while extracting."""


@dataclass(frozen=True)
class ExtractionLimits:
    """Bounds on one extracted archive."""

    max_members: int = 200_000
    """Most members (files and directories)."""
    max_member_bytes: int = 4 * 1024**3
    """Largest single file, uncompressed."""
    max_total_bytes: int = 16 * 1024**3
    """Most bytes in all, uncompressed."""


MS_DOS = 0
"""``ZipInfo.create_system`` of a zip made on Windows (FAT and NTFS alike)."""

FINDER_FORKS = "__MACOSX"
"""The top-level folder of resource forks macOS Finder adds to the zips it makes."""


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The member's path, ``/``-separated: a Windows zip's backslashes read as ``/``."""
    return info.filename.replace("\\", "/") if info.create_system == MS_DOS else info.filename


def _special_zip_member(info: zipfile.ZipInfo) -> bool:
    """Whether the member's Unix mode names a link, device, fifo or socket. A mode with no
    file type bits (permission bits only, or none) is a plain file or directory."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _safe_parts(name: str) -> tuple[str, ...]:
    if not name or len(name) > MAX_PATH_CHARS:
        raise UnsafeArchive(f"member path of {len(name)} characters")
    if "\\" in name or "\x00" in name:
        raise UnsafeArchive(f"member path {name!r} has a backslash or NUL")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchive(f"member path {name!r} is absolute")
    parts = tuple(part for part in path.parts if part not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive(f"member path {name!r} leaves the archive")
    if len(parts) > MAX_PATH_DEPTH:
        raise UnsafeArchive(f"member path {name!r} is deeper than {MAX_PATH_DEPTH} levels")
    return parts


class _Budget:
    def __init__(self, limits: ExtractionLimits) -> None:
        self.limits = limits
        self.members = 0
        self.total = 0

    def member(self, declared: int) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeArchive(f"more than {self.limits.max_members} members")
        if declared > self.limits.max_member_bytes:
            raise UnsafeArchive(f"a member of {declared} bytes")

    def copy(self, source: IO[bytes], target: Path, declared: int) -> None:
        written = 0
        with target.open("xb") as out:
            while block := source.read(COPY_BLOCK):
                written += len(block)
                self.total += len(block)
                if written > declared or written > self.limits.max_member_bytes:
                    raise UnsafeArchive(f"{target.name}: more bytes than the archive declared")
                if self.total > self.limits.max_total_bytes:
                    raise UnsafeArchive(f"more than {self.limits.max_total_bytes} bytes in all")
                out.write(block)


def _target(root: Path, parts: tuple[str, ...]) -> Path:
    return root.joinpath(*parts)


def _extract_zip(archive: Path, root: Path, limits: ExtractionLimits) -> None:
    budget = _Budget(limits)
    with zipfile.ZipFile(archive) as bundle:
        infos = bundle.infolist()
        if len(infos) > limits.max_members:
            raise UnsafeArchive(f"more than {limits.max_members} members")
        declared_total = 0
        # Each member with its path's parts and whether it is a directory (a name ending
        # in a separator, a Windows zip's backslash included).
        checked: list[tuple[zipfile.ZipInfo, tuple[str, ...], bool]] = []
        for info in infos:
            name = _zip_name(info)
            parts = _safe_parts(name)
            if _special_zip_member(info):
                raise UnsafeArchive(f"{info.filename!r} is a link or special file")
            if parts[:1] == (FINDER_FORKS,):
                continue
            if info.flag_bits & 0x1:
                raise UnsafeArchive(f"{info.filename!r} is encrypted")
            declared_total += info.file_size
            checked.append((info, parts, name.endswith("/")))
        if declared_total > limits.max_total_bytes:
            raise UnsafeArchive(f"{declared_total} bytes declared, over the limit")
        for info, parts, is_dir in checked:
            if not parts:
                continue
            target = _target(root, parts)
            budget.member(info.file_size)
            if is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source:
                budget.copy(source, target, info.file_size)


def _extract_tar(archive: Path, root: Path, limits: ExtractionLimits) -> None:
    budget = _Budget(limits)
    with tarfile.open(archive, mode="r:*") as bundle:
        # Stream the members: a tar has no central directory, so each is checked as it comes.
        for member in bundle:
            parts = _safe_parts(member.name)
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchive(f"{member.name!r} is a link, device or fifo")
            budget.member(member.size)
            if not parts:
                continue
            target = _target(root, parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = bundle.extractfile(member)
            if source is None:
                raise UnsafeArchive(f"{member.name!r} has no contents")
            with source:
                budget.copy(source, target, member.size)


def archive_kind(path: Path) -> str:
    """``"zip"``, ``"tar"`` or ``"directory"``; raises UnsafeArchive for anything else."""
    if path.is_dir():
        return "directory"
    # The tar test first: zipfile.is_zipfile finds the end record of a zip member (an
    # OFD, a DOCX) near the end of an uncompressed tar; a tar header never opens a zip.
    if tarfile.is_tarfile(path):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    raise UnsafeArchive(f"{path.name} is neither a directory, a zip nor a tar file")


def extract_archive(archive: Path, target: Path, limits: ExtractionLimits | None = None) -> Path:
    """Unpack the zip or tar ``archive`` into the new directory ``target`` and return the
    bag's root inside it: ``target`` itself if bagit.txt is at the top, else the single
    top-level directory. Raises UnsafeArchive (``target`` is then removed)."""
    limits = limits or ExtractionLimits()
    kind = archive_kind(archive)
    if kind == "directory":
        raise UnsafeArchive(f"{archive} is a directory, not an archive")
    target.mkdir(parents=True)
    try:
        if kind == "zip":
            _extract_zip(archive, target, limits)
        else:
            _extract_tar(archive, target, limits)
    except UnsafeArchive:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise UnsafeArchive(f"{archive.name} is damaged: {exc}") from exc
    return bag_root(target)


def bag_root(directory: Path) -> Path:
    """Where bagit.txt is: ``directory`` or its single top-level subdirectory."""
    if (directory / "bagit.txt").is_file():
        return directory
    entries = [entry for entry in directory.iterdir() if not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "bagit.txt").is_file():
        return entries[0]
    return directory


__all__ = ["ExtractionLimits", "archive_kind", "bag_root", "extract_archive"]
